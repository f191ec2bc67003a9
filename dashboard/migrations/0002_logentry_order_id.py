from django.db import migrations, models


def backfill_order_id(apps, schema_editor):
    """Entries logged before this column existed: take order_id from the payload."""
    LogEntry = apps.get_model("dashboard", "LogEntry")
    db = schema_editor.connection.alias
    for entry in LogEntry.objects.using(db).filter(kind="event").iterator(chunk_size=500):
        payload = (entry.data or {}).get("payload") or {}
        order_id = payload.get("order_id") if isinstance(payload, dict) else None
        if isinstance(order_id, str) and order_id:
            LogEntry.objects.using(db).filter(pk=entry.pk).update(order_id=order_id[:64])


class Migration(migrations.Migration):

    dependencies = [
        ("dashboard", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="logentry",
            name="order_id",
            field=models.CharField(blank=True, db_index=True, default="", max_length=64),
        ),
        migrations.AddIndex(
            model_name="logentry",
            index=models.Index(fields=["context", "kind", "seq"], name="dashboard_log_ctx_kind_seq"),
        ),
        migrations.RunPython(backfill_order_id, migrations.RunPython.noop),
    ]
