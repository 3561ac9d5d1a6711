from __future__ import annotations

from django import template

from snapshots.selectors import data_is_simulated

register = template.Library()


@register.inclusion_tag("snapshots/simulated_banner.html")
def simulated_data_banner() -> dict[str, bool]:
    """A banner on every page and the admin while the history is the simulated demo data."""
    return {"simulated": data_is_simulated()}
