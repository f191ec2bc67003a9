"""Reads of payments."""

from django.db.models import Count, Sum

from payments.models import Payment


def totals_view() -> dict:
    """{"totals_by_status": {status: {"count": n, "amount": "12.00"}}} for the dashboard."""
    rows = Payment.objects.using("payments").values("status").annotate(count=Count("id"), amount=Sum("amount"))
    return {
        "totals_by_status": {
            row["status"]: {"count": row["count"], "amount": f"{row['amount'] or 0:.2f}"} for row in rows
        }
    }
