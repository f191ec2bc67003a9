"""Services of inventory, orders and payments, without workers (nothing leaves the outbox)."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from django.core.management import call_command

from contracts import Line
from eventbus.models import OutboxMessage
from inventory import services as inventory
from inventory.models import Product, Reservation, StockAdjustment
from inventory.selectors import stock_view
from orders.models import ProductView
from orders.selectors import orders_view, reason_category
from orders.services import productview_apply
from payments.selectors import totals_view
from payments.services import decline_reason, payment_authorize, payment_void

pytestmark = pytest.mark.django_db(databases="__all__")


def sku() -> str:
    return f"U{uuid.uuid4().hex[:10]}"


def published(context: str, event_type: str, **payload) -> list[dict]:
    rows = OutboxMessage.objects.using(context).filter(event_type=event_type).order_by("id")
    return [r.envelope["payload"] for r in rows if all(r.envelope["payload"].get(k) == v for k, v in payload.items())]


def test_every_product_change_publishes_its_next_version():
    s = sku()
    inventory.product_create(sku=s, name="Mug", price="12.5", on_hand=5)
    inventory.product_reprice(sku=s, price="13.00")
    inventory.stock_adjust(sku=s, delta=3, reason="delivery", kind=StockAdjustment.RESTOCK)
    changes = published("inventory", "InventoryChanged", sku=s)
    assert [(c["version"], c["price"], c["on_hand"], c["available"]) for c in changes] == [
        (1, "12.50", 5, 5), (2, "13.00", 5, 5), (3, "13.00", 8, 8)
    ]
    assert StockAdjustment.objects.using("inventory").filter(sku=s).count() == 2  # initial stock + restock


@pytest.mark.parametrize("delta, kind, reason, message", [
    (-6, StockAdjustment.CORRECTION, "counted", "below zero"),
    (-4, StockAdjustment.CORRECTION, "counted", "below the 2 reserved"),
    (-1, StockAdjustment.RESTOCK, "oops", "a restock adds stock"),
    (1, StockAdjustment.RESTOCK, "  ", "needs a reason"),
    (0, StockAdjustment.CORRECTION, "none", "non-zero"),
])
def test_a_correction_never_breaks_the_stock(delta, kind, reason, message):
    s = sku()
    inventory.product_create(sku=s, name="Mug", price="1.00", on_hand=5)
    inventory.stock_reserve(order_id=str(uuid.uuid4()), lines=[Line(sku=s, qty=2)])
    with pytest.raises(inventory.StockError, match=message):
        inventory.stock_adjust(sku=s, delta=delta, reason=reason, kind=kind)
    product = Product.objects.using("inventory").get(sku=s)
    assert (product.on_hand, product.reserved, product.version) == (5, 2, 2)


def test_product_create_refuses_a_duplicate_and_a_bad_price():
    s = sku()
    inventory.product_create(sku=s, name="Mug", price="1.00")
    with pytest.raises(inventory.StockError, match="already exists"):
        inventory.product_create(sku=s, name="Mug", price="1.00")
    with pytest.raises(inventory.StockError, match="price"):
        inventory.product_create(sku=sku(), name="Mug", price="-1")


def test_a_reservation_is_all_or_nothing_and_idempotent():
    a, b = sku(), sku()
    inventory.product_create(sku=a, name="A", price="1.00", on_hand=5)
    inventory.product_create(sku=b, name="B", price="1.00", on_hand=1)
    order_id = str(uuid.uuid4())
    failed = inventory.stock_reserve(order_id=order_id, lines=[Line(sku=a, qty=2), Line(sku=b, qty=2)])
    assert failed.status == Reservation.FAILED
    assert Product.objects.using("inventory").get(sku=a).reserved == 0
    [failure] = published("inventory", "StockReservationFailed", order_id=order_id)
    assert failure["shortages"] == [{"sku": b, "requested": 2, "available": 1}]
    assert inventory.stock_reserve(order_id=order_id, lines=[Line(sku=a, qty=1)]).status == Reservation.FAILED

    other = str(uuid.uuid4())
    held = inventory.stock_reserve(order_id=other, lines=[Line(sku=a, qty=2), Line(sku=a, qty=1)])
    assert held.status == Reservation.HELD and held.lines == [{"sku": a, "qty": 3}]
    inventory.stock_reserve(order_id=other, lines=[Line(sku=a, qty=2)])
    assert Product.objects.using("inventory").get(sku=a).reserved == 3
    inventory.stock_commit(order_id=other)
    inventory.stock_commit(order_id=other)
    product = Product.objects.using("inventory").get(sku=a)
    assert (product.on_hand, product.reserved) == (2, 0)
    # A rejection after the commit (a CommitStock that committed after its sender gave
    # up) undoes the sale, once.
    inventory.stock_release(order_id=other)
    inventory.stock_release(order_id=other)
    product = Product.objects.using("inventory").get(sku=a)
    assert (product.on_hand, product.reserved) == (5, 0)
    assert Reservation.objects.using("inventory").get(order_id=other).status == Reservation.RELEASED
    assert inventory.stock_commit(order_id=other).status == Reservation.RELEASED  # and stays undone


def test_a_rejection_after_the_capture_refunds_it_once():
    from payments.models import Payment
    from payments.services import payment_capture

    order_id = str(uuid.uuid4())
    payment_authorize(order_id=order_id, amount="5.00", currency="EUR", token="tok_visa")
    assert payment_capture(order_id=order_id).status == Payment.CAPTURED
    payment_void(order_id=order_id, reason="its sender gave up")
    payment_void(order_id=order_id, reason="its sender gave up")
    payment = Payment.objects.using("payments").get(order_id=order_id)
    assert payment.status == Payment.VOIDED and payment.reason.startswith("refunded")
    assert len(published("payments", "PaymentVoided", order_id=order_id)) == 1
    assert payment_capture(order_id=order_id).status == Payment.VOIDED


def test_a_rejection_before_the_request_releases_the_reservation_at_once():
    a = sku()
    inventory.product_create(sku=a, name="A", price="1.00", on_hand=5)
    order_id = str(uuid.uuid4())
    inventory.stock_release(order_id=order_id, reason="payment declined")
    reservation = inventory.stock_reserve(order_id=order_id, lines=[Line(sku=a, qty=2)])
    assert reservation.status == Reservation.RELEASED
    assert Product.objects.using("inventory").get(sku=a).reserved == 0
    assert published("inventory", "StockReleased", order_id=order_id)


def test_an_older_or_equal_version_never_overwrites_the_view():
    s = sku()
    productview_apply(sku=s, name="New", price="2.00", on_hand=5, reserved=1, available=4, version=3)
    productview_apply(sku=s, name="Old", price="1.00", on_hand=9, reserved=0, available=9, version=2)
    productview_apply(sku=s, name="Same", price="1.00", on_hand=9, reserved=0, available=9, version=3)
    view = ProductView.objects.using("orders").get(sku=s)
    assert (view.name, view.available, view.version) == ("New", 4, 3)


@pytest.mark.parametrize("token, amount, reason", [
    ("tok_visa", "5000.00", ""),
    ("tok_declined", "1.00", "card declined"),
    ("tok_insufficient_funds", "100.00", ""),
    ("tok_insufficient_funds", "100.01", "insufficient funds"),
    ("tok_unknown", "1.00", "unknown payment token"),
])
def test_tokens_decide_the_authorisation(token, amount, reason):
    assert decline_reason(token=token, amount=Decimal(amount)) == reason


def test_a_rejection_before_the_request_voids_the_authorisation_at_once():
    order_id = str(uuid.uuid4())
    payment_void(order_id=order_id, reason="out of stock")
    payment = payment_authorize(order_id=order_id, amount="10.00", currency="EUR", token="tok_visa")
    assert payment.status == "VOIDED"
    assert published("payments", "PaymentAuthorized", order_id=order_id)
    assert published("payments", "PaymentVoided", order_id=order_id)
    assert payment_authorize(order_id=order_id, amount="10.00", currency="EUR", token="tok_visa").status == "VOIDED"


def test_views_have_the_shapes_the_dashboard_renders():
    s = sku()
    inventory.product_create(sku=s, name="Mug", price="3.00", on_hand=2)
    productview_apply(sku=s, name="Mug", price="3.00", on_hand=2, reserved=0, available=2, version=1)
    payment_authorize(order_id=str(uuid.uuid4()), amount="12.00", currency="EUR", token="tok_visa")
    stock = stock_view()["stock"]
    assert s in stock, sorted(stock)[:5]
    assert stock[s] == {"name": "Mug", "price": "3.00", "on_hand": 2, "reserved": 0, "available": 2, "version": 1}
    view = orders_view()
    assert set(view) == {"products", "orders_by_status"}
    assert set(view["orders_by_status"]) == {"PENDING", "CONFIRMED", "REJECTED"}
    totals = totals_view()["totals_by_status"]
    assert isinstance(totals["AUTHORIZED"]["count"], int) and isinstance(totals["AUTHORIZED"]["amount"], str)


def test_reason_categories_drop_sku_details():
    assert reason_category("out of stock (local view): A (requested 3, available 1)") == "out of stock (local view)"
    assert reason_category("out of stock: A (requested 3, available 1)") == "out of stock"
    assert reason_category("payment declined: card declined") == "payment declined: card declined"


def test_seed_demo_is_idempotent():
    prefix = f"SD{uuid.uuid4().hex[:6]}"
    call_command("seed_demo", sku_prefix=prefix)
    call_command("seed_demo", sku_prefix=prefix)
    products = Product.objects.using("inventory").filter(sku__startswith=f"{prefix}-")
    assert products.count() >= 8
    assert all(p.version == 1 for p in products)
    assert sum(1 for p in products if 2 <= p.on_hand <= 5) >= 3
    assert len([c for c in published("inventory", "InventoryChanged") if c["sku"].startswith(prefix)]) == products.count()


def test_a_line_without_a_positive_quantity_reserves_nothing():
    a = sku()
    inventory.product_create(sku=a, name="A", price="1.00", on_hand=5)
    order_id = str(uuid.uuid4())
    assert inventory.stock_reserve(order_id=order_id, lines=[Line(sku=a, qty=-2)]).status == Reservation.FAILED
    assert Product.objects.using("inventory").get(sku=a).reserved == 0
    assert published("inventory", "StockReservationFailed", order_id=order_id)
