from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.urls import reverse

from analytics import cache as analytics_cache
from analytics.api.throttling import AnonThrottle
from snapshots.models import EtlRun
from snapshots.tests.factories import AnimeFactory, EtlRunFactory, GenreFactory, SnapshotFactory

pytestmark = pytest.mark.django_db

D = dt.date(2024, 5, 31)
LIST_ENDPOINTS = ["top-rated", "genres", "climbers", "fallers", "momentum", "new-entries", "streaks"]


@pytest.fixture
def history():
    """Two titles in the top feed on D and on D - 7: A climbs 5 -> 2, B falls 2 -> 5."""
    action = GenreFactory(mal_id=1, name="Action")
    a = AnimeFactory(mal_id=1, title="Climber", genres=[action])
    b = AnimeFactory(mal_id=2, title="Faller")
    for day, ranks in ((D - dt.timedelta(days=7), {a: 5, b: 2}), (D, {a: 2, b: 5})):
        run = EtlRunFactory(feed="top", taken_on=day)
        for anime, rank in ranks.items():
            score = Decimal("8.50") if anime is a and day == D else Decimal("8.00")
            SnapshotFactory(anime=anime, feed="top", taken_on=day, position=rank, rank=rank, score=score, run=run)
    return a, b


def _get(client, name, **params):
    return client.get(reverse(f"api:{name}"), params)


@pytest.mark.parametrize("name", LIST_ENDPOINTS)
def test_every_list_answers_in_the_shared_envelope(client, history, name):
    response = _get(client, name)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"feed", "as_of", "date", "baseline_date", "insufficient_history", "results"}
    assert (body["feed"], body["date"]) == ("top", D.isoformat())


def test_climbers_and_fallers_carry_the_rank_change(client, history):
    climbers = _get(client, "climbers", window=7).json()
    assert climbers["baseline_date"] == (D - dt.timedelta(days=7)).isoformat()
    assert [(r["mal_id"], r["title"], r["rank"], r["previous_rank"], r["change"]) for r in climbers["results"]] == [
        (1, "Climber", 2, 5, 3)
    ]
    fallers = _get(client, "fallers", window=7).json()
    assert [(r["mal_id"], r["change"]) for r in fallers["results"]] == [(2, -3)]


def test_momentum_carries_the_score_change(client, history):
    body = _get(client, "momentum", window=7).json()
    assert [(r["mal_id"], r["change"]) for r in body["results"]] == [(1, 0.5)]


def test_as_of_replays_a_past_day(client, history):
    body = _get(client, "top-rated", as_of=(D - dt.timedelta(days=3)).isoformat()).json()
    assert body["date"] == (D - dt.timedelta(days=7)).isoformat()
    # Equal scores that day: the feed's position breaks the tie.
    assert [r["mal_id"] for r in body["results"]] == [2, 1]


def test_short_history_says_so_instead_of_an_empty_list(client, history):
    body = _get(client, "climbers", window=30).json()
    assert body["results"] == []
    assert body["insufficient_history"]["needed_days"] == 31


def test_other_endpoints_answer(client, history):
    assert _get(client, "overview").json()["anime"] == 2
    assert _get(client, "seasons", from_year=2019, to_year=2021).json()["results"][0]["year"] == 2020
    assert set(_get(client, "trending").json()) >= {"weekly_climbers", "monthly_momentum", "new_entries", "streaks"}
    assert [f["feed"] for f in _get(client, "feeds").json()][:2] == ["top", "airing"]
    assert _get(client, "etl-runs").json()["count"] == 2
    search = _get(client, "anime-search", q="climb").json()
    assert [row["mal_id"] for row in search["results"]] == [1]
    detail = client.get(reverse("api:anime-detail", args=[1])).json()
    assert detail["title"] == "Climber"
    history_body = client.get(reverse("api:anime-history", args=[1]), {"days": 30}).json()
    assert [p["rank"] for p in history_body["feeds"]["top"]] == [5, 2]


@pytest.mark.parametrize(
    ("name", "params", "field", "message"),
    [
        ("top-rated", {"limit": 0}, "limit", "greater than or equal to 1"),
        ("top-rated", {"limit": 101}, "limit", "less than or equal to 100"),
        ("top-rated", {"feed": "nope"}, "feed", "use one of: top, airing, upcoming, popular, movies, season"),
        ("top-rated", {"as_of": "yesterday"}, "as_of", "Date has wrong format"),
        ("top-rated", {"min_score": "11"}, "min_score", "less than or equal to 10"),
        ("climbers", {"window": 14}, "window", "use one of: 7, 30"),
        ("genres", {"kind": "moods"}, "kind", "use one of: genres, themes, demographics"),
        ("seasons", {"from_year": 2024, "to_year": 2020}, "from_year", "must not be after to_year"),
        ("new-entries", {"top": "many"}, "top", "A valid integer is required"),
        ("anime-search", {"season": "monsoon"}, "season", "use one of: winter, spring, summer, fall"),
        ("etl-runs", {"status": "odd"}, "status", "use one of: running, success"),
    ],
)
def test_a_bad_parameter_is_a_400_naming_it(client, name, params, field, message):
    response = _get(client, name, **params)
    assert response.status_code == 400
    assert message in " ".join(response.json()[field])


def test_an_unknown_title_is_a_json_404(client):
    for name in ("api:anime-detail", "api:anime-history"):
        response = client.get(reverse(name, args=[424242]))
        assert response.status_code == 404
        assert response.json() == {"detail": "No Anime matches the given query."}


def test_csv_export_has_a_header_row_and_a_file_name(client, history):
    response = _get(client, "climbers", window=7, format="csv")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="animedash-climbers.csv"'
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [(row["mal_id"], row["change"]) for row in rows] == [("1", "3")]


def test_csv_flattens_paged_lists_too(client, history):
    response = _get(client, "etl-runs", format="csv")
    header = response.content.decode().splitlines()[0].split(",")
    assert header[:3] == ["id", "feed", "taken_on"]


def test_csv_errors_stay_json(client):
    response = _get(client, "top-rated", limit=0, format="csv")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert "limit" in response.json()


def test_answers_are_cached_until_new_data_commits(client, history, django_assert_max_num_queries):
    first = _get(client, "top-rated").json()
    with django_assert_max_num_queries(1):  # the data version only
        assert _get(client, "top-rated").json() == first
    # A new run commits: every cached answer is stale at once.
    c = AnimeFactory(mal_id=3, title="Newcomer", score=Decimal("9.90"))
    SnapshotFactory(anime=c, feed="top", taken_on=D, position=3, rank=3, score=Decimal("9.90"))
    assert [r["mal_id"] for r in _get(client, "top-rated").json()["results"]] == [3, 1, 2]


def test_cache_hits_and_misses_are_counted(client, history):
    hits = analytics_cache.HITS.labels(endpoint="genres")
    misses = analytics_cache.MISSES.labels(endpoint="genres")
    before = (hits._value.get(), misses._value.get())
    _get(client, "genres")
    _get(client, "genres")
    assert (hits._value.get() - before[0], misses._value.get() - before[1]) == (1, 1)


def test_redis_down_answers_from_the_database(client, history, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
        }
    }
    analytics_cache._skip_until = 0.0

    def errors() -> float:
        # The throttle meets the dead cache first; from then on the cache is skipped for a while.
        return sum(analytics_cache.ERRORS.labels(endpoint=name)._value.get() for name in ("throttle", "climbers"))

    before = errors()
    try:
        response = _get(client, "climbers", window=7)
        assert response.status_code == 200
        assert response.json()["results"][0]["mal_id"] == 1
        assert errors() == before + 1
        # Then the cache is skipped for a while instead of timing out on every request.
        assert _get(client, "climbers", window=7).status_code == 200
        assert errors() == before + 1
    finally:
        analytics_cache._skip_until = 0.0


def test_anonymous_clients_are_throttled_with_a_json_429(client, monkeypatch):
    monkeypatch.setattr(AnonThrottle, "THROTTLE_RATES", {"anon": "2/min"})
    cache.clear()
    statuses = [_get(client, "feeds").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert "throttled" in _get(client, "feeds").json()["detail"].lower()


def test_starting_a_run_needs_a_staff_user(client, django_user_model):
    url = reverse("api:etl-runs")
    assert client.post(url, {"feed": "top"}).status_code == 403
    client.force_login(django_user_model.objects.create_user("fan", password="pw-fan-123456"))
    assert client.post(url, {"feed": "top"}).status_code == 403


def test_staff_can_start_a_run_which_runs_after_commit(
    client, django_user_model, etl, django_capture_on_commit_callbacks
):
    client.force_login(django_user_model.objects.create_superuser("boss", "b@example.org", "pw-boss-123456"))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("api:etl-runs"), {"feed": "airing"}, content_type="application/json")
    assert response.status_code == 202
    assert response.json()["feed"] == "airing"
    run = EtlRun.objects.get(trigger=EtlRun.Trigger.API)
    assert (run.feed, run.status) == ("airing", EtlRun.Status.SUCCESS)


def test_starting_a_run_of_an_unknown_feed_is_a_400(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("boss", "b@example.org", "pw-boss-123456"))
    response = client.post(reverse("api:etl-runs"), {"feed": "nope"}, content_type="application/json")
    assert response.status_code == 400
    assert "feed" in response.json()


def test_schema_docs_and_browsable_root_are_served_offline(client):
    schema = client.get(reverse("api-schema"), {"format": "json"})
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/v1/trending/climbers" in paths
    window = next(p for p in paths["/api/v1/trending/climbers"]["get"]["parameters"] if p["name"] == "window")
    assert "7 (weekly) or 30 (monthly)" in window["description"]
    docs = client.get(reverse("api-docs")).content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in docs
    assert "cdn." not in docs
    root = client.get(reverse("api:root"), HTTP_ACCEPT="text/html")
    assert root.status_code == 200
    assert "/api/v1/trending/climbers" in root.content.decode()


def test_search_pages_are_cached_until_new_data_commits(client, history, django_assert_max_num_queries):
    first = _get(client, "anime-search", q="er").json()
    assert [row["mal_id"] for row in first["results"]] == [1, 2]
    with django_assert_max_num_queries(1):  # the data version only
        assert _get(client, "anime-search", q="er").json() == first
    AnimeFactory(mal_id=3, title="Newer", members=10**9)
    EtlRunFactory(feed="top", taken_on=D)  # a committed run moves the data version
    assert [row["mal_id"] for row in _get(client, "anime-search", q="er").json()["results"]] == [3, 1, 2]


def test_the_api_root_links_every_endpoint_the_urlconf_declares(client):
    from analytics.api.urls import urlpatterns

    links = client.get(reverse("api:root"), HTTP_ACCEPT="application/json").json()
    expected = {p.name for p in urlpatterns if p.name != "root" and not p.pattern.converters}
    assert expected <= set(links)
    assert {"overview", "trending", "climbers", "anime-search", "etl-runs"} <= expected
    assert links["climbers"].endswith("/api/v1/trending/climbers")
    assert set(links) - expected == {"schema", "docs"}


def _endpoints_with_output():
    from analytics.api.base import AnalyticsApi
    from analytics.api.urls import urlpatterns

    return [
        pytest.param(p.callback.view_class, bool(p.pattern.converters), id=p.name)
        for p in urlpatterns
        if issubclass(p.callback.view_class, AnalyticsApi)
    ]


def _shape(value):
    """The keys of an answer, nested, with lists reduced to the shape of their first item."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return None


@pytest.mark.parametrize(("endpoint", "takes_title"), _endpoints_with_output())
def test_every_endpoint_sends_every_field_its_selector_computes(history, endpoint, takes_title):
    # An `Output` serializer drops what it does not declare: a field added to a selector must be declared too.
    path = {"mal_id": history[0].mal_id} if takes_title else {}
    filters = endpoint.Filter(data={})
    assert filters.is_valid(), filters.errors
    computed = endpoint.compute(**filters.validated_data, **path)
    assert _shape(endpoint.answer({}, **path)) == _shape(computed)


def test_the_schema_documents_each_answer_from_its_output_serializer(client):
    schema = client.get(reverse("api-schema"), {"format": "json"}).json()
    climbers = schema["paths"]["/api/v1/trending/climbers"]["get"]
    assert climbers["summary"] == "Rank climbers"
    assert climbers["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/MovesAnswer"
    }
    row = schema["components"]["schemas"]["MoveRow"]["properties"]
    assert set(row) == {"mal_id", "title", "rank", "previous_rank", "change", "score", "image_url"}
    feeds = schema["paths"]["/api/v1/feeds"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert feeds == {"type": "array", "items": {"$ref": "#/components/schemas/FeedRow"}}
