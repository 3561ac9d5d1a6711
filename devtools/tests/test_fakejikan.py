"""The fake Jikan over real HTTP: endpoints, paging, daily drift, overrides, faults and the request log."""

from __future__ import annotations

import bisect
import io
import json
import statistics
import threading
import time
from collections.abc import Iterator
from datetime import date, timedelta
from unittest import mock

import httpx
import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command

from devtools.fakejikan import FakeJikan, catalogue, iter_catalogue, real_items
from devtools.fakejikan import server as fakejikan

DAY = date(2024, 5, 1)


@pytest.fixture
def fake() -> Iterator[FakeJikan]:
    with FakeJikan(day=DAY) as server:
        yield server


@pytest.fixture
def client(fake: FakeJikan) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.base_url, timeout=5) as http:
        yield http


def all_pages(client: httpx.Client, path: str, **params: str) -> list[dict]:
    items, page = [], 1
    while True:
        body = client.get(path, params={**params, "page": page}).json()
        items += body["data"]
        if not body["pagination"]["has_next_page"]:
            return items
        page += 1


def recorded(name: str) -> dict:
    return json.loads((fakejikan.DATA_DIR / name).read_text())


# Catalogue ------------------------------------------------------------------------------------------


def test_catalogue_holds_every_distinct_real_anime_item_in_full_shape():
    items = real_items()
    assert len(items) == len({item["mal_id"] for item in items}) == 107
    assert all("titles" in item and "approved" in item for item in items)
    assert {5114, 457, 44511, 9253} <= {item["mal_id"] for item in items}


def test_catalogue_grows_by_cloning_real_titles_under_new_ids():
    titles = catalogue(300)
    clones = [title.item for title in titles if title.mal_id >= 900000]
    assert len(titles) == 300
    assert [clone["mal_id"] for clone in clones] == list(range(900000, 900000 + 300 - 107))
    first = clones[0]
    assert first["title"] == real_items()[0]["title"] + " (sim 1)"
    assert first["titles"][0] == {"type": "Default", "title": first["title"]}
    assert catalogue(10) == catalogue()[:10]


def test_iter_catalogue_yields_every_item_as_served_that_day(client):
    items = list(iter_catalogue(7, None, DAY))
    assert len(items) == 107
    served = client.get("/anime/5114").json()["data"]
    assert next(item for item in items if item["mal_id"] == 5114) == served


# Endpoints ------------------------------------------------------------------------------------------


def test_top_anime_is_ordered_by_score_with_full_pagination(client):
    response = client.get("/top/anime")
    body = response.json()
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "private, must-revalidate"
    scores = [item["score"] for item in body["data"]]
    assert len(scores) == 25
    assert scores == sorted(scores, reverse=True)
    total = body["pagination"]["items"]["total"]
    assert body["pagination"] == {
        "last_visible_page": -(-total // 25),
        "has_next_page": True,
        "current_page": 1,
        "items": {"count": 25, "total": total, "per_page": 25},
    }
    assert body["data"][0]["rank"] == 1


def test_top_anime_items_keep_the_real_item_shape(client):
    item = client.get("/top/anime").json()["data"][0]
    real = next(real for real in real_items() if real["mal_id"] == item["mal_id"])
    assert list(item) == list(real)
    assert item["titles"] == real["titles"]
    assert item["aired"] == real["aired"]


def test_paging_walks_the_whole_list_once(client):
    first = client.get("/top/anime").json()["pagination"]
    items = all_pages(client, "/top/anime")
    assert len(items) == len({item["mal_id"] for item in items}) == first["items"]["total"]
    assert all(item["score"] is not None for item in items)
    last = client.get("/top/anime", params={"page": first["last_visible_page"]}).json()["pagination"]
    assert last["has_next_page"] is False
    assert last["current_page"] == first["last_visible_page"]


def test_page_past_the_end_is_empty(client):
    body = client.get("/top/anime", params={"page": 99}).json()
    assert body["data"] == []
    assert body["pagination"]["has_next_page"] is False
    assert body["pagination"]["items"]["count"] == 0


def test_limit_sets_the_page_size(client):
    body = client.get("/top/anime", params={"limit": 10, "page": 2}).json()
    assert len(body["data"]) == 10
    assert body["pagination"]["items"]["per_page"] == 10


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 26}, "limit"),
        ({"page": 0}, "page"),
        ({"page": "x"}, "page"),
        ({"filter": "best"}, "filter"),
        ({"type": "anime"}, "type"),
    ],
)
def test_invalid_parameters_get_the_real_400_body(client, params, field):
    response = client.get("/top/anime", params=params)
    body = response.json()
    assert response.status_code == 400
    assert body["type"] == "ValidationException"
    assert list(body["messages"]) == [field]


def test_limit_over_25_gets_the_recorded_400_body(client):
    body = client.get("/top/anime", params={"limit": 50}).json()
    assert body == recorded("errors/SYNTHETIC_400_ValidationException_limit_over_25.json")


def test_top_anime_filter_airing_lists_only_airing_titles_by_score(client):
    items = all_pages(client, "/top/anime", filter="airing")
    assert items
    assert all(item["status"] == "Currently Airing" for item in items)
    assert [item["score"] for item in items] == sorted((item["score"] for item in items), reverse=True)


def test_top_anime_filter_upcoming_lists_unaired_titles_by_members_without_score(client):
    items = all_pages(client, "/top/anime", filter="upcoming")
    assert items
    assert all(item["status"] == "Not yet aired" for item in items)
    assert all(item["score"] is None and item["rank"] is None for item in items)
    assert [item["members"] for item in items] == sorted((item["members"] for item in items), reverse=True)


def test_top_anime_filter_bypopularity_lists_everything_by_members(client):
    items = all_pages(client, "/top/anime", filter="bypopularity")
    assert len(items) == 107
    assert [item["popularity"] for item in items] == list(range(1, 108))


def test_top_anime_filter_favorite_orders_by_favorites(client):
    items = all_pages(client, "/top/anime", filter="favorite")
    assert [item["favorites"] for item in items] == sorted((item["favorites"] for item in items), reverse=True)


def test_top_anime_type_filters_on_the_item_type(client):
    movies = all_pages(client, "/top/anime", type="movie")
    tv_airing = all_pages(client, "/top/anime", type="TV", filter="airing")
    assert movies
    assert {item["type"] for item in movies} == {"Movie"}
    assert tv_airing
    assert all(item["type"] == "TV" and item["airing"] for item in tv_airing)
    assert all_pages(client, "/top/anime", type="music") == []


def test_ranks_are_shared_by_equal_scores_and_skip_after_ties():
    titles, numbers = catalogue(2000), fakejikan.day_numbers(7, 2000, DAY)
    scored = [(score, numbers.rank[i]) for i, score in enumerate(numbers.score) if score is not None]
    scores = [score for score, _ in scored]
    assert len(titles) == 2000
    assert len(set(scores)) < len(scores)  # clones make ties certain
    ascending = sorted(scores)
    for score, rank in scored:
        # 1 + the number of titles with a strictly higher score: MAL's "1224" ranking.
        assert rank == 1 + len(ascending) - bisect.bisect_right(ascending, score)


def test_seasons_now_lists_the_latest_aired_season_by_members(client):
    items = all_pages(client, "/seasons/now")
    assert items
    seasons = {(item["year"], item["season"]) if item["season"] else item["aired"]["from"][:7] for item in items}
    # A title with no season/year counts in the season of its aired.from.
    assert seasons == {(2022, "fall"), "2022-10"}
    assert [item["members"] for item in items] == sorted((item["members"] for item in items), reverse=True)


def test_seasons_upcoming_lists_unaired_titles(client):
    items = all_pages(client, "/seasons/upcoming")
    assert items
    assert all(item["status"] == "Not yet aired" for item in items)


def test_season_by_year_falls_back_to_aired_from_when_season_is_null(client):
    winter_2018 = all_pages(client, "/seasons/2018/winter")
    assert len(winter_2018) == 25
    assert all(item["year"] == 2018 for item in winter_2018)
    # A movie has no season/year: it lands in the season its aired.from falls in (2014-12 -> fall).
    fall_2014 = all_pages(client, "/seasons/2014/fall")
    assert [(item["type"], item["season"], item["aired"]["from"][:7]) for item in fall_2014] == [
        ("Movie", None, "2014-12")
    ]
    assert client.get("/seasons/1990/summer").json()["data"] == []


@pytest.mark.parametrize("path", ["/seasons/-1/winter", "/seasons/2018/autumn", "/seasons/3000/fall"])
def test_invalid_season_gets_the_recorded_404(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response.json() == recorded("recorded/v4_error_404_seasons_-1_winter_HttpException.json")


# The demo's catalogue ----------------------------------------------------------------------------


def test_demo_catalogue_moves_every_date_into_the_days_calendar():
    day = date(2026, 5, 10)  # spring 2026: 14 seasons after the recordings' fall 2022
    with FakeJikan(day=day, demo=True) as server, httpx.Client(base_url=server.base_url) as http:
        now = all_pages(http, "/seasons/now")
        assert all_pages(http, "/seasons/2026/spring") == now
        assert {(item["year"], item["season"]) for item in now if item["season"]} == {(2026, "spring")}
        fullmetal = http.get("/anime/5114").json()["data"]
    # Recorded as "Apr 5, 2009 to Jul 4, 2010", spring 2009: 14 seasons later.
    assert fullmetal["aired"]["string"] == "Oct 5, 2012 to Jan 4, 2014"
    assert (fullmetal["year"], fullmetal["season"], fullmetal["aired"]["from"][:10]) == (2012, "fall", "2012-10-05")
    for item in iter_catalogue(7, None, day, demo=True):
        start = item["aired"]["prop"]["from"]
        if start["day"]:
            # aired.from, its prop and its string agree, as in Jikan's answers.
            assert item["aired"]["from"][:10] == f"{start['year']:04d}-{start['month']:02d}-{start['day']:02d}"
            month = date(2000, start["month"], 1).strftime("%b")
            assert item["aired"]["string"].startswith(f"{month} {start['day']}, {start['year']}")


def test_demo_catalogue_leaves_the_recorded_dates_alone_in_the_recordings_season():
    day = date(2022, 12, 6)
    assert list(iter_catalogue(7, None, day, demo=True)) != list(iter_catalogue(7, None, day))  # the surges
    dates = ("year", "season", "aired")
    assert [{k: item[k] for k in dates} for item in iter_catalogue(7, None, day, demo=True)] == [
        {k: item[k] for k in dates} for item in iter_catalogue(7, None, day)
    ]


@pytest.mark.parametrize("rank", ["rank", "popularity"])
def test_demo_surges_bring_a_new_title_into_the_top_50_every_week(rank):
    def top_50(day: date) -> set[int]:
        ranks = getattr(fakejikan.day_numbers(7, None, day, True), rank)
        return {i for i, value in enumerate(ranks) if value and value <= 50}

    # A whole cycle of weeks: in each, a title in the top 50 that was not there in the 3 days before.
    for week in range(fakejikan.DEMO_SURGE_WEEKS):
        end = DAY + timedelta(days=7 * week)
        recent = set().union(*(top_50(end - timedelta(days=n)) for n in range(7)))
        before = set().union(*(top_50(end - timedelta(days=n)) for n in range(7, 10)))
        assert recent - before, f"week of {end}"


def test_genres_are_the_recorded_list(client):
    response = client.get("/genres/anime")
    assert response.status_code == 200
    assert response.json() == recorded("recorded/v4_genres_anime_2022-12-06.json")
    assert len(response.json()["data"]) == 76


def test_anime_by_id_serves_the_catalogue_item(client):
    response = client.get("/anime/5114")
    assert response.status_code == 200
    item = response.json()["data"]
    assert item["title"] == "Fullmetal Alchemist: Brotherhood"
    assert item == client.get("/top/anime", params={"filter": "bypopularity"}).json()["data"][item["popularity"] - 1]


@pytest.mark.parametrize("path", ["/anime/1", "/anime/abc", "/reviews/anime", "/"])
def test_unknown_resources_get_the_recorded_404(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response.json() == recorded("recorded/v4_error_404_anime_-1_HttpException.json")


def test_paths_outside_v4_get_404(fake):
    response = httpx.get(fake.base_url.removesuffix("/v4") + "/top/anime")
    assert response.status_code == 404


def test_a_grown_catalogue_still_serves_pages_fast():
    with FakeJikan(day=DAY, catalogue_size=25000) as server, httpx.Client(base_url=server.base_url) as http:
        first = http.get("/top/anime", params={"filter": "bypopularity"}).json()
        assert first["pagination"]["items"]["total"] == 25000
        assert first["pagination"]["last_visible_page"] == 1000
        timings = []
        for page in range(2, 32):
            started = time.perf_counter()
            assert http.get("/top/anime", params={"filter": "bypopularity", "page": page}).status_code == 200
            timings.append(time.perf_counter() - started)
    # Over HTTP with client-side parsing; the server's own share is about 1.5 ms.
    assert statistics.median(timings) < 0.05


# Daily drift ----------------------------------------------------------------------------------------


def test_the_same_day_always_gives_the_same_answer(client, fake):
    first = client.get("/top/anime", params={"page": 2}).json()
    fakejikan.day_numbers.cache_clear()
    fakejikan.ordering.cache_clear()
    with FakeJikan(day=DAY) as other:
        again = httpx.get(other.base_url + "/top/anime", params={"page": 2}).json()
    assert first == again


def test_two_days_give_different_numbers(client, fake):
    before = {item["mal_id"]: item for item in all_pages(client, "/top/anime", filter="bypopularity")}
    fake.day = DAY + timedelta(days=7)
    after = {item["mal_id"]: item for item in all_pages(client, "/top/anime", filter="bypopularity")}
    assert before.keys() == after.keys()
    assert any(before[i]["score"] != after[i]["score"] for i in before)
    assert all(after[i]["members"] > before[i]["members"] for i in before)
    assert all(after[i]["favorites"] >= before[i]["favorites"] for i in before)
    scored = [i for i in before if before[i]["score"] is not None]
    assert all(after[i]["scored_by"] > before[i]["scored_by"] for i in scored)
    assert all(abs(after[i]["score"] - before[i]["score"]) < 0.5 for i in scored)


def test_a_different_seed_drifts_differently():
    one, other = fakejikan.day_numbers(7, None, DAY), fakejikan.day_numbers(8, None, DAY)
    assert one.score != other.score


def test_scores_stay_between_1_and_10_with_2_decimals_over_years():
    for offset in range(0, 3650, 365):
        for score in fakejikan.day_numbers(7, None, DAY + timedelta(days=offset)).score:
            assert score is None or (1 <= score <= 10 and round(score, 2) == score)


def test_unaired_and_unscored_titles_keep_null_scores(client):
    items = all_pages(client, "/top/anime", filter="bypopularity")
    unaired = [item for item in items if item["status"] == "Not yet aired"]
    assert unaired
    assert all(item["score"] is None and item["rank"] is None for item in unaired)
    # A finished special with no score keeps MAL's "unknown" rank 0.
    assert [item["rank"] for item in items if item["status"] != "Not yet aired" and item["score"] is None] == [0]


# Overrides ------------------------------------------------------------------------------------------


def test_serve_answers_each_page_with_its_recorded_file(fake, client):
    pages = ["v4_top_anime_type-tv_page1_2022-12-06.json", "v4_top_anime_type-tv_page1_2022-12-09"]
    fake.serve("/top/anime", pages=pages)
    first, second = (client.get("/top/anime", params={"page": n}).json() for n in (1, 2))
    real = recorded("recorded/v4_top_anime_type-tv_page1_2022-12-06.json")
    assert first["data"] == real["data"]
    assert first["pagination"] == {**real["pagination"], "has_next_page": True, "last_visible_page": 2}
    assert second["pagination"]["has_next_page"] is False
    assert second["pagination"]["last_visible_page"] == 2
    # Other paths still come from the catalogue.
    assert client.get("/seasons/now").json()["pagination"]["items"]["total"] == 27


def test_serve_past_the_last_page_is_empty(fake, client):
    fake.serve("/v4/seasons/now", pages=["v4_seasons_now_page1_2022-12-07.json"])
    body = client.get("/seasons/now", params={"page": 3}).json()
    assert body["data"] == []
    assert body["pagination"] == {
        "last_visible_page": 1,
        "has_next_page": False,
        "current_page": 3,
        "items": {"count": 0, "total": 57, "per_page": 25},
    }


def test_serve_keeps_the_early_v4_shape(fake, client):
    fake.serve("/top/anime", pages=["v4early_top_anime_trimmed-1-item_2022-02_reactive-jikan.json"])
    body = client.get("/top/anime").json()
    assert body["pagination"] == {"last_visible_page": 1, "has_next_page": False}
    assert "titles" not in body["data"][0]


def test_serve_answers_error_files_with_their_status(fake, client):
    fake.serve("/anime/457", pages=["v4_anime_457_by_id_2022-12-03.json"])
    fake.serve("/reviews/anime", pages=["v4_error_500_reviews_anime_unhandled_Exception_2022-12-15.json"])
    fake.serve("/top/anime", pages=["SYNTHETIC_429_upstream_mal_rate_limit.json"])
    assert client.get("/anime/457").json() == recorded("recorded/v4_anime_457_by_id_2022-12-03.json")
    reviews = client.get("/reviews/anime")
    assert reviews.status_code == 500
    assert "trace" in reviews.json()
    assert client.get("/top/anime").status_code == 429


def test_serve_rejects_unknown_files_and_empty_lists(fake):
    with pytest.raises(FileNotFoundError):
        fake.serve("/top/anime", pages=["nope.json"])
    with pytest.raises(ValueError, match="at least one page"):
        fake.serve("/top/anime", pages=[])


# Faults ---------------------------------------------------------------------------------------------


def test_latency_delays_the_answer_then_answers_normally(fake, client):
    fake.inject("latency", seconds=0.3)
    started = time.monotonic()
    response = client.get("/top/anime")
    assert time.monotonic() - started >= 0.3
    assert response.status_code == 200
    assert len(response.json()["data"]) == 25


def test_latency_longer_than_the_client_timeout_times_out(fake):
    fake.inject("latency", seconds=2)
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(fake.base_url + "/top/anime", timeout=0.2)
    assert fake.requests[0].status == 200


def test_429_without_retry_after_has_the_jikan_body_and_no_header(fake, client):
    fake.inject("429")
    response = client.get("/top/anime")
    assert response.status_code == 429
    assert "retry-after" not in response.headers
    assert response.json() == recorded("errors/QUOTED_429_jikan_rate_limit_from_code_comments.json")
    assert response.json()["status"] == "429"


def test_429_upstream_with_retry_after(fake, client):
    fake.inject("429", retry_after=3, upstream=True)
    response = client.get("/top/anime")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "3"
    assert response.json()["message"] == "Jikan is being rate limited by MyAnimeList."


@pytest.mark.parametrize(
    ("fault", "status", "file"),
    [
        ("500", 500, "errors/SYNTHETIC_500_UpstreamException.json"),
        ("504", 504, "errors/QUOTED_504_BadResponseException_from_issues_595_610_612.json"),
        ("404", 404, "errors/QUOTED_404_BadResponseException_from_issue_378.json"),
    ],
)
def test_error_faults_answer_with_the_recorded_body(fake, client, fault, status, file):
    fake.inject(fault)
    response = client.get("/top/anime")
    assert response.status_code == status
    assert response.json() == recorded(file)


def test_malformed_answers_200_with_a_body_that_is_not_json(fake, client):
    fake.inject("malformed")
    response = client.get("/top/anime")
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_truncated_answers_200_with_half_a_json_body(fake, client):
    whole = client.get("/top/anime").content
    fake.inject("truncated")
    response = client.get("/top/anime")
    assert response.status_code == 200
    assert response.content == whole[: len(whole) // 2]
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_no_data_answers_json_without_a_data_list(fake, client):
    fake.inject("no_data")
    response = client.get("/top/anime")
    assert response.status_code == 200
    assert "data" not in response.json()
    assert "pagination" in response.json()


def test_drift_answers_in_the_early_v4_shape(fake, client):
    fake.inject("drift", times=2)
    body = client.get("/top/anime").json()
    assert body["pagination"] == {"last_visible_page": 4, "has_next_page": True}
    assert all("titles" not in item and "approved" not in item for item in body["data"])
    single = client.get("/anime/5114").json()["data"]
    assert "titles" not in single
    assert single["title"] == "Fullmetal Alchemist: Brotherhood"


def test_duplicates_repeats_the_end_of_the_previous_page(fake, client):
    page1 = client.get("/top/anime", params={"page": 1}).json()["data"]
    page2 = client.get("/top/anime", params={"page": 2}).json()["data"]
    fake.inject("duplicates", times=2)
    assert client.get("/top/anime", params={"page": 1}).json()["data"] == page1  # nothing before page 1
    body = client.get("/top/anime", params={"page": 2}).json()
    assert body["data"] == page1[-5:] + page2
    assert body["pagination"]["items"]["count"] == 30


def test_duplicates_works_on_overrides(fake, client):
    fake.serve("/seasons/now", pages=["v4_seasons_now_page1_2022-12-07", "v4_seasons_now_page1_2022-12-09"])
    fake.inject("duplicates", path="/seasons/now")
    first = recorded("recorded/v4_seasons_now_page1_2022-12-07.json")["data"]
    second = recorded("recorded/v4_seasons_now_page1_2022-12-09.json")["data"]
    assert client.get("/seasons/now", params={"page": 2}).json()["data"] == first[-5:] + second


def test_bad_items_corrupts_some_items(fake, client):
    fake.inject("bad_items")
    data = client.get("/top/anime").json()["data"]
    assert "mal_id" not in data[0]
    assert data[1]["members"] == -1
    assert data[2]["score"] == "abc"
    assert all(isinstance(item["mal_id"], int) for item in data[3:])


def test_faults_apply_times_times_to_matching_paths_only(fake, client):
    fake.inject("500", times=2, path="/seasons")
    assert client.get("/top/anime").status_code == 200
    assert client.get("/seasons/now").status_code == 500
    assert client.get("/seasons/2018/winter").status_code == 500
    assert client.get("/seasons/now").status_code == 200


def test_each_request_takes_the_oldest_matching_fault(fake, client):
    fake.inject("500")
    fake.inject("504")
    assert [client.get("/top/anime").status_code for _ in range(3)] == [500, 504, 200]


def test_fault_path_matches_whole_segments(fake, client):
    fake.inject("500", path="/v4/anime")
    assert client.get("/anime/5114").status_code == 500
    fake.reset()
    fake.inject("500", path="/anime")
    assert client.get("/animelist").status_code == 404


def test_inject_rejects_unknown_faults_and_options(fake):
    with pytest.raises(ValueError, match="Unknown fault"):
        fake.inject("503")
    with pytest.raises(TypeError, match="no option"):
        fake.inject("500", seconds=1)
    with pytest.raises(TypeError, match="seconds"):
        fake.inject("latency")


# Request log and control ----------------------------------------------------------------------------


def test_requests_are_recorded_in_order_with_params_time_and_status(fake, client):
    fake.inject("429", path="/seasons")
    client.get("/top/anime", params={"page": 2, "type": "tv"})
    client.get("/seasons/now")
    client.get("/nope")
    first, second, third = fake.requests
    assert (first.path, first.params, first.status) == ("/top/anime", {"page": "2", "type": "tv"}, 200)
    assert (second.path, second.status) == ("/seasons/now", 429)
    assert (third.path, third.status) == ("/nope", 404)
    assert first.at <= second.at <= third.at <= time.monotonic()


def test_request_count_filters_by_path(fake, client):
    for path in ["/top/anime", "/top/anime", "/seasons/now", "/seasons/2018/winter", "/anime/5114"]:
        client.get(path)
    assert fake.request_count() == 5
    assert fake.request_count("/top/anime") == 2
    assert fake.request_count("/v4/seasons") == 2
    assert fake.request_count("/anime") == 1


def test_reset_clears_overrides_faults_and_the_log(fake, client):
    fake.serve("/top/anime", pages=["v4early_top_anime_trimmed-1-item_2022-02_reactive-jikan.json"])
    fake.inject("500", path="/seasons")
    client.get("/top/anime")
    fake.reset()
    assert fake.request_count() == 0
    assert len(client.get("/top/anime").json()["data"]) == 25
    assert client.get("/seasons/now").status_code == 200


def test_concurrent_requests_are_all_served_and_counted(fake):
    statuses: list[int] = []

    def fetch() -> None:
        with httpx.Client(base_url=fake.base_url) as http:
            statuses.extend(http.get("/top/anime", params={"page": n % 4 + 1}).status_code for n in range(10))

    threads = [threading.Thread(target=fetch) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 80
    assert fake.request_count("/top/anime") == 80


def test_stop_closes_the_port_and_idle_connections(fake):
    with httpx.Client(base_url=fake.base_url) as http:
        assert http.get("/genres/anime").status_code == 200
        fake.stop()
        fake.stop()  # a second stop is harmless
        with pytest.raises(httpx.TransportError):
            http.get("/genres/anime")


def test_a_latency_wait_ends_when_the_server_stops(fake):
    fake.inject("latency", seconds=30)
    errors: list[Exception] = []

    def fetch() -> None:
        try:
            httpx.get(fake.base_url + "/top/anime", timeout=10)
        except httpx.TransportError as error:
            errors.append(error)

    thread = threading.Thread(target=fetch)
    thread.start()
    while not fake.requests:
        time.sleep(0.01)
    started = time.monotonic()
    fake.stop()
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert time.monotonic() - started < 5
    assert len(errors) == 1  # the connection closed without an answer


def test_base_url_and_day_default_to_a_free_port_and_today():
    server = FakeJikan().start()
    try:
        assert server.base_url == f"http://127.0.0.1:{server.port}/v4"
        assert server.port > 0
        assert server.day == fakejikan.datetime.now(fakejikan.UTC).date()
    finally:
        server.stop()


def test_fixture_points_jikan_base_url_at_the_fake(fake_jikan):
    assert fake_jikan.base_url == django_settings.JIKAN_BASE_URL
    assert httpx.get(fake_jikan.base_url + "/genres/anime").status_code == 200


# Command --------------------------------------------------------------------------------------------


def test_command_serves_until_interrupted():
    out = io.StringIO()
    answers: list[int] = []

    def interrupt(seconds: float) -> None:
        base_url = out.getvalue().split()[3]
        answers.append(httpx.get(base_url + "/top/anime").status_code)
        raise KeyboardInterrupt

    with mock.patch("devtools.management.commands.fakejikan.sleep", side_effect=interrupt):
        call_command("fakejikan", "--port", "0", "--day", "2024-05-01", "--catalogue-size", "200", stdout=out)
    assert answers == [200]
    assert "(day 2024-05-01)" in out.getvalue()
    assert "Stopped." in out.getvalue()


@pytest.mark.parametrize("args", [["--day", "May 1"], ["--port", "-1"], ["--catalogue-size", "many"]])
def test_command_rejects_bad_arguments(args):
    with pytest.raises(CommandError, match="expected"):
        call_command("fakejikan", *args)
