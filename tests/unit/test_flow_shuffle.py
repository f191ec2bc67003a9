"""The order flow under any delivery order, without workers.

An in-process bus delivers every event the three contexts publish (read from their
outboxes) through eventbus.delivery.handle, the workers' own entry point, in an
order shuffled by a seed, redelivering some envelopes (inbox dedupe) and some
copies under a new event id (handler idempotence). Whatever the order, the final
state of an order, its stock, its reservation and its payment is the same.
"""

from __future__ import annotations

import random
import uuid
from decimal import Decimal

import pytest

from eventbus import registry
from eventbus.delivery import handle
from eventbus.models import OutboxMessage
from inventory.models import Product, Reservation
from inventory.services import product_create
from orders.models import Order, ProductView
from orders.services import order_place, productview_apply
from payments.models import Payment

CONTEXTS = ("orders", "inventory", "payments")  # the dashboard only logs: left out here
SEEDS = range(12)


class InProcessBus:
    """Delivers what the contexts published, in a seeded random order."""

    def __init__(self, seed: int | None = None, *, duplicates: float = 0.0):
        self.rng = random.Random(seed)
        self.shuffle = seed is not None
        self.duplicates = duplicates
        self.pending: list[tuple[str, dict, bool]] = []
        self.marks = {c: OutboxMessage.objects.using(c).order_by("-id").values_list("id", flat=True).first() or 0
                      for c in CONTEXTS}
        self.delivered: list[tuple[str, str]] = []

    def collect(self) -> None:
        for context in CONTEXTS:
            for row in OutboxMessage.objects.using(context).filter(id__gt=self.marks[context]).order_by("id"):
                self.marks[context] = row.id
                for subscriber in registry.subscribers_of(row.event_type):
                    if subscriber in CONTEXTS:
                        self.pending.append((subscriber, row.envelope, False))

    def run(self, max_steps: int = 1000) -> None:
        self.collect()
        steps = 0
        while self.pending:
            steps += 1
            assert steps < max_steps, "the flow does not settle"
            index = self.rng.randrange(len(self.pending)) if self.shuffle else 0
            context, envelope, is_copy = self.pending.pop(index)
            outcome = handle(context, envelope)
            assert outcome.outcome in ("ok", "duplicate"), outcome
            self.delivered.append((context, envelope["event_type"]))
            if not is_copy and self.rng.random() < self.duplicates:
                self.pending.append((context, envelope, True))  # the same envelope again
                self.pending.append((context, {**envelope, "event_id": str(uuid.uuid4())}, True))  # same fact, new id
            self.collect()


def seed_products(spec: dict[str, tuple[str, int]]) -> str:
    """Create products {suffix: (price, on_hand)} under a fresh prefix and let orders see them."""
    prefix = f"SH{uuid.uuid4().hex[:8]}"
    bus = InProcessBus()
    for suffix, (price, on_hand) in spec.items():
        product_create(sku=f"{prefix}-{suffix}", name=f"Product {suffix}", price=price, on_hand=on_hand)
    bus.run()
    return prefix


def final_state(order_id: str, prefix: str, *, check_view: bool = True) -> dict:
    order = Order.objects.using("orders").get(order_id=order_id)
    payment = Payment.objects.using("payments").filter(order_id=order_id).first()
    reservation = Reservation.objects.using("inventory").filter(order_id=order_id).first()
    stock = {p.sku: (p.on_hand, p.reserved, p.version) for p in Product.objects.using("inventory").filter(sku__startswith=prefix)}
    view = {v.sku: (v.on_hand, v.reserved, v.version) for v in ProductView.objects.using("orders").filter(sku__startswith=prefix)}
    if check_view:
        assert view == stock, "orders' view follows inventory once every event is in"
    return {
        "status": order.status,
        "reason": order.reason,
        "total": order.total,
        "lines": sorted((line.sku, line.qty, line.unit_price) for line in order.lines.all()),
        "stock": stock,
        "reservation": reservation.status if reservation else None,
        # A rejected order may never have asked for payment, or had it voided: either way no money is held.
        "money_held": payment.status if payment and payment.status in (Payment.AUTHORIZED, Payment.CAPTURED) else None,
        "captured": payment.amount if payment and payment.status == Payment.CAPTURED else None,
    }


def run_scenario(seed, *, spec, lines, token, view_ahead=None, duplicates=0.3) -> dict:
    prefix = seed_products(spec)
    for suffix, available in (view_ahead or {}).items():
        # orders' view shows stock inventory does not have (a stale view, newer version)
        productview_apply(sku=f"{prefix}-{suffix}", name=f"Product {suffix}", price=spec[suffix][0],
                          on_hand=available, reserved=0, available=available, version=1000)
    bus = InProcessBus(seed, duplicates=duplicates)
    placed = order_place(customer_name="Ada", customer_email="ada@example.com",
                         lines=[{"sku": f"{prefix}-{s}", "qty": q} for s, q in lines], payment_token=token)
    bus.run()
    state = final_state(placed.order_id, prefix, check_view=not view_ahead)  # a faked view stays ahead
    state["stock"] = {sku.split("-", 1)[1]: v for sku, v in state["stock"].items()}
    state["reason"] = state["reason"].replace(f"{prefix}-", "")
    state["lines"] = [(sku.split("-", 1)[1], q, p) for sku, q, p in state["lines"]]
    return state


def distinct(states: list[dict]) -> list[dict]:
    unique = []
    for state in states:
        if state not in unique:
            unique.append(state)
    return unique


@pytest.mark.django_db(databases="__all__")
def test_confirmed_whatever_the_order():
    states = distinct([
        run_scenario(seed, spec={"A": ("10.00", 5), "B": ("2.50", 9)}, lines=[("A", 2), ("B", 4)], token="tok_visa")
        for seed in SEEDS
    ])
    assert states == [{
        "status": "CONFIRMED", "reason": "", "total": Decimal("30.00"),
        "lines": [("A", 2, Decimal("10.00")), ("B", 4, Decimal("2.50"))],
        "stock": {"A": (3, 0, 3), "B": (5, 0, 3)},
        "reservation": "COMMITTED", "money_held": "CAPTURED", "captured": Decimal("30.00"),
    }]


@pytest.mark.django_db(databases="__all__")
def test_payment_declined_releases_the_stock_whatever_the_order():
    states = distinct([
        run_scenario(seed, spec={"A": ("10.00", 5)}, lines=[("A", 2)], token="tok_declined") for seed in SEEDS
    ])
    assert states == [{
        "status": "REJECTED", "reason": "payment declined: card declined", "total": Decimal("20.00"),
        "lines": [("A", 2, Decimal("10.00"))], "stock": {"A": (5, 0, 3)},
        "reservation": "RELEASED", "money_held": None, "captured": None,
    }]


@pytest.mark.django_db(databases="__all__")
def test_insufficient_funds_above_the_limit():
    states = distinct([
        run_scenario(seed, spec={"A": ("60.00", 5)}, lines=[("A", 2)], token="tok_insufficient_funds") for seed in SEEDS
    ])
    assert [(s["status"], s["reason"], s["reservation"], s["money_held"]) for s in states] == [
        ("REJECTED", "payment declined: insufficient funds", "RELEASED", None)
    ]


@pytest.mark.django_db(databases="__all__")
def test_shortage_seen_only_by_inventory_voids_the_payment_whatever_the_order():
    states = distinct([
        run_scenario(seed, spec={"A": ("10.00", 1)}, lines=[("A", 3)], token="tok_visa", view_ahead={"A": 50})
        for seed in SEEDS
    ])
    assert len(states) == 1, states
    state = states[0]
    assert state["status"] == "REJECTED"
    assert state["reason"] == "out of stock: A (requested 3, available 1)"
    assert (state["reservation"], state["money_held"], state["stock"]) == ("FAILED", None, {"A": (1, 0, 1)})


@pytest.mark.django_db(databases="__all__")
def test_shortage_in_the_local_view_rejects_and_inventory_releases_whatever_the_order():
    states = distinct([
        run_scenario(seed, spec={"A": ("10.00", 2), "B": ("1.00", 10)}, lines=[("A", 3), ("B", 1)], token="tok_visa")
        for seed in SEEDS
    ])
    assert len(states) == 1, states
    state = states[0]
    assert state["status"] == "REJECTED"
    assert state["reason"].startswith("out of stock")
    assert state["money_held"] is None
    assert state["reservation"] == "FAILED"  # inventory refuses too: 3 > 2
    assert state["stock"] == {"A": (2, 0, 1), "B": (10, 0, 1)}


@pytest.mark.django_db(databases="__all__")
def test_the_last_units_confirm_even_when_the_reservation_reaches_orders_view_first():
    # Inventory's InventoryChanged (available 0, caused by this very order) may reach orders
    # before the OrderRequested: the stock check uses the view as it was when the order was placed.
    states = distinct([
        run_scenario(seed, spec={"A": ("7.00", 2)}, lines=[("A", 2)], token="tok_visa") for seed in SEEDS
    ])
    assert [(s["status"], s["stock"], s["money_held"]) for s in states] == [("CONFIRMED", {"A": (0, 0, 3)}, "CAPTURED")]


@pytest.mark.django_db(databases="__all__")
def test_an_order_requested_from_elsewhere_is_priced_from_the_view_when_handled():
    from contracts import Customer, Line, OrderRequested, build_envelope

    prefix = seed_products({"A": ("3.00", 4)})
    order_id = str(uuid.uuid4())
    envelope = build_envelope(OrderRequested(order_id=order_id, customer=Customer(name="Bo", email="bo@example.com"),
                                             lines=(Line(sku=f"{prefix}-A", qty=3),), payment_token="tok_visa"),
                              producer="orders")
    # Without order_place's snapshot the stock check uses the view when the event is
    # handled, so this one is delivered in publication order (FIFO).
    bus = InProcessBus(duplicates=0.5)
    bus.pending += [(c, envelope.as_dict(), False) for c in ("orders", "inventory")]
    bus.run()
    state = final_state(order_id, prefix)
    assert (state["status"], state["total"], state["captured"]) == ("CONFIRMED", Decimal("9.00"), Decimal("9.00"))
