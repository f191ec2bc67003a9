"""Reads of orders."""

from __future__ import annotations

from django.db.models import Count

from orders.models import Order, ProductView

DB = "orders"
VIEW_LIMIT = 200  # the view travels in every receipt: keep it bounded


def product_list() -> list[ProductView]:
    return list(ProductView.objects.using(DB).order_by("sku"))


def order_get(order_id) -> Order | None:
    """The order as placed (None if unknown, not a UUID, or only a placeholder so far)."""
    try:
        order = Order.objects.using(DB).prefetch_related("lines").filter(order_id=str(order_id)).first()
    except Exception:  # a malformed id is simply unknown
        return None
    return order if order is not None and order.total is not None else None


def order_as_dict(order: Order) -> dict:
    return {
        "order_id": str(order.order_id),
        "status": order.status,
        "reason": order.reason,
        "customer": {"name": order.customer_name, "email": order.customer_email},
        "lines": [
            {"sku": line.sku, "name": line.name, "qty": line.qty, "unit_price": f"{line.unit_price:.2f}"}
            for line in order.lines.all()
        ],
        "total": f"{order.total:.2f}" if order.total is not None else None,
        "currency": order.currency,
        "created_at": order.created_at.isoformat(),
        "decided_at": order.decided_at.isoformat() if order.decided_at else None,
    }


def reason_category(reason: str) -> str:
    """A rejection reason without its SKU details, to count rejections by cause."""
    if reason.startswith("out of stock"):
        return reason.split(":", 1)[0]
    return reason


def orders_view() -> dict:
    """Orders' state for the dashboard: products of the local view and orders by status."""
    products = {
        p.sku: {"name": p.name, "price": f"{p.price:.2f}", "available": p.available, "version": p.version}
        for p in ProductView.objects.using(DB).order_by("sku")[:VIEW_LIMIT]
    }
    by_status = {status: 0 for status, _ in Order.STATUSES}
    for row in Order.objects.using(DB).values("status").annotate(n=Count("id")):
        by_status[row["status"]] = row["n"]
    return {"products": products, "orders_by_status": by_status}
