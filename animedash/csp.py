"""The Content-Security-Policy middleware: django-csp's, with inline styles allowed where Django's and DRF's
own templates need them."""

from __future__ import annotations

from csp.constants import UNSAFE_INLINE
from csp.middleware import CSPMiddleware as BaseCSPMiddleware
from csp.middleware import PolicyParts
from django.http import HttpRequest, HttpResponseBase
from django.urls import reverse


class CSPMiddleware(BaseCSPMiddleware):
    """The site policy everywhere; `style-src 'unsafe-inline'` only on the admin and the browsable API's HTML.

    Their templates (Django's admin, DRF's browsable API) carry <style> blocks and style attributes; they
    have no inline script, so script-src stays 'self' there too. Our pages and every JSON answer get the
    site policy unchanged. The Swagger UI relaxes the same directive with a decorator on its view.
    """

    def get_policy_parts(
        self, request: HttpRequest, response: HttpResponseBase, report_only: bool = False
    ) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        if _third_party_html(request, response):
            update = dict(parts.update or {})
            update["style-src"] = [*update.get("style-src", []), UNSAFE_INLINE]
            parts.update = update
        return parts


def _third_party_html(request: HttpRequest, response: HttpResponseBase) -> bool:
    if not response.get("Content-Type", "").startswith("text/html"):
        return False
    return request.path.startswith((reverse("admin:index"), reverse("api:root")))
