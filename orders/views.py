"""Web form and JSON API of orders. Both place orders through services.order_place."""

from __future__ import annotations

import json

from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from orders import selectors
from orders.forms import OrderForm
from orders.command_flow import OrderTimedOut, order_place_by_commands
from orders.services import StockQueryFailed, order_place
from orders.validation import OrderInvalid, validate_order

API_FIELDS = {"customer", "lines", "payment_token", "mode"}
MODES = ("event", "command")


@require_http_methods(["GET", "POST"])
def order_new(request):
    """The order form: products, prices and availability from orders' local view."""
    products = selectors.product_list()
    form = OrderForm(request.POST if request.method == "POST" else None, products=products)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                placed = _place(
                    mode=form.cleaned_data.get("mode") or "event",
                    customer_name=form.cleaned_data["customer_name"],
                    customer_email=form.cleaned_data["customer_email"],
                    lines=form.lines(),
                    payment_token=form.cleaned_data["payment_token"],
                )
            except OrderInvalid as exc:
                form.add_service_errors(exc.errors)
            except (OrderTimedOut, StockQueryFailed) as exc:
                form.add_error(None, str(exc))
                status = 504
            else:
                return redirect(f"/orders/{placed.order_id}/")
    return render(request, "orders/new.html", {"form": form}, status=status)


def _place(*, mode: str, **request):
    """Event mode publishes and returns at once; command mode returns once decided."""
    if mode == "command":
        return order_place_by_commands(**request)
    return order_place(**request)


@require_GET
def api_products(request):
    """Orders' local product view."""
    return JsonResponse({"products": [
        {"sku": p.sku, "name": p.name, "price": f"{p.price:.2f}", "available": p.available, "version": p.version}
        for p in selectors.product_list()
    ]})


def _bad(errors: dict) -> JsonResponse:
    return JsonResponse({"errors": errors}, status=400)


@csrf_exempt  # clients of the JSON API are scripts, not browsers with a session
@require_http_methods(["POST"])
def api_orders(request):
    """POST {"customer": {"name", "email"}, "lines": [{"sku", "qty"}], "payment_token", "mode"?}

    mode "event" (default) -> 202 {"order_id", "correlation_id", "mode"}: the flow goes on.
    mode "command" -> 200 {..., "status", "reason"} once decided, or 504 with errors.mode
    when a context did not answer in time. 400 {"errors": {field: [messages]}} for bad
    input; a rejected request publishes nothing."""
    try:
        body = json.loads(request.body or b"")
    except (ValueError, UnicodeDecodeError) as exc:
        return _bad({"body": [f"malformed JSON: {exc}"]})
    if not isinstance(body, dict):
        return _bad({"body": ["must be a JSON object"]})
    errors: dict[str, list[str]] = {field: ["unexpected field"] for field in sorted(set(body) - API_FIELDS)}
    if body.get("mode", "event") not in MODES:
        errors["mode"] = [f"must be one of: {', '.join(MODES)}"]
    customer = body.get("customer")
    if not isinstance(customer, dict):
        errors["customer"] = ["must be an object with name and email"]
        customer = {}
    for field in sorted(set(customer) - {"name", "email"}):
        errors[f"customer.{field}"] = ["unexpected field"]
    for key, value in validate_order(
        customer_name=customer.get("name", ""), customer_email=customer.get("email", ""),
        lines=body.get("lines", []), payment_token=body.get("payment_token", ""),
    ).items():
        if key not in ("customer.name", "customer.email") or "customer" not in errors:
            errors.setdefault(key, []).extend(value)
    if errors:
        return _bad(errors)
    mode = body.get("mode", "event")
    try:
        placed = _place(
            mode=mode, customer_name=customer["name"], customer_email=customer["email"],
            lines=body["lines"], payment_token=body["payment_token"],
        )
    except OrderInvalid as exc:  # the view changed between the two checks
        return _bad(exc.errors)
    except OrderTimedOut as exc:
        return JsonResponse({"errors": {"mode": [str(exc)]}, "order_id": exc.order_id,
                             "correlation_id": exc.correlation_id, "status": "REJECTED"}, status=504)
    except StockQueryFailed as exc:
        return JsonResponse({"errors": {"stock_check": [str(exc)]}}, status=504)
    if mode == "command":  # decided before we answer: that is the point of the mode
        return JsonResponse({"order_id": placed.order_id, "correlation_id": placed.correlation_id,
                             "mode": mode, "status": placed.status, "reason": placed.reason}, status=200)
    return JsonResponse({"order_id": placed.order_id, "correlation_id": placed.correlation_id,
                         "mode": mode}, status=202)


@require_GET
def api_order_detail(request, order_id):
    """An order as placed and decided so far; 404 JSON if unknown."""
    order = selectors.order_get(order_id)
    if order is None:
        return JsonResponse({"errors": {"order_id": ["unknown order"]}}, status=404)
    return JsonResponse(selectors.order_as_dict(order))
