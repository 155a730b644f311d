"""The agent as a program: connect, follow the controller if any, run the workload, write each record."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import numpy as np
import torch

from device_agent.node import DeviceNode
from device_agent.open_loop import run_open_loop
from device_agent.record import TIMING_SOURCES, RequestRecord
from device_agent.records import RecordWriter, read_records, record_key
from device_agent.report import add_fidelity, print_summary, print_versions, to_json
from device_agent.runner import DeviceRunner
from device_agent.samples import load_texts
from device_agent.settings import AgentSettings
from splitbed.control_client import ControlClient
from splitbed.errors import PermissionDenied, Unauthenticated, Unavailable
from splitbed.model import load_device_part, load_full_model, resolve_model
from splitbed.resilience import Keepalive
from splitbed.side.calibrate_command import calibrate_command
from splitbed.tls import TlsFiles, read_token
from splitbed.v1 import control_pb2

logger = logging.getLogger(__name__)

OnRecord = Callable[[RequestRecord], Awaitable[None]]


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
                            tls=TlsFiles.of(settings), token=read_token(settings.token, settings.token_file),
                            rpc_timeout_s=settings.control_timeout_s,
                            keepalive=Keepalive(settings.keepalive_s, settings.keepalive_timeout_s))
    control.start()
    waits = [asyncio.ensure_future(control.first_config.wait()), asyncio.ensure_future(control.refused.wait())]
    await asyncio.wait(waits, timeout=settings.wait_config_s, return_when=asyncio.FIRST_COMPLETED)
    for w in waits:
        w.cancel()
    if control.first_config.is_set():
        return control, node
    await control.close()
    if control.refused.is_set():
        error = PermissionDenied if control.refusal.startswith("PERMISSION_DENIED") else Unauthenticated
        raise error(f"controller {settings.controller} refused this agent ({control.refusal}): check --token / "
                    f"--token-file (the token of node:{settings.node_id}, or admin) and, with mutual TLS, that "
                    f"the certificate names {settings.node_id}")
    raise Unavailable(f"no plan from controller {settings.controller} within {settings.wait_config_s:.0f} s "
                      "(is it running, and is an edge server registered with it?)")


async def run_workload(runner: DeviceRunner, settings: AgentSettings, texts: list[str], sink: OnRecord,
                       skip: set[str]) -> list[RequestRecord]:
    """The records of the whole workload, under the controller when there is one; `sink` gets each at once."""
    control: ControlClient | None = None
    try:
        await runner.connect(standalone=not settings.controller)
        if not settings.controller:
            if settings.rate:  # open loop at the planned rate (no --resume skipping there)
                return await run_open_loop(runner, texts, settings.rate, lambda: (0.0, 0.0), sink)
            return await runner.run(texts, sink, skip=skip)
        control, node = await follow_controller(runner, settings)

        async def on_record(rec: RequestRecord) -> None:
            await sink(rec)
            node.observe(rec)
            if control is not None:
                await control.report_telemetry()

        if settings.rate:
            return await run_open_loop(runner, texts, settings.rate, lambda: node.slot, on_record)
        return await runner.run(texts, on_record, skip=skip)
    finally:
        if control is not None:
            await control.close()
        await runner.close()


def record_sink(runner: DeviceRunner, writer: RecordWriter, ref: np.ndarray | None) -> OnRecord:
    """Completes a record (fidelity, sources, model label) and appends it to the file as soon as it is made."""

    async def sink(rec: RequestRecord) -> None:
        if ref is not None and rec.index is not None:
            add_fidelity([rec], ref[rec.index][None])
        rec.timing_sources = TIMING_SOURCES
        rec.model_label = runner.source.label
        writer.write(to_json(rec), record_key(rec))

    return sink


async def run_agent(settings: AgentSettings) -> int:
    texts = load_texts(settings.texts)
    writer = RecordWriter(settings.out, resume=settings.resume, fsync_every=settings.fsync_every)
    if writer.run_id and not settings.run_id:  # a resumed run keeps its idempotent id
        settings = settings.model_copy(update={"run_id": writer.run_id})
    runner = DeviceRunner(settings)
    try:
        ref = reference_embeddings(runner, texts) if settings.reference else None
        records = await run_workload(runner, settings, texts, record_sink(runner, writer, ref), writer.done)
    finally:
        writer.close()
    if writer.resumed:
        records = [RequestRecord.from_dict(d) for d in read_records(settings.out)[0]]
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


def run_command(settings: AgentSettings) -> int:
    """`device-agent run`."""
    return asyncio.run(run_agent(settings))


def calibrate(settings: AgentSettings, freqs: list[float] | None, as_json: bool) -> int:
    """Fit phi on this device with its own front layers as the workload."""
    source = resolve_model(settings.model)
    part = load_device_part(source, max(settings.split, 1), rho=settings.rho, method=settings.method,
                            device=settings.device)
    return calibrate_command(settings, part, settings.seq_len or 128, freqs, as_json)
