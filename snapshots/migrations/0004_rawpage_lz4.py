"""Raw pages compress with lz4 on PostgreSQL: about twice as fast to write as the default pglz, and smaller."""

from django.db import migrations


def use_lz4(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return  # SQLite (the demo) stores JSON as text and has no such option.
    schema_editor.execute("ALTER TABLE snapshots_rawpage ALTER COLUMN payload SET COMPRESSION lz4")


def use_default(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE snapshots_rawpage ALTER COLUMN payload SET COMPRESSION default")


class Migration(migrations.Migration):
    dependencies = [("snapshots", "0003_snapshot_days")]

    operations = [migrations.RunPython(use_lz4, use_default)]
