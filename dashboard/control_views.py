"""Staff-only controls of the lab: take a context offline and back, flip the stock-check
switch, retry dead letters; and the comparison they feed. Form posts carry CSRF
(Django's middleware checks it: these views are not exempt)."""

from __future__ import annotations

import json
from functools import wraps

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET, require_POST

from dashboard import metrics, readcache
from dashboard.models import ControlAction
from eventbus import control, deadletters, flags, subscriptions


def staff_only(view):
    """403 JSON for anonymous and non-staff callers."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        if not (request.user.is_authenticated and request.user.is_staff):
            return JsonResponse({"errors": {"user": ["staff only: log in at /admin/ as a staff user"]}}, status=403)
        return view(request, *args, **kwargs)

    return wrapper


def _control(request: HttpRequest, name: str, action: str) -> JsonResponse:
    if name not in control.context_names():
        return JsonResponse({"errors": {"context": [f"unknown context {name!r}"]}}, status=404)
    try:
        if action in (ControlAction.DETACH, ControlAction.ATTACH):
            body = control.detach(name) if action == ControlAction.DETACH else control.attach(name)
        else:
            body = {"workers": control.pause(name) if action == ControlAction.PAUSE else control.resume(name)}
    except (control.ControlError, subscriptions.AttachRefused) as exc:
        return JsonResponse({"errors": {"context": [str(exc)]}}, status=409)
    ControlAction.objects.using("dashboard").create(context=name, action=action, user=request.user.get_username())
    readcache.forget(readcache.CONTEXTS)  # the next /api/contexts/ shows the change
    return JsonResponse({"context": name, "action": action, **body,
                         "consumer": control.consumer_status(max_age=0).get(name)})


def _control_view(action: str, doc: str):
    @require_POST
    @staff_only
    def view(request: HttpRequest, name: str) -> JsonResponse:
        return _control(request, name, action)

    view.__name__, view.__doc__ = f"context_{action}", doc
    return view


context_pause = _control_view(ControlAction.PAUSE, "POST /api/contexts/<name>/pause: its workers stop consuming its queue.")
context_resume = _control_view(ControlAction.RESUME, "POST /api/contexts/<name>/resume: its workers consume its queue again.")
context_detach = _control_view(ControlAction.DETACH, "POST /api/contexts/<name>/detach: no event is routed to it any "
                                                     "more (nothing waits in its queue); its workers stop.")
context_attach = _control_view(ControlAction.ATTACH, "POST /api/contexts/<name>/attach: routed again; it replays what it "
                                                     "missed from the producers' outboxes, then goes on live.")


@require_GET
def comparison(request: HttpRequest) -> JsonResponse:
    """GET /api/comparison/: per mode, orders, outcomes, latency, messages and hops (dashboard.readcache)."""
    return JsonResponse(readcache.cached(readcache.COMPARISON, metrics.comparison))


def flag(request: HttpRequest, name: str) -> JsonResponse:
    """GET /api/flags/<name>: its value; POST {"value": ...} (staff): set it."""
    if name not in flags.FLAGS:
        return JsonResponse({"errors": {"flag": [f"unknown switch {name!r}"]}}, status=404)
    if request.method == "POST":
        if not (request.user.is_authenticated and request.user.is_staff):
            return JsonResponse({"errors": {"user": ["staff only"]}}, status=403)
        try:
            value = json.loads(request.body or b"{}").get("value") if request.content_type == "application/json" \
                else request.POST.get("value")
            flags.set_flag(name, value)
        except (ValueError, AttributeError, flags.FlagError) as exc:
            return JsonResponse({"errors": {"value": [str(exc)]}}, status=400)
    elif request.method != "GET":
        return JsonResponse({"errors": {"method": ["GET or POST"]}}, status=405)
    return JsonResponse({"name": name, "value": flags.get_flag(name), "choices": list(flags.FLAGS[name])})


@require_GET
@staff_only
def dead_letters(request: HttpRequest) -> JsonResponse:
    """GET /api/dead-letters/: every delivery not yet retried, newest first."""
    return JsonResponse({"dead_letters": deadletters.list_dead_letters()})


@require_POST
@staff_only
def dead_letter_retry(request: HttpRequest, context: str, letter_id: int) -> JsonResponse:
    """POST /api/dead-letters/<context>/<id>/retry: send it back to its context's queue."""
    try:
        retried = deadletters.retry_dead_letters(context=context, ids=[letter_id])
    except ValueError as exc:
        return JsonResponse({"errors": {"context": [str(exc)]}}, status=404)
    if not retried:
        return JsonResponse({"errors": {"id": ["no such dead letter waiting in that context"]}}, status=404)
    return JsonResponse({"retried": retried})
