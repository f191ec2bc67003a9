"""/api/asyncapi.json and /catalog/: the bus's AsyncAPI document, for machines and for people."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from dashboard import catalog
from eventbus import asyncapi


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
