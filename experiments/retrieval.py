"""A retrieval task on real text that ships with Python: the help topics in `pydoc_data.topics`.

Corpus: for each help topic (sorted by name; topics whose text is too short are skipped), the document is
the topic's opening: its first 60 words. Queries: for the same topics, a later sentence of the topic (the first
sentence of at least 8 words that starts after word 120), so a query never repeats its document's words
verbatim; its known answer is the document of the topic it came from. Every text is embedded by the system
under test (documents and queries alike), queries rank documents by cosine similarity.

Reported: top-1 agreement (the pruned system's best document is the dense model's best), top-5 agreement
(mean overlap of the two top-5 sets / 5), and recall@1 (the best document is the known answer).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Task:
    topics: list[str]
    documents: list[str]
    queries: list[str]

    @property
    def texts(self) -> list[str]:
        return self.documents + self.queries


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"\*+|`+|\*\*", "", text)).strip()


def _pairs() -> list[tuple[str, str, str]]:
    from pydoc_data.topics import topics

    out = []
    for name in sorted(topics):
        words = _clean(topics[name]).split(" ")
        if len(words) < 160:
            continue
        doc = " ".join(words[:60])
        later = " ".join(words[120:])
        sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", later)]
        query = next((s for s in sentences[1:] if len(s.split()) >= 8), None)
        if query is None:
            continue
        out.append((name, doc, " ".join(query.split()[:40])))
    return out


def build_task(n_requests: int) -> Task:
    """A task of n_requests texts: n/2 documents and n/2 queries (n/2 capped by the topics available)."""
    pairs = _pairs()
    k = max(1, min(len(pairs), n_requests // 2))
    # Spread over the alphabet, deterministically.
    idx = np.linspace(0, len(pairs) - 1, k).round().astype(int)
    chosen = [pairs[i] for i in sorted(set(idx.tolist()))]
    return Task([c[0] for c in chosen], [c[1] for c in chosen], [c[2] for c in chosen])


def corpus_texts(n: int) -> list[str]:
    """n fixed real-English inputs (documents then queries) for distortion measurements."""
    t = build_task(2 * n)
    return (t.documents + t.queries)[:n]


def _ranks(emb: np.ndarray, n_docs: int) -> np.ndarray:
    e = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    docs, queries = e[:n_docs], e[n_docs:]
    return np.argsort(-(queries @ docs.T), axis=1, kind="stable")


def scores(pruned: np.ndarray, dense: np.ndarray, n_docs: int) -> dict[str, float]:
    """top-1/top-5 agreement with the dense ranking and recall@1 (query i's answer is document i)."""
    rp, rd = _ranks(pruned, n_docs), _ranks(dense, n_docs)
    k = min(5, n_docs)
    top5 = np.mean([len(set(a[:k]) & set(b[:k])) / k for a, b in zip(rp, rd, strict=True)])
    answers = np.arange(rp.shape[0])
    return {"retrieval_top1_agreement": float(np.mean(rp[:, 0] == rd[:, 0])),
            "retrieval_top5_agreement": float(top5),
            "retrieval_recall_at1": float(np.mean(rp[:, 0] == answers)),
            "dense_recall_at1": float(np.mean(rd[:, 0] == answers))}


def cosine_mean(pruned: np.ndarray, dense: np.ndarray) -> float:
    num = np.sum(pruned * dense, axis=1)
    den = np.linalg.norm(pruned, axis=1) * np.linalg.norm(dense, axis=1)
    return float(np.mean(num / np.maximum(den, 1e-12)))
