"""Web form and JSON API of orders. Both place orders through services.order_place."""

from __future__ import annotations

import json

from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from orders import selectors
from orders.forms import OrderForm
from orders.services import order_place
from orders.validation import OrderInvalid, validate_order

API_FIELDS = {"customer", "lines", "payment_token", "mode"}
MODES = ("event",)  # "command" comes with another issue


@require_http_methods(["GET", "POST"])
def order_new(request):
    """The order form: products, prices and availability from orders' local view."""
    products = selectors.product_list()
    form = OrderForm(request.POST if request.method == "POST" else None, products=products)
    if request.method == "POST" and form.is_valid():
        try:
            placed = order_place(
                customer_name=form.cleaned_data["customer_name"],
                customer_email=form.cleaned_data["customer_email"],
                lines=form.lines(),
                payment_token=form.cleaned_data["payment_token"],
            )
        except OrderInvalid as exc:
            form.add_service_errors(exc.errors)
        else:
            return redirect(f"/orders/{placed.order_id}/")
    status = 400 if request.method == "POST" else 200
    return render(request, "orders/new.html", {"form": form}, status=status)


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
    -> 202 {"order_id", "correlation_id"} or 400 {"errors": {field: [messages]}}; a
    rejected request publishes nothing."""
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
    try:
        placed = order_place(
            customer_name=customer["name"], customer_email=customer["email"],
            lines=body["lines"], payment_token=body["payment_token"],
        )
    except OrderInvalid as exc:  # the view changed between the two checks
        return _bad(exc.errors)
    return JsonResponse({"order_id": placed.order_id, "correlation_id": placed.correlation_id}, status=202)


@require_GET
def api_order_detail(request, order_id):
    """An order as placed and decided so far; 404 JSON if unknown."""
    order = selectors.order_get(order_id)
    if order is None:
        return JsonResponse({"errors": {"order_id": ["unknown order"]}}, status=404)
    return JsonResponse(selectors.order_as_dict(order))
