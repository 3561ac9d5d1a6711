from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts"
    verbose_name = "Alerts (ranking moves)"

    def ready(self) -> None:
        from alerts import metrics
        from alerts.receivers import evaluate_after_commit
        from snapshots.signals import snapshot_committed

        snapshot_committed.connect(evaluate_after_commit, dispatch_uid="alerts-evaluate")
        metrics.register()
