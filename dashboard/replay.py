"""Time travel: any past window of the log replayed, with each context's view as it was.

The receipts carry the view rows that changed; the dashboard keeps them (ViewChange, by
log seq) with a checkpoint of each whole view every so often (ViewCheckpoint,
dashboard/services.py). The view at seq N is the checkpoint before N with the changes after
it folded in by the same rule the live view uses (services._merge_rows): the view rebuilt at
seq N is the view the context reported at seq N.

GET /api/replay/?start=<ISO>&end=<ISO>[&after_seq=&limit=] answers the window [start, end):
its first page has the views and the counters at `start`; every page has up to `limit`
entries in seq order with the view changes among them, and `next_after_seq` while more
remain. `&part=frames` answers one frame per second of the edge figures and counters
(dashboard/edges.py, the window before each second), asked beside the first page so the
replay starts without waiting for them. A window is at most MAX_SECONDS long, and one that
ended before the oldest entry the log retains gets 400 (every page says `retained_from`;
`?part=bounds` alone answers it, with `max_seconds`, for the time bar's inputs). Answers are cached
(a window that is over never changes, except by retention); masked for viewers not staff.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone as dt_timezone

from django.db.models import Count, Min
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from contracts.clock import parse
from dashboard import edges, readcache
from dashboard.models import ContextView, LogEntry, ViewChange, ViewCheckpoint
from dashboard.privacy import for_viewer
from dashboard.services import _merge_rows
from dashboard.views import _int_param
from eventbus import registry

DB = "dashboard"
MAX_SECONDS = 900
MAX_LIMIT = 5000
# A window over this long ago never changes: its pages are kept this many seconds.
SETTLED_AFTER = 5
SETTLED_CACHE_SECONDS = 300


# --- views at a moment ---------------------------------------------------------------


def views_at(seq: int) -> dict:
    """Each context's view as of log entry `seq` (its checkpoint before, then the changes after)."""
    contexts = set(ViewChange.objects.using(DB).filter(seq__lte=seq).values_list("context", flat=True).distinct())
    contexts |= set(ViewCheckpoint.objects.using(DB).filter(seq__lte=seq).values_list("context", flat=True).distinct())
    return {context: fold(context, seq)[0] for context in sorted(contexts)}


def fold(context: str, seq: int) -> tuple[dict, int, int]:
    """(`context`'s view as of log entry `seq`, the seq it was last changed at, the history
    records folded): its checkpoint before `seq`, then the changes after it."""
    checkpoint = (ViewCheckpoint.objects.using(DB).filter(context=context, seq__lte=seq)
                  .order_by("-seq", "-change_id").first())
    view = dict(checkpoint.view) if checkpoint is not None and isinstance(checkpoint.view, dict) else {}
    last, folded = (checkpoint.seq, 1) if checkpoint is not None else (0, 0)
    changes = ViewChange.objects.using(DB).filter(context=context, seq__lte=seq)
    if checkpoint is not None:
        changes = changes.filter(id__gt=checkpoint.change_id)
    for at, rows in changes.order_by("id").values_list("seq", "rows").iterator():
        if isinstance(rows, dict):
            view = _merge_rows(view, rows)
        last, folded = at, folded + 1
    return view, last, folded


def rebuild_view_cache(progress) -> int:
    """`manage.py rebuild_view dashboard` (eventbus/rebuild.py, registered in handlers.py): the
    view cache (ContextView), just discarded, written again from the view history as of its
    latest seq, each context's row as views_merge left it. Returns the history records folded."""
    contexts = sorted(set(ViewChange.objects.using(DB).values_list("context", flat=True).distinct())
                      | set(ViewCheckpoint.objects.using(DB).values_list("context", flat=True).distinct()))
    latest = max(ViewChange.objects.using(DB).order_by("-seq").values_list("seq", flat=True).first() or 0,
                 ViewCheckpoint.objects.using(DB).order_by("-seq").values_list("seq", flat=True).first() or 0)
    progress(f"{DB}: the retained view history ({ViewChange.objects.using(DB).count()} changes, "
             f"{ViewCheckpoint.objects.using(DB).count()} checkpoints) of {len(contexts)} contexts feeds "
             f"ContextView, up to log entry #{latest}")
    replayed = 0
    for index, context in enumerate(contexts, 1):
        view, last, folded = fold(context, latest)
        ContextView.objects.using(DB).create(context=context, view=view, seq=last)
        replayed += folded
        progress(f"  replayed {index}/{len(contexts)} ({context}: {folded} records)")
    return replayed


def view_history_prune() -> int:
    """Keep the view history as long as the log: per context, the newest checkpoint older than
    the log's oldest entry stays (the fold starts there), everything before it goes."""
    oldest = LogEntry.objects.using(DB).aggregate(lo=Min("seq"))["lo"]
    if oldest is None:
        return 0
    deleted = 0
    for context in ViewCheckpoint.objects.using(DB).values_list("context", flat=True).distinct():
        keep = (ViewCheckpoint.objects.using(DB).filter(context=context, seq__lt=oldest)
                .order_by("-seq", "-change_id").first())
        if keep is None:
            continue
        deleted += ViewCheckpoint.objects.using(DB).filter(context=context, id__lt=keep.id).delete()[0]
        deleted += ViewChange.objects.using(DB).filter(context=context, id__lte=keep.change_id).delete()[0]
    return deleted


# --- counters at a moment --------------------------------------------------------------


def counters_at(seq: int) -> dict:
    """Handled (ok) and failed (failed, dead) deliveries per context up to `seq`, as the live
    queues message counts them (receipts; the dashboard's own, its event rows)."""
    handled: dict[str, int] = {}
    failures: dict[str, int] = {}
    rows = (LogEntry.objects.using(DB).filter(kind=LogEntry.RECEIPT, seq__lte=seq)
            .values("context", "outcome").annotate(n=Count("seq")))
    for row in rows:
        count(handled, failures, row["context"], row["outcome"], row["n"])
    own = LogEntry.objects.using(DB).filter(kind=LogEntry.EVENT, delivery__isnull=False, seq__lte=seq).count()
    count(handled, failures, DB, "ok", own)
    return {"handled": handled, "failures": failures}


def count(handled: dict, failures: dict, context: str, outcome: str, n: int = 1) -> None:
    if not n:
        return
    if outcome == "ok":
        handled[context] = handled.get(context, 0) + n
    elif outcome in edges.FAILED:
        failures[context] = failures.get(context, 0) + n


def frames(start: datetime, end: datetime, to_seq: int, counters: dict) -> list[dict]:
    """One frame per second of [start, end): the edge figures over the DEFAULT_WINDOW before it
    and the counters at it."""
    window = edges.EdgeWindow(horizon=edges.DEFAULT_WINDOW)
    handled, failures = dict(counters["handled"]), dict(counters["failures"])
    first = edges.seq_at(start)
    since = edges.seq_at(start - timedelta(seconds=edges.DEFAULT_WINDOW))
    routes = registry.topology()["routes"]
    out = []
    moment = int(start.timestamp())
    last = int(end.timestamp())

    def emit(upto: int) -> None:
        nonlocal moment
        while moment < upto and moment < last:
            figures = window.metrics(moment, edges.DEFAULT_WINDOW, routes=routes, types=True)
            out.append({"t": moment, **figures, "handled": dict(handled), "failures": dict(failures)})
            moment += 1

    for row in edges.rows(LogEntry.objects.using(DB).filter(seq__gte=since, seq__lte=to_seq).order_by("seq")):
        at = row[6].timestamp()
        if row[0] >= first:
            emit(int(at))
            kind, context, outcome = row[1], row[3], row[5]
            if kind == LogEntry.RECEIPT:
                count(handled, failures, context, outcome)
            elif row[11]:
                count(handled, failures, DB, "ok")
        edges.feed(window, row)
    emit(last)
    return out


# --- the window ------------------------------------------------------------------------


def retained_from() -> datetime | None:
    """When the oldest entry the log still holds was recorded (retention moves it), None for an empty log."""
    oldest = LogEntry.objects.using(DB).aggregate(lo=Min("seq"))["lo"]
    if oldest is None:
        return None
    return LogEntry.objects.using(DB).filter(seq=oldest).values_list("recorded_at", flat=True).first()


def window_page(start: datetime, end: datetime, *, after_seq: int | None, limit: int) -> dict:
    from_seq = edges.seq_at(start)
    to_seq = edges.seq_at(end) - 1
    oldest = retained_from()
    lo = max(from_seq - 1, after_seq or 0)
    page = list(LogEntry.objects.using(DB).filter(seq__gt=lo, seq__lte=to_seq).order_by("seq")[:limit])
    page_end = page[-1].seq if len(page) == limit else to_seq
    answer = {
        "start": start.isoformat(), "end": end.isoformat(),
        "from_seq": from_seq, "to_seq": to_seq,
        "retained_from": oldest.isoformat() if oldest else None,
        "entries": [entry.as_message() for entry in page],
        "view_changes": [{"seq": c.seq, "context": c.context, "rows": c.rows} for c in
                         ViewChange.objects.using(DB).filter(seq__gt=lo, seq__lte=page_end).order_by("id")],
        "next_after_seq": page_end if page_end < to_seq else None,
    }
    if after_seq is None:
        answer["views"] = views_at(from_seq - 1)
        answer["counters"] = counters_at(from_seq - 1)
    return answer


def window_frames(start: datetime, end: datetime) -> dict:
    """?part=frames: the window's frames alone (the page asks for them beside its first page)."""
    from_seq, to_seq = edges.seq_at(start), edges.seq_at(end) - 1
    return {"start": start.isoformat(), "end": end.isoformat(), "from_seq": from_seq, "to_seq": to_seq,
            "frames": frames(start, end, to_seq, counters_at(from_seq - 1))}


def _moment(raw, name: str) -> datetime:
    if not raw:
        raise ValueError(f"{name} is required (an ISO 8601 time)")
    try:
        value = parse(str(raw).strip().replace(" ", "+"))
    except ValueError:
        raise ValueError(f"{name} must be an ISO 8601 time, e.g. 2026-11-27T18:00:00Z") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=dt_timezone.utc)


def _part(raw):
    if raw not in (None, "", "frames"):
        raise ValueError("part must be frames or bounds (or absent: the entries)")
    return raw or None


@require_GET
def api_replay(request: HttpRequest) -> JsonResponse:
    """GET /api/replay/?start=&end=[&after_seq=&limit=]: a past window, paged by seq."""
    if request.GET.get("part") == "bounds":  # what a window may cover: the time bar's inputs
        oldest = retained_from()
        return JsonResponse({"retained_from": oldest.isoformat() if oldest else None,
                             "now": timezone.now().isoformat(), "max_seconds": MAX_SECONDS})
    errors: dict[str, list[str]] = {}
    values = {}
    for name, parse in (("start", lambda: _moment(request.GET.get("start"), "start")),
                        ("end", lambda: _moment(request.GET.get("end"), "end")),
                        ("after_seq", lambda: _int_param(request, "after_seq", default=None, minimum=0)),
                        ("limit", lambda: _int_param(request, "limit", default=MAX_LIMIT, minimum=1, maximum=MAX_LIMIT)),
                        ("part", lambda: _part(request.GET.get("part")))):
        try:
            values[name] = parse()
        except ValueError as exc:
            errors[name] = [str(exc)]
    if not errors:
        start, end = values["start"], values["end"]
        now = timezone.now()
        if end <= start:
            errors["end"] = ["end must be after start"]
        elif (end - start).total_seconds() > MAX_SECONDS:
            errors["end"] = [f"a window is at most {MAX_SECONDS} seconds long"]
        elif start >= now:
            errors["start"] = ["start is in the future"]
        elif (oldest := retained_from()) is not None and end <= oldest:
            errors["start"] = [f"the log holds nothing before {oldest.isoformat(timespec='seconds')} "
                               "(its oldest retained entry): pick a window that ends after it"]
    if errors:
        return JsonResponse({"errors": errors}, status=400)
    end = min(values["end"], timezone.now())
    key = f"replay?{values['start'].isoformat()}&{end.isoformat()}&{values['after_seq']}&{values['limit']}&{values['part']}"
    settled = (timezone.now() - end).total_seconds() > SETTLED_AFTER
    if values["part"] == "frames":
        compute = lambda: window_frames(values["start"], end)  # noqa: E731
    else:
        compute = lambda: window_page(values["start"], end, after_seq=values["after_seq"], limit=values["limit"])  # noqa: E731
    answer = readcache.cached(key, compute, timeout=SETTLED_CACHE_SECONDS if settled else None)
    return JsonResponse(for_viewer(answer, request.user))
