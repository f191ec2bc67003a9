"""Inventory's subscriptions and commands: message in -> service call."""

from eventbus import handle_commands, keep_for, register_retention, register_view, subscribe
from inventory import demo, selectors, services
from inventory.models import RejectedOrder, Reservation


def on_order_requested(event, envelope):
    services.stock_reserve(order_id=event.order_id, lines=event.lines)


def on_order_rejected(event, envelope):
    services.stock_release(order_id=event.order_id, reason=event.reason)


def on_order_confirmed(event, envelope):
    services.stock_commit(order_id=event.order_id)


subscribe("inventory", {
    "OrderRequested": on_order_requested,
    "OrderRejected": on_order_rejected,
    "OrderConfirmed": on_order_confirmed,
})
register_view("inventory", selectors.stock_view)


# --- commands of the command-driven mode (the caller waits for the reply) --------
def reserve_stock(command) -> dict:
    reservation = services.stock_reserve(order_id=command.order_id, lines=command.lines)
    return {"ok": reservation.status == Reservation.HELD, "reason": reservation.reason}


def release_stock(command) -> dict:
    services.stock_release(order_id=command.order_id, reason="released by command")
    return {"ok": True}


def commit_stock(command) -> dict:
    reservation = services.stock_commit(order_id=command.order_id)
    committed = reservation is not None and reservation.status == Reservation.COMMITTED
    return {"ok": committed, "reason": "" if committed else "no stock held for this order"}


def check_stock(command) -> dict:
    shortages = selectors.stock_shortages(command.lines)
    return {"ok": not shortages, "shortages": shortages}


def restock_demo_catalog(command) -> dict:
    return {"ok": True, **demo.demo_catalog_restock(prefix=command.sku_prefix)}


handle_commands("inventory", {
    "ReserveStock": reserve_stock,
    "ReleaseStock": release_stock,
    "CommitStock": commit_stock,
    "CheckStock": check_stock,
    "RestockDemoCatalog": restock_demo_catalog,
})


# A rejection marker guards against the order's late deliveries: kept as long as the inbox.
register_retention("inventory", keep_for(RejectedOrder, context="inventory", field="at", setting="EVENTFLOW_RETENTION_INBOX"))
