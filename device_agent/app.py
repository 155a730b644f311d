"""The agent as a program: connect, follow the controller if any, run the workload, write records."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import numpy as np
import torch

from device_agent.node import DeviceNode
from device_agent.records import RecordWriter, read_records, record_key
from device_agent.report import add_fidelity, print_summary, print_versions, to_json
from device_agent.runner import TIMING_SOURCES, DeviceRunner
from device_agent.samples import load_texts
from device_agent.settings import AgentSettings
from splitbed.control import ControlLink
from splitbed.errors import Unavailable
from splitbed.model import load_full_model
from splitbed.resilience import Keepalive
from splitbed.v1 import control_pb2

logger = logging.getLogger(__name__)


def reference_embeddings(runner: DeviceRunner, texts: list[str]) -> np.ndarray:
    """The unpruned, unsplit model's output for the same inputs (loaded only when asked for)."""
    full = load_full_model(runner.source, device=runner.settings.device)
    outs = []
    with torch.inference_mode():
        for inputs in runner.prepare(texts):
            outs.append(full(inputs["input_ids"], inputs["attention_mask"], inputs.get("token_type_ids"))[0])
    return torch.stack(outs).float().cpu().numpy()


async def follow_controller(runner: DeviceRunner, settings: AgentSettings) -> tuple[ControlLink, DeviceNode]:
    assert settings.controller is not None
    node = DeviceNode(runner)
    link = ControlLink(settings.controller, settings.node_id, control_pb2.ROLE_DEVICE, profile=node.profile,
                       apply=node.apply, rpc_timeout_s=settings.control_timeout_s,
                       keepalive=Keepalive(settings.keepalive_s, settings.keepalive_timeout_s))
    link.start()
    try:
        await asyncio.wait_for(link.first_config.wait(), settings.wait_config_s)
    except TimeoutError:
        await link.close()
        raise Unavailable(f"no plan from controller {settings.controller} within {settings.wait_config_s:.0f} s "
                          "(is it running, and is an edge server registered with it?)") from None
    return link, node


async def run_agent(settings: AgentSettings) -> int:
    texts = load_texts(settings.texts)
    writer = RecordWriter(settings.out, resume=settings.resume, fsync_every=settings.fsync_every)
    if writer.run_id and not settings.run_id:  # a resumed run keeps its idempotent id
        settings = settings.model_copy(update={"run_id": writer.run_id})
    runner = DeviceRunner(settings)
    link: ControlLink | None = None
    ref = reference_embeddings(runner, texts) if settings.reference else None
    try:
        await runner.connect(standalone=not settings.controller)
        node: DeviceNode | None = None
        if settings.controller:
            link, node = await follow_controller(runner, settings)

        async def on_record(rec: dict[str, Any]) -> None:
            if ref is not None:
                add_fidelity([rec], ref[rec["index"]][None])
            rec["timing_sources"] = TIMING_SOURCES
            rec["model_label"] = runner.source.label
            writer.write(to_json(rec), record_key(rec))
            report = node.telemetry(rec) if node is not None else None
            if report is not None and link is not None:
                await link.report(*report)

        records = await runner.run(texts, on_record, skip=writer.done)
    finally:
        writer.close()
        if link is not None:
            await link.close()
        await runner.close()
    if writer.resumed:
        records = read_records(settings.out)[0]
    if not settings.quiet:
        st = runner.state
        title = (f"{runner.source.label}: split L={st.split}, rho={st.rho_device:g} "
                 f"(achieved {st.part.report.achieved_rho:.3f}), rho~={st.rho_server:g}, {st.method}, {st.encoding}")
        print_summary(records, title)
        if settings.controller:
            print_versions(records)
        resumed = f" ({writer.resumed} from before --resume)" if writer.resumed else ""
        print(f"wrote {writer.written} records to {settings.out}{resumed}")
    return 0


def calibrate_device(settings: AgentSettings, freqs: list[float] | None, as_json: bool) -> int:
    """Fit phi on this device with its own front layers as the workload."""
    from splitbed.calibration import report, run_calibration
    from splitbed.model import load_device_part, resolve_model
    from splitbed.stage import Stage

    source = resolve_model(settings.model)
    part = load_device_part(source, max(settings.split, 1), rho=settings.rho, method=settings.method,
                            device=settings.device)
    stage = Stage(settings.clock, settings.clock_profile, settings.energy, pue=settings.pue,
                  phi=settings.power_coeff, host_flops_per_s=settings.host_flops_per_s)
    seq = settings.seq_len or 128
    ids = torch.full((1, seq), 1000, dtype=torch.long)
    from splitbed.model import profile_part

    flops = profile_part(part, seq).flops

    def workload() -> float:
        with torch.inference_mode():
            for _ in range(10):
                part(ids, torch.ones_like(ids), torch.zeros_like(ids))
        return 10.0 * flops

    report(run_calibration(stage, workload, freqs=freqs), as_json)
    return 0
