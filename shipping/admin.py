"""Shipping's admin: shipments change only through events, so it is read-only."""

from django.contrib import admin

from eventbus import ReadOnlyContextAdmin
from shipping.models import ShippedProduct, Shipment


@admin.register(Shipment)
class ShipmentAdmin(ReadOnlyContextAdmin):
    using = "shipping"
    list_display = ("order_id", "status", "total", "shipment_id", "created_at")
    list_filter = ("status",)
    search_fields = ("order_id", "shipment_id")


@admin.register(ShippedProduct)
class ShippedProductAdmin(ReadOnlyContextAdmin):
    using = "shipping"
    list_display = ("sku", "name", "available", "version")
