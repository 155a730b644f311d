"""The retry schedule of a changed group whose push failed (`controller.push_retry.PushRetry`)."""

from __future__ import annotations

from controller.push_retry import PushRetry


def test_the_wait_doubles_after_each_failed_try_up_to_the_cap():
    retry = PushRetry(first_s=5.0, max_s=60.0)
    waits = [retry.failed("edge-0", float(t)) for t in range(6)]
    assert waits == [5.0, 10.0, 20.0, 40.0, 60.0, 60.0]
    assert retry.pending() == {"edge-0": 5.0 + 60.0}


def test_due_only_once_its_time_has_come_and_only_while_its_group_still_differs():
    retry = PushRetry(first_s=5.0)
    retry.failed("edge-0", 100.0)
    retry.failed("edge-1", 100.0)
    assert retry.due(104.9, ["edge-0", "edge-1"]) == []
    assert retry.due(105.0, ["edge-0", "edge-1"]) == ["edge-0", "edge-1"]
    # edge-1's group was re-planned by some other event meanwhile: forgotten, its backoff too.
    assert retry.due(106.0, ["edge-0"]) == ["edge-0"]
    assert set(retry.pending()) == {"edge-0"}
    assert retry.failed("edge-1", 200.0) == 5.0


def test_success_resets_the_backoff():
    retry = PushRetry(first_s=2.0)
    retry.failed("edge-0", 0.0)
    retry.failed("edge-0", 2.0)
    retry.succeeded("edge-0")
    assert retry.pending() == {} and retry.due(1e9, ["edge-0"]) == []
    assert retry.failed("edge-0", 10.0) == 2.0
