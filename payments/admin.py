"""Payments' admin: payments change only through events, so it is read-only."""

from django.contrib import admin

from eventbus import ReadOnlyContextAdmin
from payments.models import Payment, RejectedOrder


@admin.register(Payment)
class PaymentAdmin(ReadOnlyContextAdmin):
    using = "payments"
    list_display = ("order_id", "status", "amount", "currency", "token", "reason", "updated_at")
    list_filter = ("status", "token")
    search_fields = ("order_id", "payment_id")


@admin.register(RejectedOrder)
class RejectedOrderAdmin(ReadOnlyContextAdmin):
    using = "payments"
    list_display = ("order_id", "reason", "at")
