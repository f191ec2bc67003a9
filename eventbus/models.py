"""Outbox, inbox and dead letters. These tables exist in every context's database,
so a state change and the events it causes commit in one local transaction."""

from django.db import models


class OutboxMessage(models.Model):
    """An event committed by this context, waiting for (or past) its relay."""

    event_id = models.UUIDField(unique=True)
    event_type = models.CharField(max_length=100)
    correlation_id = models.UUIDField(db_index=True)
    envelope = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True, db_index=True)
    send_attempts = models.PositiveIntegerField(default=0)
    # The broker's identity when this row was last sent: if the broker lost its
    # data since, the messages are gone and the sweep sends them again.
    broker_epoch = models.CharField(max_length=64, blank=True)
    # Set once every subscriber has the event in its inbox.
    confirmed_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # Set while every subscriber still missing it holds it as a dead letter: not received,
    # not resent; retrying the dead letter clears it.
    parked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return f"{self.event_type} {self.event_id}"


class InboxMessage(models.Model):
    """An event this context has handled; its presence makes a redelivery a no-op."""

    event_id = models.UUIDField(unique=True)
    event_type = models.CharField(max_length=100)
    handled_at = models.DateTimeField(auto_now_add=True)
    # A command's reply, committed with its effects: a redelivery answers with it.
    reply = models.JSONField(null=True, blank=True)

    def __str__(self):
        return f"{self.event_type} {self.event_id}"


class DeadLetter(models.Model):
    """A delivery that failed validation or every try. Kept with its error until retried."""

    event_id = models.CharField(max_length=64, db_index=True)
    event_type = models.CharField(max_length=100, blank=True)
    envelope = models.JSONField()
    error = models.TextField()
    tries = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    retried_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self):
        return f"{self.event_type or '?'} {self.event_id}: {self.error[:60]}"


class Subscription(models.Model):
    """One context's subscription, kept in that context's database: the event types it
    receives (seeded from its handlers.py) and whether it is attached. The relay routes
    by it (eventbus/subscriptions.py); detach and attach change it while the system runs."""

    context = models.CharField(max_length=64, unique=True)
    event_types = models.JSONField(default=list)
    attached = models.BooleanField(default=True)
    # Since when events are no longer routed to it (detached), and from when an attach
    # replays (null: the whole retained log, as for a context attached the first time).
    detached_at = models.DateTimeField(null=True, blank=True)
    replay_from = models.DateTimeField(null=True, blank=True)
    attached_at = models.DateTimeField(null=True, blank=True)
    replaying = models.BooleanField(default=False)
    # {producer: the last outbox id the replay sent}, and how many events it sent.
    replay_cursor = models.JSONField(default=dict)
    replayed = models.PositiveIntegerField(default=0)

    def __str__(self):
        return f"{self.context} {'attached' if self.attached else 'detached'}"
