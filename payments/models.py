"""Payments: authorisations, captures and voids. No card number anywhere: only test tokens."""

import uuid

from django.db import models


class Payment(models.Model):
    """The payment of one order."""

    AUTHORIZED, DECLINED, CAPTURED, VOIDED = "AUTHORIZED", "DECLINED", "CAPTURED", "VOIDED"
    STATUSES = [(s, s.title()) for s in (AUTHORIZED, DECLINED, CAPTURED, VOIDED)]

    payment_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    order_id = models.CharField(max_length=64, unique=True)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    token = models.CharField(max_length=64)
    status = models.CharField(max_length=10, choices=STATUSES)
    reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self):
        return f"{self.order_id} {self.status} {self.amount} {self.currency}"


class RejectedOrder(models.Model):
    """An OrderRejected seen here, kept so a PaymentRequested that arrives later is
    authorised and voided at once (the final state never depends on delivery order)."""

    order_id = models.CharField(max_length=64, unique=True)
    reason = models.CharField(max_length=500, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.order_id
