from django.apps import AppConfig


class TrackingConfig(AppConfig):
    name = "tracking"
    verbose_name = "Tracking (personal lists)"

    def ready(self) -> None:
        from analytics.signals import search_made
        from tracking.receivers import remember_search

        search_made.connect(remember_search, dispatch_uid="tracking-remember-search")
