"""Web form and JSON API of orders. Both place orders through services.order_place."""

from __future__ import annotations

import json
import math

from django.conf import settings
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from eventbus import masked, may_see_emails
from orders import selectors
from orders.access import order_token_issue, order_token_valid
from orders.forms import OrderForm
from orders.command_flow import OrderTimedOut, order_place_by_commands
from orders.services import StockQueryFailed, order_place
from orders.throttle import order_rate_wait
from orders.validation import OrderInvalid, unsafe_text_errors, validate_order

API_FIELDS = {"customer", "lines", "payment_token", "mode"}
MODES = ("event", "command")
# The order's token travels in this header, never in a URL (Daphne's access log shows URLs).
TOKEN_HEADER = "X-Order-Token"


def _throttled(request) -> JsonResponse | None:
    """429 with Retry-After when this client address placed too many orders lately."""
    wait = order_rate_wait(address=request.META.get("REMOTE_ADDR") or "")
    if not wait:
        return None
    seconds = max(1, math.ceil(wait))
    response = JsonResponse({"errors": {"rate": [
        f"too many orders from your address (EVENTFLOW_ORDER_RATE_LIMIT={settings.EVENTFLOW_ORDER_RATE_LIMIT}); "
        f"try again in {seconds} s"]}}, status=429)
    response["Retry-After"] = str(seconds)
    return response


@require_http_methods(["GET", "POST"])
def order_new(request):
    """The order form: products, prices and availability from orders' local view."""
    products = selectors.product_list()
    form = OrderForm(request.POST if request.method == "POST" else None, products=products)
    status, trace_url = 200, None
    if request.method == "POST":
        status = 400
        throttled = _throttled(request)
        if throttled is not None:
            return throttled
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
                if isinstance(exc, OrderTimedOut):  # it was placed and rejected: its trace shows why
                    trace_url = _trace_url(exc.order_id)
            else:
                return redirect(_trace_url(placed.order_id))
    sold_out = sum(1 for p in products if p.available <= 0)
    return render(request, "orders/new.html", {"form": form, "sold_out": sold_out, "page": "order",
                                                "trace_url": trace_url}, status=status)


def _trace_url(order_id: str) -> str:
    """The dashboard's trace page of a new order, with the order's token in the fragment:
    a fragment never reaches a server; the trace page sends it in TOKEN_HEADER."""
    path = reverse("dashboard:order-trace", kwargs={"order_id": order_id})
    return f"{path}#token={order_token_issue(order_id=order_id)}"


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


def _bad(errors: dict, status: int = 400) -> JsonResponse:
    return JsonResponse({"errors": errors}, status=status)


def _json_body(request):
    """(the decoded body, None) or (None, the 4xx answer): 415 unless JSON, 413 past
    EVENTFLOW_MAX_BODY_BYTES (read no further), 400 when malformed, too deep, or holding
    NUL characters or lone surrogates."""
    if request.content_type != "application/json":
        return None, _bad({"body": [f"Content-Type must be application/json, not {request.content_type or 'none'}"]}, 415)
    limit = settings.EVENTFLOW_MAX_BODY_BYTES
    too_big = _bad({"body": [f"at most {limit} bytes"]}, 413)
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None, _bad({"body": ["bad Content-Length"]})
    if declared > limit:
        return None, too_big
    raw = request.read(limit + 1)  # a body without (or lying about) its length stops here too
    if len(raw) > limit:
        return None, too_big
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested deeper than the decoder goes
        return None, _bad({"body": [f"malformed JSON: {exc}" if isinstance(exc, ValueError) else "nested too deeply"]})
    errors = unsafe_text_errors(body)
    if errors:
        return None, _bad(errors)
    return body, None


@csrf_exempt  # clients of the JSON API are scripts, not browsers with a session
@require_http_methods(["POST"])
def api_orders(request):
    """POST {"customer": {"name", "email"}, "lines": [{"sku", "qty"}], "payment_token", "mode"?}

    mode "event" (default) -> 202 {"order_id", "correlation_id", "mode"}: the flow goes on.
    mode "command" -> 200 {..., "status", "reason"} once decided, or 504 with errors.mode
    when a context did not answer in time. 400 {"errors": {field: [messages]}} for bad
    input, 415 unless JSON, 413 past the body limit, 429 past the rate limit; a refused
    request publishes nothing. Every answer that names an order carries its "token"."""
    throttled = _throttled(request)
    if throttled is not None:
        return throttled
    body, refused = _json_body(request)
    if refused is not None:
        return refused
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
                             "correlation_id": exc.correlation_id, "status": "REJECTED",
                             "token": order_token_issue(order_id=exc.order_id)}, status=504)
    except StockQueryFailed as exc:
        return JsonResponse({"errors": {"stock_check": [str(exc)]}}, status=504)
    token = order_token_issue(order_id=placed.order_id)
    if mode == "command":  # decided before we answer: that is the point of the mode
        return JsonResponse({"order_id": placed.order_id, "correlation_id": placed.correlation_id,
                             "mode": mode, "status": placed.status, "reason": placed.reason, "token": token},
                            status=200)
    return JsonResponse({"order_id": placed.order_id, "correlation_id": placed.correlation_id,
                         "mode": mode, "token": token}, status=202)


@require_GET
def api_order_detail(request, order_id):
    """An order as placed and decided so far; 404 JSON if unknown. In full for staff and for
    whoever sends the order's token in X-Order-Token; masked like the dashboard for anyone else."""
    order = selectors.order_get(order_id)
    if order is None:
        return JsonResponse({"errors": {"order_id": ["unknown order"]}}, status=404)
    detail = selectors.order_as_dict(order)
    token = request.headers.get(TOKEN_HEADER)
    if may_see_emails(request.user) or order_token_valid(order_id=detail["order_id"], token=token):
        return JsonResponse(detail)
    return JsonResponse(masked(detail))
