"""A run's failure in words for the public (`public_error`), apart from its full text; hand edits of
the history (`DataEdit`), which move the data version.

Past runs get a public text from the kind of their error: the quality gate's counts, a skip and an
abandoned run say so; a database error says only that; anything else says the run failed.
"""

from django.db import migrations, models
from django.db.models import Q
from django.db.models.functions import Substr

SAFE = (
    Q(error__startswith="Quality gate:")
    | Q(error__startswith="abandoned:")
    | Q(error="Another run of this feed is in progress.")
)


def public_errors_fill(apps, schema_editor):
    EtlRun = apps.get_model("snapshots", "EtlRun")
    failed = EtlRun.objects.exclude(error="")
    failed.filter(SAFE).update(public_error=Substr("error", 1, 200))
    database = Q(error__startswith="Database error")
    failed.filter(database).update(public_error="Database error; the day keeps its previous data.")
    failed.exclude(SAFE).exclude(database).update(public_error="The run failed; the details are in the admin.")


class Migration(migrations.Migration):
    dependencies = [
        ("snapshots", "0007_anime_titles_search_text"),
    ]

    operations = [
        migrations.AddField(
            model_name="etlrun",
            name="public_error",
            field=models.CharField(blank=True, max_length=200),
        ),
        migrations.RunPython(public_errors_fill, migrations.RunPython.noop),
        migrations.CreateModel(
            name="DataEdit",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("edited_at", models.DateTimeField(auto_now_add=True)),
                ("what", models.CharField(max_length=200)),
            ],
            options={"ordering": ["-id"]},
        ),
    ]
