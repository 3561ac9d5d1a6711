"""The pages in a real browser (Debian's chromium through Playwright): they load cleanly, draw their charts
with the expected data, their controls change what is drawn, and they fit a phone.

No network: every request to a host other than the live server is answered 404 by the test (the cover
images are on MyAnimeList's CDN), and such requests do not count as failures of ours.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from analytics import selectors
from analytics.tests.seed import TODAY, seed_history

playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(settings.BASE_DIR) / "test-artifacts" / "screenshots"
VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}

# live_server serves from another thread, so the data must be committed: transactional tests.
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing: run `make browser`"),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One chromium per module. Playwright's sync API runs an event loop in this thread, and Django
    refuses ORM calls while one runs unless told the tests know what they are doing."""
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


class Watched:
    """A page in a fresh context, with everything that went wrong on our own host collected."""

    def __init__(self, browser, origin: str, viewport: str = "desktop") -> None:
        self.origin = origin
        self.problems: list[str] = []
        # Reduced motion: charts draw at once (no animation), so screenshots show them whole.
        self.context = browser.new_context(viewport=VIEWPORTS[viewport], reduced_motion="reduce")
        self.context.route(lambda url: not self.ours(url), lambda route: route.fulfill(status=404, body=""))
        self.page = self.context.new_page()
        self.page.set_default_timeout(10_000)
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        self.page.on("requestfailed", self._request_failed)
        self.page.on("response", self._response)

    def ours(self, url: str) -> bool:
        return url.startswith(self.origin)

    def _console(self, message) -> None:
        source = message.location.get("url", "") if message.location else ""
        if message.type == "error" and (not source or self.ours(source)) and not self._external_load(message):
            self.problems.append(f"console: {message.text} ({source})")

    def _external_load(self, message) -> bool:
        # "Failed to load resource" is logged with the failing resource's own URL as its location.
        return "Failed to load resource" in message.text and not self.ours(message.location.get("url", ""))

    def _request_failed(self, request) -> None:
        if self.ours(request.url):
            self.problems.append(f"request failed: {request.url} {request.failure}")

    def _response(self, response) -> None:
        if self.ours(response.url) and response.status >= 400:
            self.problems.append(f"HTTP {response.status}: {response.url}")

    def goto(self, path: str) -> None:
        self.page.goto(self.origin + path, wait_until="networkidle")

    def points(self, canvas_id: str, dataset: int = 0) -> int:
        return self.page.evaluate(
            "([id, i]) => Chart.getChart(document.getElementById(id)).data.datasets[i].data.length",
            [canvas_id, dataset],
        )

    def chart(self, canvas_id: str) -> dict:
        return self.page.evaluate(
            """id => { const c = Chart.getChart(document.getElementById(id));
                 return {type: c.config.type, labels: c.data.labels,
                         datasets: c.data.datasets.map(d => ({label: d.label, data: d.data}))}; }""",
            canvas_id,
        )

    def wait_chart(self, canvas_id: str, condition: str) -> None:
        """Wait until `condition` (JS over `c`, the chart) holds: a redraw after a fetch is asynchronous."""
        self.page.wait_for_function(
            f"() => {{ const c = window.Chart && Chart.getChart(document.getElementById('{canvas_id}')); "
            f"return Boolean(c) && ({condition}); }}"
        )

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def watched(browser, live_server) -> Iterator:
    opened: list[Watched] = []

    def open_page(viewport: str = "desktop") -> Watched:
        opened.append(Watched(browser, live_server.url, viewport))
        return opened[-1]

    yield open_page
    for page in opened:
        page.close()


def test_every_page_loads_cleanly_and_fits_desktop_and_phone(watched):
    anime = seed_history()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    pages = {
        "dashboard": "/",
        "trending": "/trending/",
        "anime_detail": f"/anime/{anime[0].mal_id}/",
        "status": "/status/",
        "about": "/about/",
        "search": "/search/?q=series",
    }
    for viewport in VIEWPORTS:
        tab = watched(viewport)
        for name, path in pages.items():
            tab.goto(path)
            assert tab.page.locator("h1").first.is_visible(), path
            width = tab.page.evaluate("document.documentElement.scrollWidth")
            assert width <= VIEWPORTS[viewport]["width"], f"{path} overflows the {viewport} width: {width}px"
            tab.page.screenshot(path=str(SCREENSHOTS / f"{name}-{viewport}.png"), full_page=True)
        assert tab.problems == []


def test_dashboard_charts_draw_the_data_and_follow_every_control(watched):
    seed_history()
    tab = watched()
    tab.goto("/")
    assert tab.points("top-chart") == 10
    assert tab.points("genre-chart") == 2  # Action and Drama
    seasons = len(selectors.seasonal_trends()["results"])
    assert tab.points("season-chart") == seasons
    page = tab.page

    # Top 10: another feed has no data yet, so the chart empties and the table says what to do.
    page.select_option("#top-feed", "airing")
    tab.wait_chart("top-chart", "c.data.datasets[0].data.length === 0")
    assert "etl run --all" in page.locator("#top-table").inner_text()

    # Genres: metric, chart type, kind and feed.
    counts = tab.chart("genre-chart")["datasets"][0]["data"]
    page.select_option("#genre-metric", "coverage")
    tab.wait_chart("genre-chart", "c.data.datasets[0].label === 'Coverage %'")
    assert tab.chart("genre-chart")["datasets"][0]["data"] == [100.0, 50.0]
    assert counts == [12, 6]
    page.select_option("#genre-metric", "frequency")
    tab.wait_chart("genre-chart", "c.data.datasets[0].label === 'Frequency %'")
    page.select_option("#genre-type", "pie")
    tab.wait_chart("genre-chart", "c.config.type === 'pie'")
    page.select_option("#genre-kind", "themes")
    tab.wait_chart("genre-chart", "c.data.labels.join() === 'School'")
    page.select_option("#genre-feed", "movies")
    tab.wait_chart("genre-chart", "c.data.datasets[0].data.length === 0")
    assert "No data yet" in page.locator("#genre-empty").inner_text()

    # Seasons: metric, a second metric on its own axis, range and chart type.
    page.select_option("#season-metric", "volume")
    tab.wait_chart("season-chart", "c.data.datasets[0].label === 'Volume (titles)'")
    page.select_option("#season-metric2", "total_favorites")
    tab.wait_chart("season-chart", "c.data.datasets.length === 2 && c.data.datasets[1].yAxisID === 'y1'")
    page.select_option("#season-range", "custom")
    page.fill("#season-from", "2020")
    page.fill("#season-to", "2022")
    page.click("#season-apply")
    tab.wait_chart("season-chart", "c.data.labels.length === 12")
    page.select_option("#season-range", "1")
    tab.wait_chart("season-chart", "c.data.labels.length === 0")
    assert "Choose a wider range" in page.locator("#season-empty").inner_text()
    page.select_option("#season-type", "bar")
    tab.wait_chart("season-chart", "c.config.type === 'bar'")

    # Trending widget: tabs are buttons with aria-selected, arrow keys move between them.
    monthly = page.get_by_role("tab", name="Monthly")
    monthly.click()
    assert monthly.get_attribute("aria-selected") == "true"
    assert page.locator("#panel-monthly").is_visible()
    assert not page.locator("#panel-weekly").is_visible()
    page.keyboard.press("ArrowRight")
    assert page.get_by_role("tab", name="New").get_attribute("aria-selected") == "true"
    assert page.locator("#panel-new").is_visible()
    page.get_by_role("tab", name="Streaks").click()
    assert page.locator("#panel-streaks a").first.get_attribute("href").startswith("/anime/")
    assert tab.problems == []


def test_trending_page_controls_redraw_the_tables(watched):
    seed_history()
    tab = watched()
    tab.goto("/trending/")
    page = tab.page
    meta = page.locator("#trending-meta")
    assert "7-day window" in meta.inner_text()
    page.select_option("#id_window", "30")
    page.wait_for_function("() => document.getElementById('trending-meta').textContent.includes('30-day window')")
    baseline = (TODAY - dt.timedelta(days=30)).isoformat()
    assert f"compared with {baseline}" in meta.inner_text()
    assert "window=30" in page.url
    assert page.locator("#table-climbers tbody tr").count() > 0
    assert page.locator("#table-climbers .chg.up").first.is_visible()

    as_of = (TODAY - dt.timedelta(days=20)).isoformat()
    page.fill("#id_as_of", as_of)
    page.locator("#id_as_of").dispatch_event("change")
    page.wait_for_function(
        f"() => document.getElementById('trending-meta').textContent.includes('Snapshot of {as_of}')"
    )
    # 20 days of history before that day: the monthly comparison is not possible yet.
    assert "will appear in" in page.locator("#table-climbers").inner_text()

    page.select_option("#id_feed", "upcoming")
    # An arrow function, not a bare expression: Playwright would eval() that in the page, which the CSP refuses.
    page.wait_for_function("() => document.getElementById('trending-meta').textContent.includes('No snapshot')")
    assert "etl run --all" in page.locator("#table-streaks").inner_text()
    assert tab.problems == []


def test_anime_detail_draws_history_and_a_cover_placeholder(watched):
    anime = seed_history(days=20)[3]
    tab = watched()
    tab.goto(f"/anime/{anime.mal_id}/")
    page = tab.page
    for metric in ("rank", "score", "members"):
        assert tab.points(f"{metric}-chart") == 20
    assert tab.chart("rank-chart")["datasets"][0]["label"] == "top"
    # The CDN is unreachable here: the placeholder shows instead of a broken image.
    page.wait_for_selector("[data-cover].cover-failed")
    assert page.locator(".cover-placeholder").is_visible()
    page.select_option("#history-days", "7")
    tab.wait_chart("score-chart", "c.data.labels.length === 7")
    assert re.search(r"top: .* → .*", page.locator("#rank-summary").inner_text())
    assert tab.problems == []


def test_header_search_leads_to_the_detail_page(watched):
    seed_history(titles=4)
    tab = watched("phone")
    tab.goto("/about/")
    page = tab.page
    page.get_by_label("Search titles").fill("series 02")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/anime/1002/$"))
    assert page.locator("h1").inner_text() == "Series 02"
    page.get_by_label("Search titles").fill("series")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/search/\?q=series$"))
    page.get_by_role("link", name="Series 01").click()
    page.wait_for_url(re.compile(r"/anime/1001/$"))
    assert tab.problems == []


def test_api_docs_browsable_api_and_admin_work_under_the_content_security_policy(watched, django_user_model):
    # A CSP violation is a console error, which Watched collects: each page must load with none.
    django_user_model.objects.create_superuser("admin", "admin@example.org", "pw-admin-123456")
    tab = watched()
    tab.goto("/api/docs/")
    tab.page.locator(".swagger-ui .opblock").first.wait_for()
    tab.goto("/api/v1/feeds")
    tab.goto("/admin/login/")
    tab.page.fill("#id_username", "admin")
    tab.page.fill("#id_password", "pw-admin-123456")
    tab.page.click("input[type=submit]")
    tab.page.wait_for_url("**/admin/")
    tab.goto("/admin/snapshots/etlrun/")
    tab.goto("/admin/django_celery_beat/periodictask/add/")
    assert tab.problems == []
