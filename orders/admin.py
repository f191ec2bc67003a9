"""Orders' admin: everything here changes only through events, so it is read-only."""

from django.contrib import admin

from eventbus import ReadOnlyContextAdmin, ReadOnlyInline
from orders.models import Order, OrderLine, ProductView


class OrderLineInline(ReadOnlyInline):
    model = OrderLine
    fields = ("sku", "name", "qty", "unit_price")
    readonly_fields = fields


@admin.register(Order)
class OrderAdmin(ReadOnlyContextAdmin):
    using = "orders"
    list_display = ("order_id", "status", "customer_name", "total", "currency", "created_at", "decided_at")
    list_filter = ("status",)
    search_fields = ("order_id", "customer_name", "customer_email", "reason")
    inlines = [OrderLineInline]


@admin.register(ProductView)
class ProductViewAdmin(ReadOnlyContextAdmin):
    using = "orders"
    list_display = ("sku", "name", "price", "on_hand", "reserved", "available", "version", "updated_at")
    search_fields = ("sku", "name")
