"""devtools.endpoints lists every endpoint of the `api` namespace, and only those."""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qs, urlsplit

from django.urls import get_resolver, resolve, reverse

from devtools.endpoints import ENDPOINTS, Context, typical_urls

CONTEXT = Context(
    days=[dt.date(2024, 5, 1) + dt.timedelta(days=n) for n in range(15)], mal_ids=[5114, 9253, 1], words=["steins"]
)


def test_endpoints_name_every_api_url_and_no_other():
    # Read from the resolver here, not through devtools.endpoints, so a mistake there cannot hide one.
    _, api = get_resolver().namespace_dict["api"]
    declared = {name for name in api.reverse_dict if isinstance(name, str)} - {"root"}
    listed = {endpoint.url_name for endpoint in ENDPOINTS}
    assert declared - listed == set(), "in the `api` namespace but missing from devtools.endpoints.ENDPOINTS"
    assert listed - declared == set(), "in devtools.endpoints.ENDPOINTS but not in the `api` namespace"


def test_every_request_goes_to_its_endpoint():
    for endpoint in ENDPOINTS:
        for i in range(8):
            assert resolve(urlsplit(endpoint.url(ctx=CONTEXT, i=i)).path).view_name == f"api:{endpoint.url_name}"


def test_labels_tell_every_request_apart():
    labels = [endpoint.label for endpoint in ENDPOINTS]
    assert len(set(labels)) == len(labels)
    assert "trending/climbers?window=30" in labels
    assert "anime/<id>/history?days=30" in labels


def test_the_typical_urls_ask_each_endpoint_for_its_default_page_of_the_best_ranked_title():
    urls = typical_urls(ctx=CONTEXT)
    assert len(urls) == len(ENDPOINTS)
    for url in urls:
        assert not {"feed", "as_of"} & parse_qs(urlsplit(url).query).keys(), url
    assert reverse("api:anime-history", kwargs={"mal_id": 5114}) + "?days=30" in urls
    assert reverse("api:anime-search") + "?q=steins" in urls
