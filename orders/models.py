"""Orders: the orders themselves and a local view of products fed by InventoryChanged."""

from django.db import models


class ProductView(models.Model):
    """Orders' copy of a product, fed only by InventoryChanged; a newer `version` wins."""

    sku = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    on_hand = models.IntegerField(default=0)
    reserved = models.IntegerField(default=0)
    available = models.IntegerField(default=0)
    version = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["sku"]

    def __str__(self):
        return f"{self.sku} v{self.version}"


class Order(models.Model):
    """An order and the facts seen about it. order_place writes the request as seen in
    the local view (prices, `view_shortage`); the OrderRequested handler sets `requested`
    and acts. A row may also start as a bare placeholder when another event about the
    order arrives first. Facts are kept until the order can be decided; once CONFIRMED
    or REJECTED, the status never changes again."""

    PENDING, CONFIRMED, REJECTED = "PENDING", "CONFIRMED", "REJECTED"
    STATUSES = [(s, s.title()) for s in (PENDING, CONFIRMED, REJECTED)]
    # event: choreography through events; command: orders drives it with commands and waits.
    EVENT, COMMAND = "event", "command"
    MODES = [(EVENT, "event-driven"), (COMMAND, "command-driven")]

    order_id = models.UUIDField(unique=True)
    mode = models.CharField(max_length=10, choices=MODES, default=EVENT)
    # Where the pre-payment stock check looked: orders' local view or a remote query to inventory.
    stock_check = models.CharField(max_length=10, default="local")
    requested = models.BooleanField(default=False)
    customer_name = models.CharField(max_length=100, blank=True)
    customer_email = models.CharField(max_length=254, blank=True)
    payment_token = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=10, choices=STATUSES, default=PENDING, db_index=True)
    reason = models.CharField(max_length=500, blank=True)
    total = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    has_reservation = models.BooleanField(default=False)
    has_authorization = models.BooleanField(default=False)
    payment_id = models.CharField(max_length=64, blank=True)
    # The local view's shortage when the order was placed ("" = none seen).
    view_shortage = models.CharField(max_length=500, blank=True)
    # Failures reported before the order could be decided.
    stock_failure = models.CharField(max_length=500, blank=True)
    payment_failure = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    @property
    def is_decided(self) -> bool:
        return self.status != self.PENDING

    def __str__(self):
        return f"{self.order_id} {self.status}"


class OrderLine(models.Model):
    """One line of an order, priced from the local view when the order was recorded."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    sku = models.CharField(max_length=64)
    name = models.CharField(max_length=200)
    qty = models.PositiveIntegerField()
    unit_price = models.DecimalField(max_digits=10, decimal_places=2)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return f"{self.qty} x {self.sku}"


class OrderAccess(models.Model):
    """The capability of whoever placed an order to see it in full: the hash of a random
    token handed out once, in the answer to the placement (never in an event or a log)."""

    order_id = models.UUIDField(unique=True)
    token_sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return str(self.order_id)
