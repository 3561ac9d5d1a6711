"""Every title variant Jikan gives (`titles[]`) and the normalised text a search matches.

Stored titles take their variants from the newest raw page that holds them (raw pages are kept
RAW_RETENTION_DAYS); a title with none keeps an empty list until its next run. Every title gets its
search text from the names it has.
"""

import json

from django.db import migrations, models

BATCH = 2000


def titles_fill(apps, schema_editor):
    from snapshots.search import search_text
    from snapshots.validation import title_variants

    Anime = apps.get_model("snapshots", "Anime")
    RawPage = apps.get_model("snapshots", "RawPage")
    missing = set(Anime.objects.values_list("mal_id", flat=True))
    variants = {}
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
                variants[item["mal_id"]] = list(title_variants(item))
                missing.discard(item["mal_id"])
    batch = []
    for anime in Anime.objects.only("mal_id", "title", "title_english", "title_japanese").iterator(chunk_size=BATCH):
        anime.titles = variants.get(anime.mal_id, [])
        names = [anime.title, anime.title_english, anime.title_japanese, *(v["title"] for v in anime.titles)]
        anime.search_text = search_text(names)
        batch.append(anime)
        if len(batch) == BATCH:
            Anime.objects.bulk_update(batch, ["titles", "search_text"])
            batch = []
    Anime.objects.bulk_update(batch, ["titles", "search_text"])


class Migration(migrations.Migration):
    dependencies = [
        ("snapshots", "0006_etlrun_status_queued"),
    ]

    operations = [
        migrations.AddField(
            model_name="anime",
            name="titles",
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AddField(
            model_name="anime",
            name="search_text",
            field=models.TextField(blank=True, editable=False),
        ),
        migrations.RunPython(titles_fill, migrations.RunPython.noop),
    ]
