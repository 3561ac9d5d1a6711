"""The default beat schedule, created idempotently; edit it afterwards in the admin."""

from django.db import migrations

# UTC. Staggered ten minutes apart so feeds never compete for Jikan's rate limit, and after
# midnight UTC so each run snapshots the new day. The prune runs when no feed does.
DEFAULT_SCHEDULE = [
    ("snapshot top", "snapshots.tasks.feed_snapshot", "top", "10", "0"),
    ("snapshot airing", "snapshots.tasks.feed_snapshot", "airing", "20", "0"),
    ("snapshot upcoming", "snapshots.tasks.feed_snapshot", "upcoming", "30", "0"),
    ("snapshot popular", "snapshots.tasks.feed_snapshot", "popular", "40", "0"),
    ("snapshot movies", "snapshots.tasks.feed_snapshot", "movies", "50", "0"),
    ("snapshot season", "snapshots.tasks.feed_snapshot", "season", "0", "1"),
    ("prune raw pages and old runs", "snapshots.tasks.etl_prune", None, "30", "3"),
]


def create_schedule(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, task, feed, minute, hour in DEFAULT_SCHEDULE:
        crontab, _ = CrontabSchedule.objects.get_or_create(
            minute=minute, hour=hour, day_of_week="*", day_of_month="*", month_of_year="*", timezone="UTC"
        )
        PeriodicTask.objects.get_or_create(
            name=name,
            defaults={"task": task, "crontab": crontab, "args": f'["{feed}"]' if feed else "[]"},
        )


def remove_schedule(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name__in=[row[0] for row in DEFAULT_SCHEDULE]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("snapshots", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
