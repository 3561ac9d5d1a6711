"""The pages in a real browser (Debian's chromium through Playwright): they load cleanly, draw their charts
with the expected data, their controls change what is drawn, and they fit a phone.

No network: every request to a host other than the live server is answered 404 by the test (the cover
images are on MyAnimeList's CDN), and such requests do not count as failures of ours.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings

from analytics import exports, selectors
from analytics.tests.seed import TODAY, seed_history
from snapshots.models import EtlRun
from snapshots.tests.factories import AnimeFactory, EtlRunFactory, SnapshotFactory

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

    def __init__(self, browser, origin: str, viewport: str = "desktop", bypass_csp: bool = False) -> None:
        self.origin = origin
        self.problems: list[str] = []
        # Reduced motion: charts draw at once (no animation), so screenshots show them whole. The CSP
        # refuses injected scripts, so a test that injects one (axe-core) bypasses it.
        self.context = browser.new_context(viewport=VIEWPORTS[viewport], reduced_motion="reduce", bypass_csp=bypass_csp)
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

    def open_page(viewport: str = "desktop", bypass_csp: bool = False) -> Watched:
        opened.append(Watched(browser, live_server.url, viewport, bypass_csp))
        return opened[-1]

    yield open_page
    for page in opened:
        page.close()


def test_every_page_loads_cleanly_and_fits_desktop_and_phone(watched, settings, tmp_path):
    anime = seed_history()
    settings.EXPORT_DIR = tmp_path  # the data page lists a dump
    exports.exports_write(out=tmp_path)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    pages = {
        "dashboard": "/",
        "trending": "/trending/",
        "anime_detail": f"/anime/{anime[0].mal_id}/",
        "status": "/status/",
        "about": "/about/",
        "search": "/search/?q=series",
        "data": "/data/",
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


AXE = Path(settings.BASE_DIR) / "devtools" / "vendor" / "axe-core" / "axe.min.js"

# The focused element's ring against what is drawn around it: the first element under a point just
# outside its box (the ring sits there: outline-offset), then up its ancestors to an opaque background.
FOCUS_RING = """() => {
  const el = document.activeElement;
  const style = getComputedStyle(el);
  const rgb = c => c.match(/[\\d.]+/g).map(Number);
  const channel = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  const luminance = ([r, g, b]) => 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  const box = el.getBoundingClientRect();
  const gap = parseFloat(style.outlineOffset) + parseFloat(style.outlineWidth) / 2;
  const x = box.left - gap >= 0 ? box.left - gap : box.right + gap;
  const under = document.elementsFromPoint(x, box.top + box.height / 2).filter(n => !el.contains(n));
  let background = [255, 255, 255];
  for (let node = under[0]; node; node = node.parentElement) {
    const colour = rgb(getComputedStyle(node).backgroundColor);
    if (colour.length < 4 || colour[3] > 0) { background = colour.slice(0, 3); break; }
  }
  const [light, dark] = [luminance(rgb(style.outlineColor)), luminance(background)].sort((a, b) => b - a);
  return {element: el.outerHTML.slice(0, 100), style: style.outlineStyle, width: parseFloat(style.outlineWidth),
          ratio: (light + 0.05) / (dark + 0.05)};
}"""


def axe_violations(tab) -> list[str]:
    """Every violation axe-core finds on the page (all rules it runs by default, every impact)."""
    tab.page.add_script_tag(path=str(AXE))
    violations = tab.page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[node['target'] for node in v['nodes']][:5]}" for v in violations
    ]


def broken_references(tab) -> list[str]:
    """ARIA attributes naming an id no element has (axe only lists those as "needs review")."""
    return tab.page.evaluate(
        """() => Array.from(document.querySelectorAll('[aria-describedby], [aria-labelledby], [aria-controls]'))
             .flatMap(el => ['aria-describedby', 'aria-labelledby', 'aria-controls']
               .flatMap(name => (el.getAttribute(name) || '').split(/\\s+/).filter(Boolean)
                 .filter(id => !document.getElementById(id)).map(id => `${el.id || el.tagName} ${name}=${id}`)))"""
    )


def weak_focus_rings(tab) -> list[str]:
    """Tab through the whole page: each focused element must draw a ring with at least 3:1 contrast (WCAG 1.4.11)."""
    weak, seen = [], set()
    for _ in range(400):
        tab.page.keyboard.press("Tab")
        ring = tab.page.evaluate(FOCUS_RING)
        if ring["element"].startswith("<body") or ring["element"] in seen:
            break
        seen.add(ring["element"])
        if ring["style"] == "none" or ring["width"] < 2 or ring["ratio"] < 3:
            weak.append(f"{ring['element']}: {ring['style']} {ring['width']}px, contrast {ring['ratio']:.2f}")
    return weak


def test_axe_finds_no_violation_and_focus_rings_contrast_on_every_page_at_desktop_and_phone_width(
    watched, settings, tmp_path
):
    anime = seed_history()
    settings.EXPORT_DIR = tmp_path  # the data page lists a dump
    exports.exports_write(out=tmp_path)
    EtlRunFactory(feed="airing", trigger=EtlRun.Trigger.DEMO)  # the demo banner shows too
    pages = [
        "/",
        "/trending/",
        "/trending/?window=9&as_of=yesterday",  # the fields' error messages
        f"/anime/{anime[0].mal_id}/",
        "/status/",
        "/about/",
        "/search/?q=series",
        "/data/",
        "/no-such-page/",
    ]
    found = {}
    for viewport in VIEWPORTS:
        tab = watched(viewport, bypass_csp=True)
        for path in pages:
            tab.goto(path)
            violations = axe_violations(tab) + broken_references(tab)
            tab.goto(path)
            if problems := violations + weak_focus_rings(tab):
                found[f"{path} at {viewport} width"] = problems
    # The controls redraw the tables with valid values: the errors go, and no field still points at them.
    tab.goto("/trending/?window=9")
    tab.page.select_option("#id_window", "30")
    tab.page.wait_for_function("() => !document.querySelector('#trending-form .error')")
    if violations := axe_violations(tab) + broken_references(tab):
        found["/trending/?window=9 after a change"] = violations
    assert not found, "\n".join(f"{where}:\n  " + "\n  ".join(problems) for where, problems in found.items())


def test_dashboard_charts_draw_the_data_and_follow_every_control(watched, settings):
    settings.SEASON_MIN_VOLUME = 1  # each season of the seed holds one title
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
    # The table is the server's fragment, fetched beside the chart's JSON: it may land a moment later.
    page.wait_for_function("() => document.getElementById('top-table').innerText.includes('etl run --all')")
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
    for chart in ("score", "ranks", "audience", "feeds"):
        assert tab.points(f"{chart}-chart") == 20
    assert tab.chart("feeds-chart")["datasets"][0]["label"] == "top (MAL rank)"
    # The CDN is unreachable here: the placeholder shows instead of a broken image.
    page.wait_for_selector("[data-cover].cover-failed")
    assert page.locator(".cover-placeholder").is_visible()
    page.select_option("#history-days", "7")
    tab.wait_chart("score-chart", "c.data.labels.length === 7")
    assert re.search(r"MAL rank: .* → .*", page.locator("#ranks-summary").inner_text())
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


# What every line chart of a page is drawn with: per axis its tick options and the ticks drawn, per
# dataset its resolved line options and data.
CHART_OPTIONS = """id => { const c = Chart.getChart(document.getElementById(id));
  const axes = {};
  for (const [name, scale] of Object.entries(c.scales)) {
    if (name !== 'x') axes[name] = {precision: c.options.scales[name].ticks.precision, reverse: scale.options.reverse,
                                    ticks: scale.ticks.map(t => t.value), labels: scale.ticks.map(t => t.label)};
  }
  const datasets = c.data.datasets.map((d, i) => ({label: d.label, data: d.data,
    tension: c.getDatasetMeta(i).dataset.options.tension, spanGaps: c.getDatasetMeta(i).dataset.options.spanGaps}));
  return {labels: c.data.labels, axes, datasets}; }"""


def test_title_history_draws_its_numbers_once_with_whole_rank_ticks_two_decimal_scores_and_gaps(watched):
    anime = seed_history(days=12)[3]
    seed_history(days=12, feed="airing")
    missing = TODAY - dt.timedelta(days=4)
    anime.snapshots.filter(taken_on=missing).delete()  # a day the title was in no feed
    tab = watched()
    tab.goto(f"/anime/{anime.mal_id}/")
    days = [(TODAY - dt.timedelta(days=n)).isoformat() for n in range(11, -1, -1)]
    charts = {
        name: tab.page.evaluate(CHART_OPTIONS, f"{name}-chart") for name in ("score", "ranks", "audience", "feeds")
    }
    # The title's numbers once, not once per feed: one line each.
    assert [d["label"] for d in charts["score"]["datasets"]] == ["Score"]
    assert [d["label"] for d in charts["ranks"]["datasets"]] == ["MAL rank", "Popularity"]
    assert [d["label"] for d in charts["audience"]["datasets"]] == ["Members", "Favorites"]
    # Per feed its feed rank; top's is MAL's rank, so its position is drawn beside it.
    assert [d["label"] for d in charts["feeds"]["datasets"]] == [
        "top (MAL rank)",
        "top (position)",
        "airing (position)",
    ]
    for name, chart in charts.items():
        # Every calendar day is on the axis; the missing one is a gap, and no line bridges or smooths it.
        assert chart["labels"] == days, name
        for dataset in chart["datasets"]:
            assert dataset["data"][days.index(missing.isoformat())] is None, (name, dataset["label"])
            assert None not in dataset["data"][: days.index(missing.isoformat())], (name, dataset["label"])
            assert (dataset["tension"], dataset["spanGaps"]) == (0, False), (name, dataset["label"])
    for name in ("ranks", "audience", "feeds"):
        for axis in charts[name]["axes"].values():
            assert axis["precision"] == 0
            assert all(float(tick).is_integer() for tick in axis["ticks"]), (name, axis["ticks"])
    assert all(axis["reverse"] for axis in charts["ranks"]["axes"].values())
    assert charts["feeds"]["axes"]["y"]["reverse"]
    score_axis = charts["score"]["axes"]["y"]
    assert score_axis["precision"] == 2
    assert all(re.fullmatch(r"\d+\.\d\d", label) for label in score_axis["labels"]), score_axis["labels"]
    assert tab.problems == []


def test_dashboard_seasons_show_their_volume_hide_small_ones_and_never_crown_one(watched):
    seed_history(days=2)  # its seasons hold one title each: all hidden
    year = TODAY.year - 1
    for season, scores in (("spring", ["7.00", "7.20", "7.40"]), ("summer", ["9.90"]), ("fall", ["8.00"] * 3)):
        for score in scores:
            AnimeFactory(year=year, season=season, score=Decimal(score))
    tab = watched()
    tab.goto("/")
    page = tab.page
    # A one-title season has the best mean score, and is neither drawn nor crowned.
    summary = page.locator("#season-summary").inner_text()
    assert f"Highest mean score: {year} Fall (8.00, 3 titles)" in summary
    assert "Summer" not in summary
    assert "with fewer than 3 titles are not shown" in summary
    chart = page.evaluate(CHART_OPTIONS, "season-chart")
    assert chart["labels"] == [f"{year} Spring", f"{year} Summer", f"{year} Fall"]
    [scores] = chart["datasets"]
    assert (scores["data"], scores["tension"], scores["spanGaps"]) == ([7.2, None, 8.0], 0, False)
    assert all(re.fullmatch(r"\d+\.\d\d", label) for label in chart["axes"]["y"]["labels"])
    # The tooltip says how many titles a season's point stands for; the data table has a volume column.
    footer = page.evaluate(
        """() => { const c = Chart.getChart(document.getElementById('season-chart'));
             c.tooltip.setActiveElements([{datasetIndex: 0, index: 2}], {x: 0, y: 0}); c.update();
             return c.tooltip.footer; }"""
    )
    assert footer == ["3 titles this season"]
    assert "Volume" in page.locator("#season-table thead").text_content()
    # The top 10 is a horizontal bar chart: its score axis is x.
    score_ticks = page.evaluate(
        "() => Chart.getChart(document.getElementById('top-chart')).scales.x.ticks.map(t => t.label)"
    )
    assert all(re.fullmatch(r"\d+\.\d\d", label) for label in score_ticks), score_ticks
    assert tab.problems == []


def test_dashboard_scripts_revalidate_what_they_already_hold_and_get_304s(watched):
    seed_history()
    tab = watched()
    statuses: dict[str, list[int]] = {}
    tab.page.on("response", lambda response: statuses.setdefault(response.url, []).append(response.status))
    tab.goto("/")
    page = tab.page
    page.select_option("#top-feed", "airing")
    tab.wait_chart("top-chart", "c.data.datasets[0].data.length === 0")
    page.select_option("#top-feed", "top")
    tab.wait_chart("top-chart", "c.data.datasets[0].data.length === 10")
    page.select_option("#top-feed", "airing")  # asked before: the script sends its ETag and gets a 304
    tab.wait_chart("top-chart", "c.data.datasets[0].data.length === 0")
    page.wait_for_function("() => document.getElementById('top-table').innerText.includes('etl run --all')")
    airing = {url: seen for url, seen in statuses.items() if "feed=airing" in url}
    assert airing, statuses
    # The chart's JSON and the table's fragment: a 200 the first time, a 304 (with no body) the second.
    assert all(seen == [200, 304] for seen in airing.values()), airing
    # Chromium reports a 304 the page's script takes itself (the HTTP cache bypassed) as an aborted load.
    assert [problem for problem in tab.problems if not problem.endswith("net::ERR_ABORTED")] == []


def test_moving_now_swaps_itself_in_when_a_snapshot_commits(watched):
    seed_history(days=20, titles=8)
    tab = watched()
    tab.goto("/")
    assert tab.page.locator("#moving-now").is_visible()
    # A new title enters the ranking: a new run commits, and the data version moves (rechecked each second).
    run = EtlRunFactory(feed="top", taken_on=TODAY)
    newcomer = AnimeFactory(mal_id=4242, title="Newcomer Zeta")
    SnapshotFactory(anime=newcomer, feed="top", taken_on=TODAY, position=1, rank=1, run=run)
    time.sleep(1.2)
    tab.page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    tab.page.locator("#moving-now", has_text="Newcomer Zeta").wait_for()
    assert tab.problems == []
