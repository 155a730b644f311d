"""The controller's durable state in an embedded SQLite database (`--state FILE`).

What survives a restart: the budget and pins set over REST (and per device),
the plan version counter, the plan history, every device's current plan
(config and answer) with the group it was planned in, and the registered
nodes with their last profile. Each change is one transaction, so a
crash leaves either the old state or the new one; WAL mode keeps a reader from
ever seeing half of a change.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller.problem import Answer
from splitbed.errors import FailedPrecondition
from splitbed.v1 import control_pb2

logger = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS plans (
    version INTEGER PRIMARY KEY, reason TEXT NOT NULL, status TEXT NOT NULL, budget TEXT NOT NULL,
    pins TEXT NOT NULL, at REAL NOT NULL, config BLOB, answer TEXT);
CREATE TABLE IF NOT EXISTS nodes (
    node_id TEXT PRIMARY KEY, role TEXT NOT NULL, address TEXT NOT NULL, profile BLOB NOT NULL,
    registered_at REAL NOT NULL, last_seen REAL NOT NULL, acked_version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS current (
    device_id TEXT PRIMARY KEY, server TEXT NOT NULL, version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS groups (server TEXT PRIMARY KEY, answer TEXT, incomplete INTEGER NOT NULL);
"""
HISTORY_KEPT = 1000  # plan rows kept; older ones are pruned so the file stays bounded


@dataclass
class StoredNode:
    node_id: str
    role: str
    address: str
    profile: control_pb2.NodeProfile
    registered_at: float
    last_seen: float
    acked_version: int


@dataclass
class Snapshot:
    """Everything loaded at start-up (defaults when the file is new)."""

    version: int = 0
    budget: tuple[float, float] | None = None
    pins: dict[str, float] = field(default_factory=dict)
    plan: tuple[control_pb2.Config, Answer, str, float] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    nodes: list[StoredNode] = field(default_factory=list)
    device_budgets: dict[str, tuple[float, float]] = field(default_factory=dict)
    groups: list[StoredGroup] = field(default_factory=list)


@dataclass
class StoredPlan:
    """One plan row: what `record_group` writes, and for a device's current plan what is loaded back."""

    version: int
    reason: str
    status: str
    budget: tuple[float, float]
    pins: dict[str, float]
    config: control_pb2.Config | None
    answer_json: str | None
    at: float = 0.0


@dataclass
class StoredGroup:
    """An edge server's group: each device's current plan, and the joint answer (None for one device)."""

    server: str
    plans: dict[str, StoredPlan]
    answer_json: str | None
    incomplete: bool


class StateStore:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
            # Fail at start, not at the first registration, when the file cannot be written.
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('opened_at', ?)", (json.dumps(time.time()),))
        except sqlite3.Error as exc:
            raise FailedPrecondition(f"state file {self.path!r} cannot be used: {exc}") from None

    def close(self) -> None:
        self._db.close()

    def _meta(self, key: str) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def load(self) -> Snapshot:
        snap = Snapshot(version=int(self._meta("version") or 0), pins=self._meta("pins") or {})
        budget = self._meta("budget")
        snap.budget = (float(budget[0]), float(budget[1])) if budget else None
        rows = self._db.execute("SELECT version, reason, status, budget, pins, at, config, answer FROM plans "
                                "ORDER BY version").fetchall()
        for version, reason, status, budget_s, pins_s, at, config, answer in rows:
            snap.history.append({"version": version, "reason": reason, "status": status,
                                 "budget": json.loads(budget_s), "pins": json.loads(pins_s), "at": at})
            if status == "applied" and config is not None and answer is not None:
                snap.plan = (control_pb2.Config.FromString(config), Answer.model_validate_json(answer), status, at)
        snap.device_budgets = {d: (float(b[0]), float(b[1])) for d, b in (self._meta("device_budgets") or {}).items()}
        snap.groups = self._load_groups()
        for node_id, role, address, profile, reg, seen, acked in self._db.execute(
                "SELECT node_id, role, address, profile, registered_at, last_seen, acked_version FROM nodes"):
            snap.nodes.append(StoredNode(node_id, role, address, control_pb2.NodeProfile.FromString(profile),
                                         reg, seen, acked))
        return snap

    def _load_groups(self) -> list[StoredGroup]:
        groups = {server: StoredGroup(server, {}, answer, bool(incomplete)) for server, answer, incomplete in
                  self._db.execute("SELECT server, answer, incomplete FROM groups")}
        for device_id, server, version, reason, status, budget, pins, at, config, answer in self._db.execute(
                "SELECT c.device_id, c.server, p.version, p.reason, p.status, p.budget, p.pins, p.at, p.config, "
                "p.answer FROM current c JOIN plans p ON p.version = c.version WHERE p.config IS NOT NULL"):
            b = json.loads(budget)
            group = groups.setdefault(server, StoredGroup(server, {}, None, True))
            group.plans[device_id] = StoredPlan(version, reason, status, (b["latency_s"], b["energy_j"]),
                                                json.loads(pins), control_pb2.Config.FromString(config), answer, at)
        return [g for g in groups.values() if g.plans]

    def save_version(self, version: int) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta VALUES ('version', ?)", (json.dumps(version),))

    def _forget_old_configs(self, newest: int) -> None:
        # Only the plans some device runs now (and the newest) need their config and answer after a restart.
        self._db.execute("UPDATE plans SET config = NULL, answer = NULL WHERE version < ? AND config IS NOT NULL "
                         "AND version NOT IN (SELECT version FROM current)", (newest,))

    def record_group(self, server: str, rows: list[StoredPlan], current: dict[str, int], answer_json: str | None,
                     *, incomplete: bool, settings: tuple[tuple[float, float], dict[str, float],
                                                          dict[str, tuple[float, float]]] | None) -> float:
        """One transaction: a group's new plan rows, which plan each of its devices now runs, its joint
        answer, and (when adopted whole) the budget, pins and per-device budgets it was made under."""
        at = time.time()
        with self._tx():
            for r in rows:
                self._db.execute("INSERT OR REPLACE INTO plans VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                 (r.version, r.reason, r.status,
                                  json.dumps({"latency_s": r.budget[0], "energy_j": r.budget[1]}),
                                  json.dumps(r.pins), at, r.config.SerializeToString() if r.config else None,
                                  r.answer_json))
            newest = max([r.version for r in rows] + [int(self._meta("version") or 0)])
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('version', ?)", (json.dumps(newest),))
            if settings is not None:
                budget, pins, device_budgets = settings
                self._db.execute("INSERT OR REPLACE INTO meta VALUES ('budget', ?)", (json.dumps(list(budget)),))
                self._db.execute("INSERT OR REPLACE INTO meta VALUES ('pins', ?)", (json.dumps(pins),))
                self.save_device_budgets(device_budgets)
            self._db.execute("DELETE FROM current WHERE server = ?", (server,))
            for device_id, version in current.items():
                self._db.execute("INSERT OR REPLACE INTO current VALUES (?, ?, ?)", (device_id, server, version))
            self._db.execute("INSERT OR REPLACE INTO groups VALUES (?, ?, ?)", (server, answer_json, int(incomplete)))
            self._forget_old_configs(newest)
            self._db.execute("DELETE FROM plans WHERE version <= ?", (newest - HISTORY_KEPT,))
        return at

    def drop_group(self, server: str) -> None:
        with self._tx():
            self._db.execute("DELETE FROM current WHERE server = ?", (server,))
            self._db.execute("DELETE FROM groups WHERE server = ?", (server,))

    def save_device_budgets(self, budgets: dict[str, tuple[float, float]]) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta VALUES ('device_budgets', ?)",
                         (json.dumps({d: list(b) for d, b in budgets.items()}),))

    def save_node(self, node: StoredNode) -> None:
        self._db.execute("INSERT OR REPLACE INTO nodes VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (node.node_id, node.role, node.address, node.profile.SerializeToString(),
                          node.registered_at, node.last_seen, node.acked_version))

    def touch_node(self, node_id: str, last_seen: float, acked_version: int) -> None:
        self._db.execute("UPDATE nodes SET last_seen = ?, acked_version = ? WHERE node_id = ?",
                         (last_seen, acked_version, node_id))

    def delete_node(self, node_id: str) -> None:
        self._db.execute("DELETE FROM nodes WHERE node_id = ?", (node_id,))

    def _tx(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *_: object) -> None:
        self._db.execute("ROLLBACK" if exc_type is not None else "COMMIT")
