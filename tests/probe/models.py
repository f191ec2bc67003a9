from django.db import models


class ProbeEffect(models.Model):
    """One row per time the probe handler's transaction committed: the effect to count."""

    probe_id = models.CharField(max_length=64, db_index=True)
    event_id = models.CharField(max_length=64)
    pid = models.IntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
