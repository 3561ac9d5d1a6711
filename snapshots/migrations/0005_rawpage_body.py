"""Raw pages keep the body text as received (no JSON re-encoding on write) and their has-next flag."""

import json

from django.db import migrations, models


def payload_to_body(apps, schema_editor):
    RawPage = apps.get_model("snapshots", "RawPage")
    for raw in RawPage.objects.only("payload").iterator(chunk_size=100):
        pagination = raw.payload.get("pagination") if isinstance(raw.payload, dict) else None
        raw.body = json.dumps(raw.payload)
        raw.has_next_page = isinstance(pagination, dict) and pagination.get("has_next_page") is True
        raw.save(update_fields=["body", "has_next_page"])


def body_to_payload(apps, schema_editor):
    RawPage = apps.get_model("snapshots", "RawPage")
    for raw in RawPage.objects.only("body").iterator(chunk_size=100):
        raw.payload = json.loads(raw.body)
        raw.save(update_fields=["payload"])


def use_lz4(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE snapshots_rawpage ALTER COLUMN body SET COMPRESSION lz4")


class Migration(migrations.Migration):
    dependencies = [("snapshots", "0004_rawpage_lz4")]

    operations = [
        migrations.AddField("rawpage", "body", models.TextField(default="")),
        migrations.AddField("rawpage", "has_next_page", models.BooleanField(default=False)),
        migrations.AlterField("rawpage", "payload", models.JSONField(null=True)),
        migrations.RunPython(payload_to_body, body_to_payload),
        migrations.RemoveField("rawpage", "payload"),
        migrations.AlterField("rawpage", "body", models.TextField()),
        migrations.AlterField("rawpage", "has_next_page", models.BooleanField()),
        migrations.RunPython(use_lz4, migrations.RunPython.noop),
    ]
