"""The agent as a program: connect, run the workload, write records, print the summary."""

from __future__ import annotations

import logging

import numpy as np
import torch

from device_agent.report import add_fidelity, print_summary, write_jsonl
from device_agent.runner import TIMING_SOURCES, DeviceRunner
from device_agent.samples import load_texts
from device_agent.settings import AgentSettings
from splitbed.model import load_full_model

logger = logging.getLogger(__name__)


def reference_embeddings(runner: DeviceRunner, texts: list[str]) -> np.ndarray:
    """The unpruned, unsplit model's output for the same inputs (loaded only when asked for)."""
    full = load_full_model(runner.source, device=runner.settings.device)
    outs = []
    with torch.inference_mode():
        for inputs in runner.prepare(texts):
            outs.append(full(inputs["input_ids"], inputs["attention_mask"], inputs.get("token_type_ids"))[0])
    return torch.stack(outs).float().cpu().numpy()


async def run_agent(settings: AgentSettings) -> int:
    texts = load_texts(settings.texts)
    runner = DeviceRunner(settings)
    try:
        await runner.connect()
        records = await runner.run(texts)
    finally:
        await runner.close()
    if settings.reference:
        ref = reference_embeddings(runner, texts)
        add_fidelity(records, np.concatenate([ref] * settings.repeat))
    for rec in records:
        rec["timing_sources"] = TIMING_SOURCES
        rec["model_label"] = runner.source.label
    write_jsonl(settings.out, records)
    if not settings.quiet:
        ident = runner.identity
        title = (f"{runner.source.label}: split L={ident.split}, rho={ident.rho_device:g} "
                 f"(achieved {runner.part.report.achieved_rho:.3f}), rho~={ident.rho_server:g}, "
                 f"{ident.method}, {ident.encoding}")
        print_summary(records, title)
        print(f"wrote {len(records)} records to {settings.out}")
    return 0
