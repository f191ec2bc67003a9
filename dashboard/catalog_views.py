"""/api/asyncapi.json and /catalog/: the bus's AsyncAPI document, for machines and for people."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponseForbidden, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from contracts import RestockDemoCatalog
from dashboard import catalog
from eventbus import asyncapi
from eventbus.commands import CommandFailed, send_command

# The pages the restock form may send the browser back to.
RESTOCK_RETURN = ("dashboard:graph", "orders:new")


@require_GET
def api_asyncapi(request: HttpRequest) -> JsonResponse:
    """GET /api/asyncapi.json: the AsyncAPI 3.0 document (no customer data: the examples are made up)."""
    return JsonResponse(asyncapi.document(), json_dumps_params={"indent": 2})


@require_GET
def catalog_page(request: HttpRequest):
    """/catalog/: every event and command with its meaning, fields, producer, subscribers and activity."""
    document = asyncapi.document()
    return render(request, "dashboard/catalog.html", {
        "page": "catalog", "entries": catalog.catalog_entries(document), "channels": document["channels"],
        "rate_minutes": catalog.RATE_MINUTES, "asyncapi_version": document["asyncapi"],
    })


@require_POST
def restock_demo_catalog(request: HttpRequest):
    """POST /catalog/restock/ (staff, CSRF): inventory brings the demo catalog back to its starting
    stock through its own services (a command it owns; each change is an InventoryChanged)."""
    if not (request.user.is_authenticated and request.user.is_staff):
        return HttpResponseForbidden("staff only: log in at /admin/ as a staff user")
    pages = [reverse(name) for name in RESTOCK_RETURN]
    back = request.POST.get("next") if request.POST.get("next") in pages else pages[0]
    try:
        sent = send_command(RestockDemoCatalog(sku_prefix="DEMO"), sender="dashboard",
                            timeout=settings.EVENTFLOW_COMMAND_TIMEOUT)
    except CommandFailed as exc:  # no answer in time, or the broker failed
        messages.error(request, f"Restock not done: {exc}")
        return redirect(back)
    reply = sent.reply
    if reply.get("ok"):
        units = sum(r["added"] for r in reply.get("restocked", []))
        messages.success(request, f"Demo catalog restocked: {len(reply.get('restocked', []))} product(s), "
                                  f"{units} units added, {len(reply.get('created', []))} created.")
    else:
        messages.error(request, f"Restock not done: {reply.get('reason') or reply.get('outcome')}")
    return redirect(back)
