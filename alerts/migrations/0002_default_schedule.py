"""The alerts' beat schedule, created idempotently; edit it afterwards in the admin."""

from django.db import migrations

# UTC. Retries of failed deliveries every minute; the daily digest after the last feed's snapshot (01:00).
SCHEDULE = [
    ("send due alert deliveries", "alerts.tasks.deliveries_send", {"every": 1, "period": "minutes"}),
    ("send alert digests", "alerts.tasks.digests_send", {"minute": "0", "hour": "7"}),
]


def create_schedule(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, task, when in SCHEDULE:
        if "every" in when:
            schedule = {"interval": IntervalSchedule.objects.get_or_create(**when)[0]}
        else:
            crontab = CrontabSchedule.objects.get_or_create(
                **when, day_of_week="*", day_of_month="*", month_of_year="*", timezone="UTC"
            )[0]
            schedule = {"crontab": crontab}
        PeriodicTask.objects.get_or_create(name=name, defaults={"task": task, "args": "[]", **schedule})


def remove_schedule(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name__in=[row[0] for row in SCHEDULE]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("alerts", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
