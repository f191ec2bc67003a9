"""The dashboard's own data: an append-only log of every envelope and receipt."""

from django.db import models


class LogEntry(models.Model):
    """One envelope (kind=event) or delivery receipt (kind=receipt). `seq` orders them all."""

    EVENT, RECEIPT = "event", "receipt"
    KINDS = [(EVENT, "event"), (RECEIPT, "receipt")]

    seq = models.BigAutoField(primary_key=True)
    # Makes a redelivered receipt or envelope a no-op: "event:<id>" or "receipt:<id>:<context>:<attempt>:<outcome>".
    entry_key = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=10, choices=KINDS)
    event_id = models.CharField(max_length=64, db_index=True)
    event_type = models.CharField(max_length=100)
    producer = models.CharField(max_length=50)
    context = models.CharField(max_length=50, blank=True)
    correlation_id = models.CharField(max_length=64, db_index=True)
    causation_id = models.CharField(max_length=64, blank=True, null=True)
    outcome = models.CharField(max_length=20, blank=True)
    # payload.order_id of an event, when it has one: how a trace finds its order's flow.
    order_id = models.CharField(max_length=64, blank=True, default="")
    # An event: its envelope. A receipt: its fields other than the columns above (as_message puts them back).
    data = models.JSONField()
    # An event: the times of its delivery to the dashboard itself (sent_at, received_at, started_at,
    # finished_at, attempt). The row is that delivery's receipt: no receipt row of its own (own_receipt()).
    delivery = models.JSONField(null=True, blank=True)
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["seq"]
        verbose_name_plural = "log entries"
        # Only what the pages ask for (seq, entry_key, event_id and correlation_id aside):
        # an order's trace by order_id, an event's consequences by causation_id. Filters by
        # type or producer walk seq backwards and stop at the page's limit.
        indexes = [
            models.Index(fields=["order_id"], name="dashboard_log_order",
                         condition=~models.Q(order_id="")),
            models.Index(fields=["causation_id"], name="dashboard_log_caused",
                         condition=models.Q(kind="event")),
        ]

    def __str__(self):
        return f"#{self.seq} {self.kind} {self.event_type}"

    # A receipt's fields kept in columns, not repeated in `data`.
    RECEIPT_COLUMNS = ("event_id", "event_type", "producer", "correlation_id", "context", "outcome")

    def as_message(self) -> dict:
        """The websocket / API form of this entry."""
        base = {"type": self.kind, "seq": self.seq, "recorded_at": self.recorded_at.isoformat()}
        if self.kind == self.EVENT:
            base["envelope"] = self.data
        else:
            base["receipt"] = self.receipt()
        return base

    def own_receipt(self) -> dict | None:
        """An event's delivery to the dashboard, as the receipt the dashboard no longer stores apart."""
        if self.kind != self.EVENT or not isinstance(self.delivery, dict):
            return None
        envelope = self.data if isinstance(self.data, dict) else {}
        return {"event_id": self.event_id, "event_type": self.event_type, "producer": self.producer,
                "correlation_id": self.correlation_id, "causation_id": self.causation_id,
                "published_at": envelope.get("occurred_at"), "context": "dashboard", "outcome": "ok", "error": "",
                "attempt": 1, "sent_at": None, "received_at": None, "started_at": None, "finished_at": None,
                **self.delivery}

    def own_receipt_message(self) -> dict | None:
        receipt = self.own_receipt()
        if receipt is None:
            return None
        return {"type": "receipt", "seq": self.seq, "recorded_at": self.recorded_at.isoformat(), "receipt": receipt}

    def receipt(self) -> dict:
        """A receipt entry's receipt, whole again."""
        data = self.data if isinstance(self.data, dict) else {}
        return {**{name: getattr(self, name) for name in self.RECEIPT_COLUMNS}, **data}


class ContextView(models.Model):
    """The latest local view state each context reported in a receipt."""

    context = models.CharField(max_length=50, primary_key=True)
    view = models.JSONField()
    seq = models.BigIntegerField()
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return self.context


class ViewChange(models.Model):
    """The view rows a context reported changed (by key; a row's `version` orders them),
    as of log entry `seq`: what time travel folds to rebuild a view at any past moment
    (dashboard/replay.py)."""

    id = models.BigAutoField(primary_key=True)
    seq = models.BigIntegerField(db_index=True)
    context = models.CharField(max_length=50)
    rows = models.JSONField()
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["context", "id"], name="dashboard_viewchange_ctx")]

    def __str__(self):
        return f"{self.context} at #{self.seq}"


class ViewCheckpoint(models.Model):
    """A context's whole view once its ViewChange `change_id` (at log entry `seq`) was folded
    in, written every CHECKPOINT_SECONDS: a view at a moment folds only the changes after the
    checkpoint before it."""

    id = models.BigAutoField(primary_key=True)
    context = models.CharField(max_length=50)
    seq = models.BigIntegerField()
    change_id = models.BigIntegerField()
    view = models.JSONField()
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["context", "seq"], name="dashboard_viewcheckpoint_ctx")]

    def __str__(self):
        return f"{self.context} at #{self.seq}"


class ControlAction(models.Model):
    """A context paused, resumed, detached or attached from the dashboard (who, when): the
    comparison tells what happened to the orders placed in between."""

    PAUSE, RESUME, DETACH, ATTACH = "pause", "resume", "detach", "attach"

    context = models.CharField(max_length=50)
    action = models.CharField(max_length=10, choices=[(a, a) for a in (PAUSE, RESUME, DETACH, ATTACH)])
    user = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self):
        return f"{self.action} {self.context}"
