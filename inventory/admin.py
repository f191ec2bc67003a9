"""Inventory's admin. Products are created, repriced and restocked or corrected
through inventory's services, so each edit publishes InventoryChanged; stock
counters and the version are never edited by hand. The forms hold no rule of their
own: they try the change through the services and show what those refuse."""

from django import forms
from django.contrib import admin, messages
from django.db import transaction

from eventbus import ContextModelAdmin, ReadOnlyContextAdmin
from inventory import demo, services
from inventory.models import Product, RejectedOrder, Reservation, StockAdjustment


class _Undo(Exception):
    """Rolls back a change tried only to validate it."""


class ServiceForm(forms.ModelForm):
    """A form whose rules are the services' own: clean() tries the change through them in a
    savepoint it rolls back (nothing is published), so a StockError shows on the form;
    the admin's save_model then makes it for real with apply()."""

    def apply(self, product: Product) -> Product:
        raise NotImplementedError

    def clean(self):
        data = super().clean()
        if not self.errors:
            try:
                with transaction.atomic(using=services.DB):
                    self.apply(self.instance)
                    raise _Undo
            except _Undo:
                pass
            except services.StockError as exc:
                raise forms.ValidationError(str(exc)) from None
        return data


class ProductAddForm(ServiceForm):
    initial_stock = forms.IntegerField(min_value=0, initial=0)

    class Meta:
        model = Product
        fields = ("sku", "name", "price")

    def apply(self, product: Product) -> Product:
        data = self.cleaned_data
        return services.product_create(sku=data["sku"], name=data["name"], price=data["price"],
                                       on_hand=data["initial_stock"])


class ProductChangeForm(ServiceForm):
    """Changes go through services: a new price, and/or a stock change with a reason."""

    new_price = forms.DecimalField(required=False, max_digits=10, decimal_places=2, min_value=0,
                                   help_text="Leave empty to keep the price.")
    stock_change = forms.IntegerField(required=False, help_text="Units to add (restock) or remove (correction, negative).")
    adjustment_kind = forms.ChoiceField(choices=StockAdjustment.KINDS, initial=StockAdjustment.RESTOCK)
    adjustment_reason = forms.CharField(required=False, max_length=200)

    class Meta:
        model = Product
        fields = ()

    def apply(self, product: Product) -> Product:
        data = self.cleaned_data
        if data.get("new_price") is not None and data["new_price"] != product.price:
            product = services.product_reprice(sku=product.sku, price=data["new_price"])
        if data.get("stock_change"):
            product = services.stock_adjust(sku=product.sku, delta=data["stock_change"],
                                            reason=data["adjustment_reason"], kind=data["adjustment_kind"])
        return product


@admin.register(Product)
class ProductAdmin(ContextModelAdmin):
    using = "inventory"
    list_display = ("sku", "name", "price", "on_hand", "reserved", "available", "version", "updated_at")
    search_fields = ("sku", "name")
    actions = ["restock_demo_catalog"]

    @admin.action(description="Restock the demo catalog: selected demo products back to their starting stock")
    def restock_demo_catalog(self, request, queryset):
        result = demo.demo_catalog_restock(skus=set(queryset.values_list("sku", flat=True)))
        messages.success(request, demo.describe(result))

    def get_form(self, request, obj=None, **kwargs):
        kwargs["form"] = ProductChangeForm if obj is not None else ProductAddForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("sku", "name", "price", "initial_stock")
        return ("sku", "name", "price", "on_hand", "reserved", "available", "version",
                "new_price", "stock_change", "adjustment_kind", "adjustment_reason")

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return ("sku", "name", "price", "on_hand", "reserved", "available", "version")

    def has_delete_permission(self, request, obj=None):
        return False  # orders' views and reservations refer to products by SKU

    def save_model(self, request, obj, form, change):
        try:
            obj.pk = form.apply(obj).pk
        except services.StockError as exc:  # the stock changed since the form was checked
            messages.error(request, str(exc))
        obj.refresh_from_db(using=self.using) if obj.pk else None

    def save_related(self, request, form, formsets, change):
        pass  # a product has no relations; the service already saved it


@admin.register(Reservation)
class ReservationAdmin(ReadOnlyContextAdmin):
    using = "inventory"
    list_display = ("order_id", "status", "lines", "reason", "updated_at")
    list_filter = ("status",)
    search_fields = ("order_id",)


@admin.register(StockAdjustment)
class StockAdjustmentAdmin(ReadOnlyContextAdmin):
    using = "inventory"
    list_display = ("sku", "kind", "delta", "reason", "at")
    search_fields = ("sku", "reason")


@admin.register(RejectedOrder)
class RejectedOrderAdmin(ReadOnlyContextAdmin):
    using = "inventory"
    list_display = ("order_id", "reason", "at")
