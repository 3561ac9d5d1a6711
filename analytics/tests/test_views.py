from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask
from drf_orjson_renderer.renderers import ORJSONRenderer

from analytics.selectors.status import data_version, forget_data_version
from analytics.tests.seed import TODAY, seed_history
from devtools.testing import admin_change_data
from snapshots.models import EtlRun
from snapshots.tests.factories import AnimeFactory, EtlRunFactory, RejectionFactory, SnapshotFactory

pytestmark = pytest.mark.django_db


def page_data(response, element_id: str) -> dict:
    match = re.search(rf'<script id="{element_id}" type="application/json">(.*?)</script>', response.content.decode())
    assert match, f"no json_script {element_id}"
    return json.loads(match.group(1))


def test_dashboard_renders_overview_top_ten_charts_and_trending(client):
    seed_history()
    response = client.get("/")
    assert response.status_code == 200
    assert [t.name for t in response.templates][:2] == ["analytics/dashboard.html", "base.html"]
    context = response.context
    assert context["overview"]["anime"] == 12
    assert context["overview"]["snapshot_days"] == 40
    assert len(context["top"]["results"]) == 10
    assert {row["name"] for row in context["genres"]["results"]} == {"Action", "Drama"}
    assert context["trending"]["weekly_climbers"]["results"]
    html = response.content.decode()
    assert "What is moving on MyAnimeList" in html
    assert 'role="tablist"' in html
    assert 'aria-selected="true"' in html
    assert "▲" in html
    assert "▼" in html
    assert 'href="/anime/1000/"' in html
    data = page_data(response, "dashboard-data")
    assert set(data) == {"top", "genres", "seasons", "season_years", "api", "top_table_url", "top_rows"}
    assert data["api"]["genres"] == "/api/v1/genres"


def test_dashboard_first_paint_data_equals_the_api_answer(client):
    seed_history()
    data = page_data(client.get("/"), "dashboard-data")
    assert data["top"] == client.get("/api/v1/top-rated").json()
    assert data["genres"] == client.get("/api/v1/genres").json()
    assert data["seasons"] == client.get("/api/v1/seasons").json()
    assert isinstance(data["top"]["results"][0]["score"], float)


def test_dashboard_with_no_data_says_which_command_to_run(client):
    response = client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "No data yet." in html
    assert "python manage.py etl run --all" in html
    assert "make demo" in html


def test_dashboard_says_when_short_history_metrics_appear(client):
    seed_history(days=3)
    html = client.get("/").content.decode()
    # Weekly needs 8 days; the oldest recent day is 2 days old, so the comparison day arrives in 5.
    assert "Climbers will appear in 5 days: they need 8 days of history and there are 3 so far." in html
    assert "Climbers will appear in 28 days" in html


def test_dashboard_marks_a_feed_older_than_a_day(client):
    seed_history(days=2, end=TODAY - dt.timedelta(days=3))
    html = client.get("/").content.decode()
    assert "older than a day" in html


def test_trending_page_lists_every_table_for_the_chosen_window_and_feed(client):
    seed_history()
    response = client.get("/trending/", {"window": "30", "feed": "top", "limit": "10"})
    assert response.status_code == 200
    assert response.templates[0].name == "analytics/trending.html"
    tables = response.context["tables"]
    assert set(tables) == {"climbers", "fallers", "momentum", "new_entries", "streaks"}
    # The tables are the API's own answers for the same query.
    assert tables["climbers"]["baseline_date"] == (TODAY - dt.timedelta(days=30)).isoformat()
    api = client.get("/api/v1/trending/climbers", {"window": 30, "limit": 10})
    assert ORJSONRenderer().render(tables["climbers"]) == api.content
    assert response.context["params"] == {"feed": "top", "window": 30, "limit": 10, "as_of": None}
    assert page_data(response, "trending-data")["tables_url"] == "/trending/tables/"


def test_trending_tables_are_one_fragment_the_page_script_swaps_in(client):
    seed_history()
    page = client.get("/trending/", {"window": "30"}).content.decode()
    fragment = client.get("/trending/tables/", {"window": "30"}).content.decode()
    assert "<html" not in fragment
    assert 'id="trending-meta"' in fragment
    assert 'id="trending-tables"' in fragment
    # The page holds exactly the markup the fragment sends: the tables are drawn in one place.
    assert fragment.strip() in page


def test_trending_tables_say_which_feed_rank_they_count_in(client):
    seed_history(feed="popular")
    html = client.get("/trending/", {"feed": "popular"}).content.decode()
    assert "ranked by popularity" in html
    assert '<th scope="col" class="num">Popularity</th>' in html
    assert "Popularity at the comparison day minus popularity today" in html
    # Beside a feed rank other than MAL's, MAL's rank stays a column of its own.
    assert '<th scope="col" class="num">MAL rank</th>' in html
    seed_history(feed="upcoming")
    html = client.get("/trending/tables/", {"feed": "upcoming"}).content.decode()
    assert "ranked by position" in html
    assert '<th scope="col" class="num">Position</th>' in html
    assert "in the top 10 by position" in html
    seed_history(feed="top")
    top = client.get("/trending/tables/", {"feed": "top"}).content.decode()
    assert '<th scope="col" class="num">MAL rank</th>' in top
    assert '<th scope="col" class="num">Position</th>' not in top


def test_dashboard_trending_widget_names_its_feed_rank(client):
    seed_history()
    html = client.get("/").content.decode()
    assert "Feed <strong>top</strong>, ranked by MAL rank" in html


def test_the_top_ten_table_is_one_fragment_the_dashboard_script_swaps_in(client):
    seed_history()
    dashboard = client.get("/").content.decode()
    fragment = client.get("/top-table/").content.decode()
    assert "<html" not in fragment
    assert "Top 10 by score" in fragment
    assert fragment.strip() in dashboard
    # Another feed, and an unknown one that falls back to the default.
    assert client.get("/top-table/", {"feed": "airing"}).status_code == 200
    assert client.get("/top-table/", {"feed": "nope"}).content.decode() == fragment


def test_trending_page_replays_a_past_day(client):
    seed_history()
    as_of = TODAY - dt.timedelta(days=10)
    response = client.get("/trending/", {"as_of": as_of.isoformat()})
    assert response.context["tables"]["climbers"]["date"] == as_of.isoformat()
    assert f"Snapshot of {as_of.isoformat()}" in response.content.decode()


def test_trending_page_falls_back_to_defaults_on_bad_input(client):
    seed_history()
    response = client.get("/trending/", {"window": "9", "as_of": "someday", "feed": "nope"})
    assert response.status_code == 200
    assert response.context["params"] == {"feed": "top", "window": 7, "limit": 25, "as_of": None}
    assert "The default is used." in response.content.decode()


def test_trending_page_without_data_shows_the_empty_state(client):
    html = client.get("/trending/").content.decode()
    assert "No snapshot on or before this day." in html
    assert "python manage.py etl run --all" in html


def test_anime_detail_shows_facts_placeholder_and_history(client):
    anime = seed_history(days=5)[0]
    response = client.get(f"/anime/{anime.mal_id}/")
    assert response.status_code == 200
    assert response.templates[0].name == "analytics/anime_detail.html"
    assert response.context["anime"] == anime
    assert response.context["history_feeds"] == ["top"]
    html = response.content.decode()
    assert 'class="cover-placeholder" aria-hidden="true">S0<' in html
    assert "data-cover-img" in html
    assert "Action" in html
    data = page_data(response, "anime-data")
    history = data["history"]
    # The title's own numbers once per day, and its places per feed in a chart of their own.
    assert len(history["days"]) == 5
    assert len(history["feeds"]["top"]) == 5
    for chart in ("score", "ranks", "audience", "feeds"):
        assert f'id="{chart}-chart"' in html
    assert "top by MAL rank" in html
    assert data["rank_labels"] == {"rank": "MAL rank", "popularity": "popularity", "position": "position"}
    assert page_data(response, "anime-data")["api"] == f"/api/v1/anime/{anime.mal_id}/history"


def test_anime_detail_without_history_or_cover(client):
    anime = AnimeFactory(title="Lonely Title", image_url="")
    html = client.get(f"/anime/{anime.mal_id}/").content.decode()
    assert "No cover image" in html
    assert "No history yet for this title" in html


def test_anime_detail_is_404_for_an_unknown_id(client):
    response = client.get("/anime/987654321/")
    assert response.status_code == 404
    assert "404.html" in [t.name for t in response.templates]
    assert "There is no page at <code>/anime/987654321/</code>" in response.content.decode()


def test_status_page_shows_runs_freshness_schedule_and_rejections(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/1"  # beat runs beside a broker
    seed_history(days=2)
    old = EtlRunFactory(feed="airing", taken_on=TODAY - dt.timedelta(days=4))
    EtlRun.objects.filter(pk=old.pk).update(
        started_at=timezone.now() - dt.timedelta(days=3), finished_at=timezone.now() - dt.timedelta(days=3)
    )
    failed = EtlRunFactory(feed="airing", taken_on=TODAY, status=EtlRun.Status.FAILED)
    RejectionFactory(run=failed, mal_id=42, field="score", reason="must be between 1 and 10", value="11")
    crontab, _ = CrontabSchedule.objects.get_or_create(minute="10", hour="0", timezone="UTC")
    PeriodicTask.objects.update_or_create(
        name="snapshot top", defaults={"task": "snapshots.tasks.feed_snapshot", "crontab": crontab, "args": '["top"]'}
    )
    response = client.get("/status/")
    assert response.status_code == 200
    assert response.templates[0].name == "analytics/status.html"
    feeds = {feed["feed"]: feed for feed in response.context["feeds"]}
    assert feeds["top"]["stale"] is False
    assert feeds["airing"]["stale"] is True
    assert feeds["movies"]["latest_day"] is None
    html = response.content.decode()
    assert "Older than a day: the last run failed" in html
    assert "No snapshot yet." in html
    assert "must be between 1 and 10" in html
    assert "daily at 00:10 UTC" in html
    assert 'id="next-run"' in html
    assert len(response.context["runs"]) == 4


def test_status_page_without_runs_or_schedule(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/1"
    PeriodicTask.objects.all().delete()
    html = client.get("/status/").content.decode()
    assert "No enabled schedule." in html
    assert "No rejected items" in html
    assert "python manage.py etl run --all" in html


def test_status_page_promises_no_scheduled_run_without_a_scheduler(client, settings):
    # The embedded setup (the demo) has no broker, so no beat: the schedule in the database never runs.
    settings.CELERY_BROKER_URL = None
    crontab, _ = CrontabSchedule.objects.get_or_create(minute="10", hour="0", timezone="UTC")
    PeriodicTask.objects.update_or_create(
        name="snapshot top", defaults={"task": "snapshots.tasks.feed_snapshot", "crontab": crontab, "args": '["top"]'}
    )
    html = client.get("/status/").content.decode()
    assert "No scheduler runs in this setup" in html
    assert "python manage.py etl run --all" in html
    assert 'id="next-run"' not in html
    assert "daily at 00:10 UTC" not in html


def test_about_page_explains_every_metric(client):
    response = client.get("/about/")
    assert response.status_code == 200
    assert response.templates[0].name == "analytics/about.html"
    html = response.content.decode()
    minus, times = "\u2212", "\u00d7"  # the page writes formulas with real minus and times signs
    for words in [
        f"change = feed rank at B {minus} feed rank at D",
        f"D {minus} 2 {times} window ≤ B ≤ D {minus} window",
        f"change = score at D {minus} score at B",
        "titles having the genre ÷ titles in the snapshot",
        "mentions of the genre ÷ all genre mentions",
        "a missed day does not break a streak",
        "GET /top/anime?filter=airing",
        "A season with fewer than 3 titles is not shown",
        "the title's own numbers once per day",
    ]:
        assert words in html
    # The feeds table names each feed's feed rank, the number its trends count in.
    rows = dict(re.findall(r'<th scope="row">(\w+)</th>.*?<td class="rank-by">(.*?)</td>', html))
    assert rows == {
        "top": "<code>rank</code> (MAL rank)",
        "airing": "<code>position</code>",
        "upcoming": "<code>position</code>",
        "popular": "<code>popularity</code>",
        "movies": "<code>position</code>",
        "season": "<code>position</code>",
    }


def test_search_redirects_to_the_only_match(client):
    seed_history(days=1, titles=3)
    AnimeFactory(mal_id=77, title="Frieren: Beyond Journey's End")
    response = client.get("/search/", {"q": "frieren"})
    assert response.status_code == 302
    assert response["Location"] == "/anime/77/"


def test_search_lists_several_matches_and_says_when_none_match(client):
    seed_history(days=1, titles=3)
    response = client.get("/search/", {"q": "series"})
    assert response.status_code == 200
    assert response.templates[0].name == "analytics/search.html"
    assert [a.mal_id for a in response.context["matches"]] == [1000, 1001, 1002]
    assert "3 titles matching" in response.content.decode()
    assert "No title matches" in client.get("/search/", {"q": "zzz"}).content.decode()
    assert client.get("/search/").context["matches"] == []


def test_every_page_has_the_header_search_and_no_inline_script(client):
    anime = seed_history(days=2)[0]
    for url in ["/", "/trending/", f"/anime/{anime.mal_id}/", "/status/", "/about/", "/search/?q=x"]:
        html = client.get(url).content.decode()
        assert 'action="/search/"' in html, url
        scripts = re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>", html)
        assert all('type="application/json"' in attrs for attrs in scripts), url
        assert not re.search(r"\son[a-z]+=", html), url


@pytest.mark.parametrize(
    "url", ["/", "/top-table/", "/trending/", "/trending/tables/", "/anime/1000/", "/status/", "/about/", "/search/"]
)
def test_pages_answer_405_to_a_method_they_do_not_take(url):
    seed_history(days=2)
    client = Client(enforce_csrf_checks=True)  # as a browser meets it: no CSRF 403 comes first
    assert client.get(url).status_code in (200, 302)
    for method in ("post", "put", "delete"):
        assert getattr(client, method)(url).status_code == 405, (method, url)


def test_robots_txt_allows_the_pages_and_keeps_crawlers_off_the_api_admin_and_personal_pages(client):
    response = client.get("/robots.txt")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    lines = response.content.decode().splitlines()
    assert {"User-agent: *", "Allow: /", "Disallow: /api/", "Disallow: /admin/", "Disallow: /my/"} <= set(lines)
    assert "Disallow: /feeds/me/" in lines


def test_favicon_ico_leads_to_the_site_icon(client):
    response = client.get("/favicon.ico", follow=True)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"
    assert b"<svg" in b"".join(response.streaming_content)


def test_trending_page_is_cached_once_whatever_extra_or_repeated_parameters_the_query_carries(client):
    from django.core.cache import cache

    seed_history(days=10)
    first = client.get("/trending/", {"window": "7"}).content
    for query in ("window=7&window=7&window=7", "window=7&junk=1", "window=7&utm_source=" + "x" * 200):
        assert client.get(f"/trending/?{query}").content == first
    assert len(cache.keys("analytics:trending-html:*")) == 1
    # A day typed with spaces around it is the same day, drawn and cached once.
    day = (TODAY - dt.timedelta(days=2)).isoformat()
    replay = client.get("/trending/", {"as_of": day}).content
    assert f'value="{day}"'.encode() in replay
    for typed in (f" {day}", f"{day}" + " " * 50):
        assert client.get("/trending/", {"as_of": typed}).content == replay
    assert len(cache.keys("analytics:trending-html:*")) == 2


def test_a_title_edited_in_the_admin_shows_at_once_on_its_page_its_answer_and_search(client, admin_client):
    anime = AnimeFactory(mal_id=7, title="Old name")
    SnapshotFactory(anime=anime, taken_on=TODAY)
    detail, search = reverse("api:anime-detail", args=[7]), reverse("api:anime-search")
    assert client.get(detail).json()["title"] == "Old name"
    assert "Old name" in client.get("/anime/7/").content.decode()
    assert [row["title"] for row in client.get(search, {"q": "name"}).json()["results"]] == ["Old name"]

    change = reverse("admin:snapshots_anime_change", args=[7])
    assert admin_client.post(change, admin_change_data(anime, title="New name")).status_code == 302

    assert client.get(detail).json()["title"] == "New name"
    assert "New name" in client.get("/anime/7/").content.decode()
    assert [row["title"] for row in client.get(search, {"q": "name"}).json()["results"]] == ["New name"]


def test_an_admin_edit_moves_the_data_version_that_every_process_reads_from_the_database(admin_client):
    anime = AnimeFactory(mal_id=7, title="Old name")
    forget_data_version()
    before = data_version()
    change = reverse("admin:snapshots_anime_change", args=[7])
    assert admin_client.post(change, admin_change_data(anime, title="New name")).status_code == 302
    # Another process keeps its version DATA_VERSION_TTL at most, then reads the database again.
    forget_data_version()
    assert data_version() != before


def test_a_snapshot_deleted_in_the_admin_leaves_the_titles_history_at_once(client, admin_client):
    anime = AnimeFactory(mal_id=7)
    kept = SnapshotFactory(anime=anime, taken_on=TODAY - dt.timedelta(days=1))
    wrong = SnapshotFactory(anime=anime, taken_on=TODAY)
    history = reverse("api:anime-history", args=[7])
    assert len(client.get(history).json()["feeds"]["top"]) == 2
    delete = reverse("admin:snapshots_snapshot_delete", args=[wrong.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 302
    assert [p["taken_on"] for p in client.get(history).json()["feeds"]["top"]] == [kept.taken_on.isoformat()]


def test_status_page_tells_a_runs_failure_in_words_and_never_the_database_text(client):
    raw = 'Database error: duplicate key value violates unique constraint "snapshot_unique_anime_feed_day"'
    public = "Database error; the day keeps its previous data."
    EtlRunFactory(feed="top", taken_on=TODAY, status=EtlRun.Status.FAILED, error=raw, public_error=public)
    html = client.get("/status/").content.decode()
    assert public in html
    assert "duplicate key" not in html
    assert "snapshot_unique" not in html


def test_search_page_finds_a_title_by_its_japanese_name(client):
    AnimeFactory(mal_id=20, title="Naruto", title_japanese="ナルト")
    AnimeFactory(mal_id=21, title="Boruto: Naruto Next Generations", title_japanese="BORUTO-ボルト-")
    response = client.get("/search/", {"q": "ナルト"})
    assert response.status_code == 302
    assert response["Location"] == "/anime/20/"
