"""Services and the dashboard log under concurrent writers, as several workers per context run
them: two threads, each on its own connection, interleaved at the exact point where a
check-then-act race would bite. On PostgreSQL (READ COMMITTED) these fail without the order
lock and the log's sequencer; on SQLite every transaction is IMMEDIATE and they pass anyway."""

from __future__ import annotations

import threading
import uuid

import pytest
from django.db import connections

from contracts import Line
from dashboard.models import LogEntry
from dashboard.services import log_batch
from inventory.models import Product, Reservation
from inventory.services import product_create, stock_release, stock_reserve
from orders.models import ProductView
from orders.services import productview_apply
from payments.models import Payment
from payments.services import payment_authorize, payment_void

WAIT = 3.0  # how long one side waits for the other to reach its point; the lock makes it time out


def _thread(fn, errors: list) -> threading.Thread:
    def run():
        try:
            fn()
        except BaseException as exc:  # reported by the test
            errors.append(exc)
        finally:
            connections.close_all()

    return threading.Thread(target=run, daemon=True)


def _interleave(using: str, first, second, *, first_waits_before: str, second_stops_after: str) -> None:
    """Run `first` and `second` in two threads on database `using`: `second` starts once `first`
    ran a query; `first` waits, just before its query that contains `first_waits_before`, until
    `second` ran its query containing `second_stops_after`; `second` then waits, before its
    commit, until `first` is done. Without a lock between them both commit on stale reads."""
    started, second_read, first_done = threading.Event(), threading.Event(), threading.Event()
    errors: list = []

    def first_wrapper(execute, sql, params, many, context):
        started.set()
        if first_waits_before in sql and sql.lstrip().upper().startswith("SELECT"):
            second_read.wait(WAIT)
        return execute(sql, params, many, context)

    def second_wrapper(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if second_stops_after in sql and sql.lstrip().upper().startswith("SELECT"):
            second_read.set()
            first_done.wait(WAIT)
        return result

    def run_first():
        with connections[using].execute_wrapper(first_wrapper):
            first()
        first_done.set()

    def run_second():
        started.wait(WAIT)
        with connections[using].execute_wrapper(second_wrapper):
            second()

    threads = [_thread(run_first, errors), _thread(run_second, errors)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads), "a writer never finished"
    assert not errors, errors


def test_a_release_racing_a_reservation_leaves_no_stock_held(live_db):
    sku, order_id = f"RACE-{uuid.uuid4().hex[:8]}", str(uuid.uuid4())
    product_create(sku=sku, name="Race lamp", price="10.00", on_hand=5)
    _interleave(
        "inventory",
        lambda: stock_reserve(order_id=order_id, lines=[Line(sku=sku, qty=2)]),
        lambda: stock_release(order_id=order_id, reason="rejected meanwhile"),
        first_waits_before='"inventory_rejectedorder"', second_stops_after='"inventory_reservation"',
    )
    assert Reservation.objects.using("inventory").get(order_id=order_id).status == Reservation.RELEASED
    assert Product.objects.using("inventory").get(sku=sku).reserved == 0


def test_a_void_racing_an_authorisation_leaves_nothing_authorised(live_db):
    order_id = str(uuid.uuid4())
    _interleave(
        "payments",
        lambda: payment_authorize(order_id=order_id, amount="12.00", currency="EUR", token="tok_visa"),
        lambda: payment_void(order_id=order_id, reason="rejected meanwhile"),
        first_waits_before='"payments_rejectedorder"', second_stops_after='"payments_payment"',
    )
    assert Payment.objects.using("payments").get(order_id=order_id).status == Payment.VOIDED


def test_concurrent_inventory_changes_never_move_orders_view_backwards(live_db):
    sku = f"RACE-{uuid.uuid4().hex[:8]}"
    state = dict(sku=sku, name="Race mug", price="5.00", on_hand=9, reserved=0, available=9)
    productview_apply(**state, version=1)
    _interleave(
        "orders",
        lambda: productview_apply(**{**state, "on_hand": 7, "available": 7}, version=2),
        lambda: productview_apply(**{**state, "on_hand": 6, "available": 6}, version=3),
        first_waits_before='"orders_productview"', second_stops_after='"orders_productview"',
    )
    view = ProductView.objects.using("orders").get(sku=sku)
    assert (view.version, view.on_hand) == (3, 6)


@pytest.mark.parametrize("writers", [4])
def test_a_reader_by_after_seq_never_misses_an_entry_of_concurrent_writers(live_db, writers):
    """Writers append batches at once while a reader pages by after_seq, as a client
    refetching gaps does: every entry it ever saw, and nothing skipped, at the end."""
    tag = uuid.uuid4().hex[:8]
    floor = LogEntry.objects.using("dashboard").order_by("-seq").values_list("seq", flat=True).first() or 0
    batches, per_batch = 15, 3
    stop = threading.Event()
    seen: list[int] = []
    errors: list = []

    def write(n):
        for b in range(batches):
            log_batch([("receipt", {"event_id": f"{tag}-{n}-{b}-{i}", "context": "orders", "outcome": "ok",
                                    "event_type": "OrderRequested", "producer": "orders",
                                    "correlation_id": tag, "attempt": 1}) for i in range(per_batch)])

    def read():
        after = floor
        while True:
            done = stop.is_set()
            rows = list(LogEntry.objects.using("dashboard").filter(seq__gt=after, correlation_id=tag)
                        .order_by("seq").values_list("seq", flat=True))
            if rows:
                seen.extend(rows)
                after = rows[-1]
            if done:
                return

    writer_threads = [_thread(lambda n=n: write(n), errors) for n in range(writers)]
    reader = _thread(read, errors)
    reader.start()
    for thread in writer_threads:
        thread.start()
    for thread in writer_threads:
        thread.join(120)
    stop.set()
    reader.join(30)
    assert not errors, errors
    stored = list(LogEntry.objects.using("dashboard").filter(seq__gt=floor, correlation_id=tag)
                  .order_by("seq").values_list("seq", flat=True))
    assert len(stored) == writers * batches * per_batch
    missed = sorted(set(stored) - set(seen))
    assert not missed, f"the reader passed {len(missed)} entries before they were visible: {missed[:10]}"


def test_reading_the_routes_leaves_no_connection_to_the_other_databases(live_db):
    """Every publishing process reads each context's subscription row once a second; with
    several workers per context, keeping those connections open used up PostgreSQL's slots."""
    from eventbus import registry, subscriptions

    if connections["orders"].vendor != "postgresql":
        pytest.skip("connection slots are PostgreSQL's concern; SQLite keeps its files open")
    connections.close_all()
    Product.objects.using("inventory").exists()  # a worker's own database, open before the read
    subscriptions.forget()
    assert set(subscriptions.rows()) == set(registry.contexts())
    still_open = {alias for alias in registry.contexts() if connections[alias].connection is not None}
    assert still_open == {"inventory"}
