from __future__ import annotations

import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application

from animedash.metrics import metrics_serve

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "animedash.settings")

application = get_wsgi_application()

# Prometheus scrapes the web process on a port of its own (WEB_METRICS_PORT), never through the public
# app. Started here, in the WSGI server's process only, so a manage.py command never takes the port.
metrics_serve(port=settings.WEB_METRICS_PORT, addr=settings.WEB_METRICS_ADDR)
