"""Minutes per episode, from Jikan's `duration`.

Stored titles take it from the newest raw page that holds them (raw pages are kept RAW_RETENTION_DAYS);
a title with none stays unknown until its next run.
"""

import json

from django.db import migrations, models

BATCH = 2000


def minutes_fill(apps, schema_editor):
    from snapshots.validation import episode_minutes

    Anime = apps.get_model("snapshots", "Anime")
    RawPage = apps.get_model("snapshots", "RawPage")
    missing = set(Anime.objects.values_list("mal_id", flat=True))
    minutes = {}
    newest_first = RawPage.objects.order_by("-fetched_at", "-id").values_list("body", flat=True)
    for body in newest_first.iterator(chunk_size=50):
        if not missing:
            break
        try:
            data = json.loads(body).get("data")
        except (ValueError, AttributeError):
            continue
        for item in data if isinstance(data, list) else []:
            if isinstance(item, dict) and item.get("mal_id") in missing:
                minutes[item["mal_id"]] = episode_minutes(item.get("duration"))
                missing.discard(item["mal_id"])
    known = [Anime(mal_id=mal_id, episode_minutes=value) for mal_id, value in minutes.items() if value]
    Anime.objects.bulk_update(known, ["episode_minutes"], batch_size=BATCH)


class Migration(migrations.Migration):
    dependencies = [
        ("snapshots", "0008_etlrun_public_error_dataedit"),
    ]

    operations = [
        migrations.AddField(
            model_name="anime",
            name="episode_minutes",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.RunPython(minutes_fill, migrations.RunPython.noop),
    ]
