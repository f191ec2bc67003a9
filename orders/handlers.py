"""Orders' subscriptions: event in -> service call. Any delivery order is fine."""

from eventbus import register_local_view, register_sweep, register_view, subscribe
from orders import command_flow, selectors, services
from orders.models import ProductView


def on_order_requested(event, envelope):
    services.order_record(
        order_id=event.order_id, customer_name=event.customer.name, customer_email=event.customer.email,
        lines=event.lines, payment_token=event.payment_token,
    )


def on_inventory_changed(event, envelope):
    services.productview_apply(
        sku=event.sku, name=event.name, price=event.price, on_hand=event.on_hand,
        reserved=event.reserved, available=event.available, version=event.version,
    )


def on_stock_reserved(event, envelope):
    services.order_note(order_id=event.order_id, reserved=True)


def on_stock_reservation_failed(event, envelope):
    services.order_note(order_id=event.order_id, stock_failure=event.reason)


def on_payment_authorized(event, envelope):
    services.order_note(order_id=event.order_id, payment_id=event.payment_id)


def on_payment_declined(event, envelope):
    services.order_note(order_id=event.order_id, payment_failure=event.reason)


subscribe("orders", {
    "OrderRequested": on_order_requested,
    "InventoryChanged": on_inventory_changed,
    "StockReserved": on_stock_reserved,
    "StockReservationFailed": on_stock_reservation_failed,
    "PaymentAuthorized": on_payment_authorized,
    "PaymentDeclined": on_payment_declined,
})
register_local_view("orders", models=[ProductView], fed_by=["InventoryChanged"])
register_view("orders", selectors.orders_view)
register_sweep("orders", command_flow.order_abandoned_reject)
