from django.apps import AppConfig


class DevtoolsConfig(AppConfig):
    """Tooling that is never part of the product: installed only when settings.DEVTOOLS is on."""

    name = "devtools"
    verbose_name = "Developer tools"
