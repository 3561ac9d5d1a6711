from django.apps import AppConfig


class SnapshotsConfig(AppConfig):
    name = "snapshots"
    verbose_name = "Snapshots (ingestion)"

    def ready(self) -> None:
        from celery.signals import worker_init
        from prometheus_client import REGISTRY

        from snapshots.metrics import EtlFactsCollector, serve_worker_metrics

        # ready() can run twice (e.g. in some test runners); register the collector once.
        if not any(isinstance(c, EtlFactsCollector) for c in list(REGISTRY._collector_to_names)):
            REGISTRY.register(EtlFactsCollector())
        worker_init.connect(serve_worker_metrics, dispatch_uid="snapshots-worker-metrics")
