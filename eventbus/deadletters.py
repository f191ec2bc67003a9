"""Dead letters across every context: list them, send them back."""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone

from eventbus import transport
from eventbus.models import DeadLetter


def context_aliases() -> list[str]:
    return [alias for alias in settings.DATABASES if alias != "default"]


def list_dead_letters(*, include_retried: bool = False) -> list[dict]:
    result = []
    for context in context_aliases():
        rows = DeadLetter.objects.using(context).all()
        if not include_retried:
            rows = rows.filter(retried_at__isnull=True)
        for row in rows:
            result.append({
                "id": row.id, "context": context, "event_id": row.event_id, "event_type": row.event_type,
                "error": row.error, "tries": row.tries, "created_at": row.created_at.isoformat(),
                "retried_at": row.retried_at.isoformat() if row.retried_at else None,
            })
    return sorted(result, key=lambda r: r["created_at"], reverse=True)


def retry_dead_letters(*, context: str | None = None, ids: list[int] | None = None) -> list[int]:
    """Requeue dead letters (a fresh first try each); returns the ids sent."""
    if context is not None and context not in context_aliases():
        raise ValueError(f"unknown context {context!r}")
    retried = []
    for alias in [context] if context else context_aliases():
        rows = DeadLetter.objects.using(alias).filter(retried_at__isnull=True)
        if ids:
            rows = rows.filter(id__in=ids)
        for row in rows:
            transport.send_delivery(alias, row.envelope, sent_at=timezone.now().isoformat())
            DeadLetter.objects.using(alias).filter(pk=row.pk).update(retried_at=timezone.now())
            retried.append(row.id)
    return retried
