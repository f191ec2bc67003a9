"""Inventory: the single writer of products, prices and stock."""

from django.db import models


class Product(models.Model):
    """A product and its stock. `reserved` units of `on_hand` are held for orders;
    `version` grows by one with every change and travels in InventoryChanged."""

    sku = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    on_hand = models.PositiveIntegerField(default=0)
    reserved = models.PositiveIntegerField(default=0)
    version = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["sku"]

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved

    def __str__(self):
        return f"{self.sku} {self.name}"


class Reservation(models.Model):
    """Stock held (or refused) for one order; `lines` is [{"sku", "qty"}]."""

    HELD, RELEASED, COMMITTED, FAILED = "HELD", "RELEASED", "COMMITTED", "FAILED"
    STATUSES = [(s, s.title()) for s in (HELD, RELEASED, COMMITTED, FAILED)]

    order_id = models.CharField(max_length=64, unique=True)
    lines = models.JSONField(default=list)
    status = models.CharField(max_length=10, choices=STATUSES)
    reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self):
        return f"{self.order_id} {self.status}"


class RejectedOrder(models.Model):
    """An OrderRejected seen here, kept so an OrderRequested that arrives later is
    reserved and released at once (the final state never depends on delivery order)."""

    order_id = models.CharField(max_length=64, unique=True)
    reason = models.CharField(max_length=500, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.order_id


class StockAdjustment(models.Model):
    """A restock or a correction of on_hand, with its reason (the audit trail)."""

    RESTOCK, CORRECTION = "RESTOCK", "CORRECTION"
    KINDS = [(RESTOCK, "Restock"), (CORRECTION, "Correction")]

    sku = models.CharField(max_length=64, db_index=True)
    kind = models.CharField(max_length=12, choices=KINDS)
    delta = models.IntegerField()
    reason = models.CharField(max_length=200)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self):
        return f"{self.sku} {self.delta:+d} ({self.reason})"
