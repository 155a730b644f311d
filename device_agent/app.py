"""The agent as a program: connect, follow the controller if any, run the workload, write records."""

from __future__ import annotations

import asyncio
import logging

import numpy as np
import torch

from device_agent.node import DeviceNode
from device_agent.open_loop import run_open_loop
from device_agent.record import TIMING_SOURCES, RequestRecord
from device_agent.report import add_fidelity, print_summary, print_versions, write_jsonl
from device_agent.runner import DeviceRunner
from device_agent.samples import load_texts
from device_agent.settings import AgentSettings
from splitbed.control_client import ControlClient
from splitbed.errors import Unavailable
from splitbed.model import load_device_part, load_full_model, resolve_model
from splitbed.side.calibrate_command import calibrate_command
from splitbed.tls import TlsFiles, read_token
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


async def follow_controller(runner: DeviceRunner, settings: AgentSettings) -> tuple[ControlClient, DeviceNode]:
    assert settings.controller is not None
    node = DeviceNode.of(runner)
    control = ControlClient(settings.controller, settings.node_id, control_pb2.ROLE_DEVICE, node,
                            tls=TlsFiles.of(settings), token=read_token(settings.token, settings.token_file))
    control.start()
    try:
        await asyncio.wait_for(control.first_config.wait(), settings.wait_config_s)
    except asyncio.TimeoutError:  # wait_for's; not the builtin TimeoutError on 3.10
        await control.close()
        raise Unavailable(f"no plan from controller {settings.controller} within {settings.wait_config_s:.0f} s "
                          "(is it running, and is an edge server registered with it?)") from None
    return control, node


async def run_workload(runner: DeviceRunner, settings: AgentSettings, texts: list[str]) -> list[RequestRecord]:
    """The records of the whole workload, under the controller when there is one."""
    control: ControlClient | None = None
    try:
        await runner.connect(standalone=not settings.controller)
        if not settings.controller:
            if settings.rate:
                return await run_open_loop(runner, texts, settings.rate, lambda: (0.0, 0.0))
            return await runner.run(texts)
        control, node = await follow_controller(runner, settings)

        async def on_record(rec: RequestRecord) -> None:
            node.observe(rec)
            if control is not None:
                await control.report_telemetry()

        if settings.rate:
            return await run_open_loop(runner, texts, settings.rate, lambda: node.slot, on_record)
        return await runner.run(texts, on_record)
    finally:
        if control is not None:
            await control.close()
        await runner.close()


async def run_agent(settings: AgentSettings) -> int:
    texts = load_texts(settings.texts)
    runner = DeviceRunner(settings)
    records = await run_workload(runner, settings, texts)
    if settings.reference:
        ref = reference_embeddings(runner, texts)
        add_fidelity(records, np.concatenate([ref] * settings.repeat))
    for rec in records:
        rec.timing_sources = TIMING_SOURCES
        rec.model_label = runner.source.label
    write_jsonl(settings.out, records)
    if not settings.quiet:
        st = runner.state
        title = (f"{runner.source.label}: split L={st.split}, rho={st.rho_device:g} "
                 f"(achieved {st.part.report.achieved_rho:.3f}), rho~={st.rho_server:g}, {st.method}, {st.encoding}")
        print_summary(records, title)
        if settings.controller:
            print_versions(records)
        print(f"wrote {len(records)} records to {settings.out}")
    return 0


def run_command(settings: AgentSettings) -> int:
    """`device-agent run`."""
    return asyncio.run(run_agent(settings))


def calibrate(settings: AgentSettings, freqs: list[float] | None, as_json: bool) -> int:
    """Fit phi on this device with its own front layers as the workload."""
    source = resolve_model(settings.model)
    part = load_device_part(source, max(settings.split, 1), rho=settings.rho, method=settings.method,
                            device=settings.device)
    return calibrate_command(settings, part, settings.seq_len or 128, freqs, as_json)
