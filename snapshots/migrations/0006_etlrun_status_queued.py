"""A run started from the API waits as "queued" until a worker runs it."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("snapshots", "0005_rawpage_body"),
    ]

    operations = [
        migrations.AlterField(
            model_name="etlrun",
            name="status",
            field=models.CharField(
                choices=[
                    ("running", "Running"),
                    ("success", "Success"),
                    ("partial", "Partial"),
                    ("failed", "Failed"),
                    ("skipped", "Skipped"),
                    ("queued", "Queued"),
                ],
                default="running",
                max_length=8,
            ),
        ),
    ]
