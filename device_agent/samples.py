"""The built-in workload: real English text that was not written for this project.

The sentences are the opening paragraphs of docstrings of Python's standard
library (the text of Python's own documentation) and the Zen of Python, read
from the running interpreter, so the sample costs nothing to ship and is
reproducible for a given Python version.
"""

from __future__ import annotations

import codecs
import contextlib
import importlib
import inspect
import io
import re
from pathlib import Path

# Objects whose docstrings open with a plain-English description.
_SOURCES = (
    "json", "csv", "argparse", "logging", "collections", "heapq", "bisect", "textwrap", "difflib",
    "shlex", "fractions", "decimal", "statistics", "queue", "sched", "zipfile", "tarfile", "gzip",
    "base64", "pickle", "calendar", "tempfile", "shutil", "glob", "fnmatch", "contextlib", "functools.partial",
    "itertools", "random", "string", "struct", "threading", "subprocess", "socket", "selectors", "asyncio.Queue",
    "dataclasses.dataclass", "enum", "typing", "inspect", "unittest", "doctest", "pdb", "timeit", "trace",
)


def _resolve(name: str) -> object | None:
    module_name, _, attr = name.partition(".")
    try:
        obj: object = importlib.import_module(module_name)
    except ImportError:
        return None
    for part in filter(None, attr.split(".")):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def _first_paragraph(doc: str) -> str:
    para = re.split(r"\n\s*\n", doc.strip(), maxsplit=1)[0]
    return " ".join(para.split())


def zen_of_python() -> list[str]:
    # Importing `this` prints the Zen; its text is `this.s`, rot13-encoded.
    with contextlib.redirect_stdout(io.StringIO()):
        import this

    text = codecs.decode(this.s, "rot13")
    return [line.strip() for line in text.splitlines()[2:] if line.strip()]


def builtin_sample() -> list[str]:
    texts: list[str] = []
    for name in _SOURCES:
        obj = _resolve(name)
        doc = inspect.getdoc(obj) if obj is not None else None
        if not doc:
            continue
        para = _first_paragraph(doc)
        if len(para.split()) >= 4 and para not in texts:
            texts.append(para)
    texts.extend(zen_of_python())
    return texts


def load_texts(path: str | None) -> list[str]:
    if path is None:
        return builtin_sample()
    lines = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines()]
    texts = [line for line in lines if line]
    if not texts:
        raise ValueError(f"{path} has no non-empty lines")
    return texts
