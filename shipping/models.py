"""Shipping: a shipment per confirmed order, and a local view of the products it ships.

Shipping knows the other contexts only through events; none of them knows it."""

import uuid

from django.db import models


class Shipment(models.Model):
    """What shipping did about one decided order: scheduled (confirmed) or not shipped (rejected)."""

    SCHEDULED, NOT_SHIPPED = "SCHEDULED", "NOT_SHIPPED"
    STATUSES = [(SCHEDULED, "Scheduled"), (NOT_SHIPPED, "Not shipped")]

    shipment_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    order_id = models.CharField(max_length=64, unique=True)
    status = models.CharField(max_length=12, choices=STATUSES)
    total = models.CharField(max_length=20, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self):
        return f"{self.order_id} {self.status}"


class ShippedProduct(models.Model):
    """Shipping's copy of a product, fed only by InventoryChanged; a newer `version` wins."""

    sku = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    available = models.IntegerField(default=0)
    version = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["sku"]

    def __str__(self):
        return f"{self.sku} v{self.version}"
