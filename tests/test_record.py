"""The per-request record: the JSONL object keeps its fields, in order, and reads back to the same record."""

from __future__ import annotations

import json

import numpy as np

from device_agent.record import TIMING_SOURCES, Energy, Predicted, RequestRecord, Timings
from device_agent.report import summarize, to_json, version_rows

# The JSONL fields as the agent has always written them (a file written before the record was typed reads
# the same): the contract with everyone who reads results.jsonl.
FULL_KEYS = ["id", "text", "embedding", "n_tokens", "seq_len", "payload_bytes", "config_version", "split", "rho",
             "rho_server", "method", "encoding", "timings", "energy", "predicted", "prediction_error", "cosine",
             "l2", "timing_sources", "model_label"]
TIMING_KEYS = ["device_compute_s", "encode_s", "upload_pacing_s", "transfer_s", "server_compute_s",
               "server_other_s", "e2e_s", "response_decode_s", "device_stretch_s", "server_stretch_s"]
PREDICTED_KEYS = ["t_device_s", "t_upload_s", "t_server_s", "latency_s", "e_device_j", "e_upload_j", "e_server_j",
                  "energy_j", "source"]


def _timings(e2e: float = 0.01) -> Timings:
    return Timings(0.002, 0.0001, 0.003, 0.004, 0.001, 0.0002, e2e, 0.00005, 0.0, 0.0)


def _bare(version: int = 1, e2e: float = 0.01) -> RequestRecord:
    return RequestRecord(embedding=np.arange(4, dtype=np.float32), n_tokens=5, seq_len=8, payload_bytes=1024,
                         config_version=version, split=2, rho=0.8, rho_server=0.9, method="structured-magnitude",
                         encoding="fp16", timings=_timings(e2e))


def _full() -> RequestRecord:
    rec = _bare()
    rec.energy = Energy(device_j=0.1, device_source="modelled:phi", upload_j=0.01, upload_source="modelled:p*t_upload")
    rec.predicted = Predicted(0.002, 0.003, 0.001, 0.008, 0.1, 0.01, 0.02, 0.13)
    rec.prediction_error = 0.25
    rec.id, rec.text, rec.cosine, rec.l2 = 3, "Readability counts.", 0.9999, 0.001
    rec.timing_sources, rec.model_label = TIMING_SOURCES, "all-MiniLM-L6-v2 (real weights)"
    return rec


def test_jsonl_fields_and_order():
    out = json.loads(to_json(_full()))
    assert list(out) == FULL_KEYS
    assert list(out["timings"]) == TIMING_KEYS
    assert list(out["predicted"]) == PREDICTED_KEYS
    assert out["predicted"]["source"].startswith("modelled")
    assert out["energy"] == {"device_j": 0.1, "device_source": "modelled:phi", "upload_j": 0.01,
                             "upload_source": "modelled:p*t_upload"}
    assert out["embedding"] == [0.0, 1.0, 2.0, 3.0]


def test_optional_parts_are_absent_not_null():
    out = json.loads(to_json(_bare()))
    assert list(out) == [k for k in FULL_KEYS if k in {"embedding", "n_tokens", "seq_len", "payload_bytes",
                                                       "config_version", "split", "rho", "rho_server", "method",
                                                       "encoding", "timings"}]


def test_reads_back():
    rec = _full()
    back = RequestRecord.from_dict(json.loads(to_json(rec)))
    assert json.loads(to_json(back)) == json.loads(to_json(rec))
    assert back.timings == rec.timings and back.predicted == rec.predicted and back.energy == rec.energy


def test_report_reads_the_record():
    records = [_bare(1, 0.010), _bare(1, 0.012), _bare(2, 0.020)]
    records[2].predicted = Predicted(0, 0, 0, 0.016, 0, 0, 0, 0)
    summary = summarize(records)
    assert summary["requests"] == 3
    assert summary["stages"]["e2e_s"]["median_s"] == 0.012
    rows = version_rows(records)
    assert [(r["version"], r["requests"]) for r in rows] == [(1, 2), (2, 1)]
    assert rows[0]["predicted_s"] is None and rows[0]["error"] is None
    assert abs(rows[1]["error"] - 0.25) < 1e-12
