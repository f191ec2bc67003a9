"""Faults of the broker and of workers under a steady load: nothing lost, nothing applied twice."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connections

from tests.support.audit import audit_since, outbox_mark
from tests.support.flow import assert_flow_invariants, seed_products
from tests.support.bus import (new_probe_id, probe_effects, publish_probe, receipt_outcomes, redelivered_after,
                               unacked_deliveries)
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.live]


class SteadyLoad:
    """Publish probes at `rate` per second from a thread until stopped; remember them."""

    def __init__(self, rate: float = 20, sleep: float = 0.0):
        self.rate, self.sleep = rate, sleep
        self.probe_ids: list[str] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def publish_one(self) -> str:
        probe_id = new_probe_id()
        publish_probe(probe_id, sleep=self.sleep)
        return probe_id

    def _run(self):
        try:
            while not self._stop.is_set():
                self.probe_ids.append(self.publish_one())
                time.sleep(1 / self.rate)
        except Exception as exc:  # a publish must never fail: the outbox is local
            self.errors.append(repr(exc))
        finally:
            connections.close_all()

    def placed_at_least(self, n: int) -> bool:
        """Whether `n` were published; fails the test at once with the error if the load stopped on one."""
        assert not self.errors, f"the load stopped: {self.errors}"
        return len(self.probe_ids) >= n

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(10)


class OrderLoad(SteadyLoad):
    """Place orders (event-driven, a mix of tokens) at `rate` per second on the test's own products."""

    TOKENS = ("tok_visa", "tok_visa", "tok_visa", "tok_declined")

    def __init__(self, skus: list[str], rate: float = 5):
        super().__init__(rate=rate)
        self.skus = skus

    def publish_one(self) -> str:
        from orders.services import order_place

        n = len(self.probe_ids)
        placed = order_place(customer_name="Load", customer_email="load@example.com",
                             lines=[{"sku": self.skus[n % len(self.skus)], "qty": 1 + n % 2}],
                             payment_token=self.TOKENS[n % len(self.TOKENS)])
        return placed.order_id


def orders_settle(stack, mark, load, skus, *, timeout=120):
    from orders.models import Order

    assert not load.errors and load.probe_ids, load.errors
    wait_for(lambda: not Order.objects.using("orders").filter(order_id__in=load.probe_ids, status=Order.PENDING).exists(),
             timeout=timeout, message=f"all {len(load.probe_ids)} orders decided")
    stack.wait_idle(timeout=timeout)
    audit_since(mark, orders=load.probe_ids).assert_clean()
    statuses = assert_flow_invariants(load.probe_ids, set(skus))
    assert statuses["CONFIRMED"] > 0 and statuses["REJECTED"] > 0, statuses


def effects_of(probe_ids):
    from django.db.models import Count

    from tests.probe.models import ProbeEffect

    return dict(
        ProbeEffect.objects.using("payments").filter(probe_id__in=probe_ids)
        .values_list("probe_id").annotate(n=Count("id")).values_list("probe_id", "n")
    )


def effects_event_id(probe_id):
    from tests.probe.models import ProbeEffect

    return ProbeEffect.objects.using("payments").get(probe_id=probe_id).event_id


def assert_all_applied_once(stack, mark, probe_ids, *, timeout=90):
    assert probe_ids, "the load published nothing"
    wait_for(lambda: len(effects_of(probe_ids)) == len(probe_ids), timeout=timeout,
             message=f"all {len(probe_ids)} probes applied")
    stack.wait_idle(timeout=timeout)
    audit = audit_since(mark, probes=probe_ids)
    audit.assert_clean()
    return audit


def kill_while_in_flight(stack, queue: str) -> tuple[list[str], str]:
    """SIGKILL `queue`'s worker once it holds an unacknowledged delivery; return the event ids
    it held when it died (read after the kill, so none of them can still be acknowledged)."""
    from eventbus.delivery import now_iso

    from django.conf import settings

    broker = stack.broker()
    if settings.BROKER_IS_AMQP:  # RabbitMQ cannot list what a worker holds: kill it mid-load
        wait_for(lambda: stack.busy(), timeout=60, message=f"load in flight for {queue}")
        stack.kill_worker(queue)
        return [], now_iso()
    for _ in range(5):
        wait_for(lambda: unacked_deliveries(broker, queue), timeout=60, message=f"{queue}'s worker to take a delivery")
        stack.kill_worker(queue)
        moment = now_iso()
        held = unacked_deliveries(broker, queue)
        if held:
            return held, moment
        stack.start_worker(queue)  # it acknowledged between the two reads: try again
    pytest.fail(f"never killed {queue}'s worker with a delivery in flight")


def broker_loses_the_queue(stack, queue: str, *, at_least: int) -> None:
    """Once `queue` holds `at_least` deliveries, make the broker lose its data (Redis: killed,
    wiped and started again; RabbitMQ: its virtual host recreated); the queued deliveries go with it."""
    wait_for(lambda: stack.queue_depth(queue) >= at_least, message=f"deliveries queued for {queue}")
    queued = stack.queued(queue)  # what the crash must take along
    stack.lose_broker_data()
    # The queued deliveries are gone (the load may already have queued new ones).
    assert not queued & stack.queued(queue)


def assert_redelivered(event_ids: list[str], context: str, moment: str) -> None:
    """Each delivery the killed worker held was handled again by a new process (or caught as a duplicate)."""
    for event_id in event_ids:
        wait_for(lambda: redelivered_after(event_id, context, moment), timeout=90,
                 message=f"{event_id} redelivered to {context} after the kill")


def test_a_steady_load_without_faults_is_audited_clean(stack, live_db):
    """The control run of the audit: 150 probes, no fault, each applied exactly once."""
    mark = outbox_mark()
    probe_ids = [new_probe_id() for _ in range(150)]
    for probe_id in probe_ids:
        publish_probe(probe_id)
    audit = assert_all_applied_once(stack, mark, probe_ids)
    assert audit.committed == 150 and audit.measured == 150


def test_the_broker_restarted_with_its_data_lost_while_events_flow(stack, live_db):
    mark = outbox_mark()
    # With payments offline, its deliveries wait in the broker: they are what the crash loses.
    stack.stop_worker("payments")
    try:
        with SteadyLoad(rate=25) as load:
            broker_loses_the_queue(stack, "payments", at_least=20)
            published = len(load.probe_ids)
            wait_for(lambda: load.placed_at_least(published + 20), message="more load after the restart")
    finally:
        stack.start_worker("payments")
    assert not load.errors
    assert_all_applied_once(stack, mark, load.probe_ids)
    # Workers consume again without a restart.
    fresh = new_probe_id()
    publish_probe(fresh)
    wait_for(lambda: probe_effects(fresh) == 1, message="a fresh event after the data loss")


def test_sigkill_a_worker_under_steady_load_then_start_a_new_one(stack, live_db):
    mark = outbox_mark()
    with SteadyLoad(rate=10, sleep=0.3) as load:
        held, moment = kill_while_in_flight(stack, "payments")
        stack.start_worker("payments")
        wait_for(lambda: load.placed_at_least(20), message="more load after the new worker started")
    assert not load.errors
    assert_redelivered(held, "payments", moment)
    assert_all_applied_once(stack, mark, load.probe_ids)


@pytest.mark.redis_broker  # RabbitMQ has no visibility timeout: it never hands out a held message
def test_a_handler_slower_than_the_visibility_timeout_is_not_applied_twice(stack, live_db):
    from django.conf import settings

    mark = outbox_mark()
    probe_id = new_probe_id()
    publish_probe(probe_id, sleep=settings.EVENTFLOW_VISIBILITY_TIMEOUT + 5)
    # While it sleeps, the broker hands the message out again; the second copy
    # waits on the inbox row and is acknowledged as a duplicate.
    wait_for(lambda: probe_effects(probe_id) == 1, timeout=60, message="the slow handler to finish")
    envelope_id = effects_event_id(probe_id)
    wait_for(lambda: sorted(receipt_outcomes(envelope_id, "payments")) == ["duplicate", "ok"], timeout=60,
             message="the broker's second copy acknowledged as a duplicate")
    stack.wait_idle(timeout=60)
    assert probe_effects(probe_id) == 1
    audit_since(mark, probes=[probe_id]).assert_clean()


def test_orders_flow_through_a_broker_restart_that_lost_its_data(stack, live_db):
    skus = list(seed_products({"A": ("3.00", 400), "B": ("5.00", 400)}).values())
    mark = outbox_mark()
    stack.stop_worker("inventory")  # its deliveries wait in the broker and are lost with it
    try:
        with OrderLoad(skus, rate=5) as load:
            broker_loses_the_queue(stack, "inventory", at_least=5)
            placed = len(load.probe_ids)
            wait_for(lambda: load.placed_at_least(placed + 10), message="more orders after the restart")
    finally:
        stack.start_worker("inventory")
    orders_settle(stack, mark, load, skus)


def test_sigkill_the_inventory_worker_under_a_steady_load_of_orders(stack, live_db):
    skus = list(seed_products({"A": ("3.00", 400), "B": ("5.00", 400)}).values())
    mark = outbox_mark()
    with OrderLoad(skus, rate=5) as load:
        held, moment = kill_while_in_flight(stack, "inventory")
        stack.start_worker("inventory")
        wait_for(lambda: load.placed_at_least(20), timeout=90, message="more orders after the new worker started")
    assert_redelivered(held, "inventory", moment)
    orders_settle(stack, mark, load, skus)
