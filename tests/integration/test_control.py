"""Pausing a context with Celery's consumer control: events wait in its queue, none is lost."""

import pytest

from eventbus import control
from tests.support.bus import new_probe_id, probe_effects, publish_probe
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.live]


def test_pause_holds_events_in_the_queue_and_resume_delivers_them(stack, live_db):
    assert control.consumer_status(max_age=0)["payments"] == "online"
    assert control.pause("payments") == [w for w in control.workers_of("payments")]
    try:
        assert control.consumer_status(max_age=0)["payments"] == "paused"
        probe_ids = [new_probe_id() for _ in range(5)]
        for probe_id in probe_ids:
            publish_probe(probe_id)
        wait_for(lambda: stack.queue_depth("payments") >= 5, message="the events waiting in the payments queue")
        state = {c["name"]: c for c in control.contexts_state()}
        assert state["payments"]["consumer"] == "paused" and state["payments"]["queue_depth"] >= 5
        assert all(probe_effects(p) == 0 for p in probe_ids)
    finally:
        control.resume("payments")
    assert control.consumer_status(max_age=0)["payments"] == "online"
    for probe_id in probe_ids:
        wait_for(lambda: probe_effects(probe_id) == 1, message=f"{probe_id} handled after resume")


def test_unknown_context_is_refused(stack, live_db):
    with pytest.raises(control.ControlError, match="unknown context 'nowhere'"):
        control.pause("nowhere")
