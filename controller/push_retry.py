"""When to try again a group whose last push failed while its devices or profiles had changed.

A push that fails on a churn re-plan (a device joined or left, a profile
changed) leaves that group's devices on plans made for another group, or on
none. Before this, such a group waited for the next event that happened to
re-plan it; now the controller's watcher re-plans it after `first_s`, doubling
the wait after each failed try up to `max_s`. A push that failed on a change
asked for by a client (budget, pins) is not retried: nothing was adopted, the
devices still run the plans of the group they are in, and the client got the
error.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class PushRetry:
    """Per edge server: when its group is next due to be re-planned, and the wait after that (s)."""

    first_s: float = 5.0
    max_s: float = 60.0
    _due: dict[str, float] = field(default_factory=dict)
    _wait: dict[str, float] = field(default_factory=dict)

    def failed(self, server: str, now: float) -> float:
        """The push to `server`'s group failed at `now`; the wait before the next try, s."""
        wait = self._wait.get(server, self.first_s)
        self._due[server] = now + wait
        self._wait[server] = min(self.max_s, wait * 2)
        return wait

    def succeeded(self, server: str) -> None:
        self._due.pop(server, None)
        self._wait.pop(server, None)

    def due(self, now: float, changed: list[str]) -> list[str]:
        """Servers due for a retry; a group that no longer differs from its plans (or is gone) is forgotten."""
        for server in [s for s in self._due if s not in changed]:
            self.succeeded(server)
        return sorted(s for s, at in self._due.items() if at <= now)

    def pending(self) -> dict[str, float]:
        """Server -> when its group is next tried (the clock `failed` was given)."""
        return dict(self._due)
