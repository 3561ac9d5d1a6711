"""The open data page, its downloads (validators, byte ranges, only listed files) and the exports API."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from django.utils.http import http_date

from analytics import exports
from analytics.dumps import dumps_published
from analytics.ranges import RangeNotSatisfiable, byte_range
from snapshots.tests.factories import AnimeFactory, SnapshotFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def out(settings, tmp_path) -> Path:
    settings.EXPORT_DIR = tmp_path / "exports"
    return settings.EXPORT_DIR


@pytest.fixture
def dumps(out) -> list[Path]:
    """Two dumps of a small history, oldest first."""
    for position, mal_id in enumerate([5114, 9253], start=1):
        anime = AnimeFactory(mal_id=mal_id)
        for day in (dt.date(2024, 1, 31), dt.date(2024, 2, 1)):
            SnapshotFactory(anime=anime, feed="top", taken_on=day, position=position)
    return [exports.exports_write(out=out).path for _ in range(2)]


def manifest(dump: Path) -> dict:
    return json.loads((dump / "manifest.json").read_text())


def body(response) -> bytes:
    content = b"".join(response.streaming_content)
    response.close()
    return content


def url(dump: Path, path: str) -> str:
    return f"/data/{dump.name}/{path}"


# The page


def test_data_page_lists_each_dump_newest_first_with_its_files_checksums_and_rows(client, dumps):
    response = client.get("/data/")
    assert response.status_code == 200
    assert [t.name for t in response.templates][:2] == ["analytics/data.html", "base.html"]
    assert [d.name for d in response.context["dumps"]] == [dumps[1].name, dumps[0].name]
    html = response.content.decode()
    assert html.index(f"/data/{dumps[1].name}/") < html.index(f"/data/{dumps[0].name}/")
    for entry in manifest(dumps[1])["files"]:
        assert f'href="{url(dumps[1], entry["path"])}"' in html
        assert entry["sha256"] in html
    assert f'href="{url(dumps[1], "manifest.json")}"' in html
    assert "snapshots 2" in html  # a month's Parquet file holds two rows
    assert "no synopses" in html
    assert "datasette -i" in html
    assert "pyarrow" in html
    assert 'href="/api/v1/exports"' in html


def test_data_page_says_there_is_no_dump_yet(client, out):
    response = client.get("/data/")
    assert response.status_code == 200
    assert "No dump yet" in response.content.decode()


def test_data_page_skips_a_dump_whose_manifest_does_not_read_and_never_shows_temporary_folders(client, dumps, out):
    (dumps[1] / "manifest.json").write_text('{"files": [')
    broken_path = manifest(dumps[0])
    broken_path["files"][0]["path"] = "../../etc/passwd"
    copy = out / "2099-01-01T000000Z"
    shutil.copytree(dumps[0], copy)
    (copy / "manifest.json").write_text(json.dumps(broken_path))
    (out / ".tmp-2099-01-02T000000Z-1").mkdir()
    response = client.get("/data/")
    assert response.status_code == 200
    assert [d.name for d in response.context["dumps"]] == [dumps[0].name]
    assert ".tmp-" not in response.content.decode()


def test_every_page_links_the_data_page(client, out):
    assert 'href="/data/"' in client.get("/about/").content.decode()


# Downloads


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("parquet/snapshots/feed=top/2024-01.parquet", "application/vnd.apache.parquet"),
        ("csv/titles.csv.gz", "application/gzip"),
        ("animedash.sqlite3", "application/vnd.sqlite3"),
        ("manifest.json", "application/json"),
    ],
)
def test_a_listed_file_downloads_whole_with_its_validators(client, dumps, path, content_type):
    dump = dumps[-1]
    on_disk = (dump / path).read_bytes()
    # Accept-Encoding: the stream is sent as it is on disk, never gzipped again.
    response = client.get(url(dump, path), HTTP_ACCEPT_ENCODING="gzip, br")
    assert response.status_code == 200
    assert body(response) == on_disk
    assert response["Content-Type"] == content_type
    assert response["Content-Length"] == str(len(on_disk))
    assert response["ETag"] == f'"{hashlib.sha256(on_disk).hexdigest()}"'
    assert response["Last-Modified"] == http_date(int((dump / path).stat().st_mtime))
    assert response["Accept-Ranges"] == "bytes"
    assert "Content-Encoding" not in response
    assert response["Cache-Control"] == "public, max-age=31536000, immutable"
    assert response["Content-Disposition"] == f'attachment; filename="{path.replace("/", "_")}"'


def test_the_etag_of_a_data_file_is_its_manifest_checksum(client, dumps):
    entry = manifest(dumps[0])["files"][0]
    response = client.get(url(dumps[0], entry["path"]))
    assert response["ETag"] == f'"{entry["sha256"]}"'
    body(response)


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [("bytes=0-9", 0, 9), ("bytes=10-", 10, None), ("bytes=-5", -5, None), ("bytes=3-999999999", 3, None)],
)
def test_a_single_byte_range_is_a_206_with_its_content_range(client, dumps, header, first, last):
    path = "animedash.sqlite3"
    on_disk = (dumps[0] / path).read_bytes()
    size = len(on_disk)
    response = client.get(url(dumps[0], path), HTTP_RANGE=header)
    assert response.status_code == 206
    part = on_disk[first : None if last is None else last + 1]
    assert body(response) == part
    start = first % size
    assert response["Content-Range"] == f"bytes {start}-{start + len(part) - 1}/{size}"
    assert response["Content-Length"] == str(len(part))
    assert response["ETag"] == f'"{hashlib.sha256(on_disk).hexdigest()}"'


@pytest.mark.parametrize("header", ["bytes=999999999-", "bytes=-0"])
def test_a_range_past_the_end_is_a_416_naming_the_size(client, dumps, header):
    path = "animedash.sqlite3"
    response = client.get(url(dumps[0], path), HTTP_RANGE=header)
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{(dumps[0] / path).stat().st_size}"
    assert "Cache-Control" not in response


@pytest.mark.parametrize("header", ["bytes=0-1,4-5", "items=0-1", "bytes=5-2", "bytes=-", "bytes=²-3"])
def test_a_range_that_is_not_one_byte_range_gets_the_whole_file(client, dumps, header):
    path = "animedash.sqlite3"
    response = client.get(url(dumps[0], path), HTTP_RANGE=header)
    assert response.status_code == 200
    assert body(response) == (dumps[0] / path).read_bytes()


def test_if_range_sends_the_range_only_while_the_file_is_the_same(client, dumps):
    path = "manifest.json"
    on_disk = (dumps[0] / path).read_bytes()
    etag = f'"{hashlib.sha256(on_disk).hexdigest()}"'
    mtime = http_date(int((dumps[0] / path).stat().st_mtime))
    for validator in (etag, mtime):
        response = client.get(url(dumps[0], path), HTTP_RANGE="bytes=0-3", HTTP_IF_RANGE=validator)
        assert (response.status_code, body(response)) == (206, on_disk[:4])
    for changed in ('"0000"', f"W/{etag}", http_date(0)):
        response = client.get(url(dumps[0], path), HTTP_RANGE="bytes=0-3", HTTP_IF_RANGE=changed)
        assert (response.status_code, body(response)) == (200, on_disk)


def test_if_none_match_with_the_checksum_is_a_304(client, dumps):
    entry = manifest(dumps[0])["files"][0]
    response = client.get(url(dumps[0], entry["path"]), HTTP_IF_NONE_MATCH=f'"{entry["sha256"]}"')
    assert response.status_code == 304
    assert response["ETag"] == f'"{entry["sha256"]}"'
    assert response["Cache-Control"] == "public, max-age=31536000, immutable"
    assert client.get(url(dumps[0], entry["path"]), HTTP_IF_NONE_MATCH='"other"').status_code == 200


def test_head_answers_the_headers_without_a_body(client, dumps):
    response = client.head(url(dumps[0], "animedash.sqlite3"), HTTP_RANGE="bytes=0-3")
    assert response.status_code == 200
    assert response["Content-Length"] == str((dumps[0] / "animedash.sqlite3").stat().st_size)
    assert body(response) == b""


def test_only_files_a_manifest_lists_are_served(client, dumps, out):
    dump = dumps[0]
    (dump / "notes.txt").write_text("not in the manifest")
    tmp = out / ".tmp-2024-01-01T000000Z-1"
    shutil.copytree(dump, tmp)
    (out / "secret.txt").write_text("outside every dump")
    for path in [
        url(dump, "notes.txt"),
        url(dump, "parquet"),
        url(dump, "parquet/snapshots/feed=top/2099-01.parquet"),
        url(dump, "../secret.txt"),
        url(dump, "%2e%2e/secret.txt"),
        url(dump, "./animedash.sqlite3"),
        url(dump, "/etc/passwd"),
        f"/data/{tmp.name}/animedash.sqlite3",
        "/data/not-a-dump/manifest.json",
        f"/data/{dump.name}/../{dumps[1].name}/manifest.json",
    ]:
        assert client.get(path).status_code == 404, path


def test_a_file_that_is_not_what_its_manifest_says_is_not_served(client, dumps):
    (dumps[0] / "animedash.sqlite3").write_bytes(b"truncated")
    assert client.get(url(dumps[0], "animedash.sqlite3")).status_code == 404


def test_a_file_listed_by_a_manifest_but_leading_elsewhere_is_not_served(client, dumps, out):
    (out / "secret.txt").write_text("outside every dump")
    os.remove(dumps[0] / "animedash.sqlite3")
    os.symlink(out / "secret.txt", dumps[0] / "animedash.sqlite3")
    assert client.get(url(dumps[0], "animedash.sqlite3")).status_code == 404


def test_downloads_take_get_and_head_only(client, dumps):
    assert client.post(url(dumps[0], "manifest.json")).status_code == 405


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-0", (0, 0)),
        ("bytes=0-99", (0, 99)),
        ("bytes=90-", (90, 99)),
        ("bytes=-10", (90, 99)),
        ("bytes=-1000", (0, 99)),
        ("bytes=50-5000", (50, 99)),
        (" bytes=1-2 ", (1, 2)),
        ("bytes=2-1", None),
        ("bytes=1-2, 4-5", None),
        ("bytes=a-b", None),
        ("bits=1-2", None),
        ("bytes=1-2-3", None),
        ("bytes=", None),
    ],
)
def test_byte_range_reads_one_range_and_clips_it_to_the_file(header, expected):
    assert byte_range(header, 100) == expected


@pytest.mark.parametrize(("header", "size"), [("bytes=100-", 100), ("bytes=-0", 100), ("bytes=-5", 0), ("bytes=0-", 0)])
def test_byte_range_refuses_a_range_past_the_end(header, size):
    with pytest.raises(RangeNotSatisfiable):
        byte_range(header, size)


# The API


def test_exports_api_lists_the_dumps_with_absolute_download_urls(client, dumps):
    response = client.get("/api/v1/exports")
    assert response.status_code == 200
    answer = response.json()
    assert answer["count"] == 2
    newest = answer["results"][0]
    assert [d["name"] for d in answer["results"]] == [dumps[1].name, dumps[0].name]
    listed = manifest(dumps[1])
    assert newest["generated_at"] == listed["generated_at"]
    assert newest["span"] == {"first_day": "2024-01-31", "last_day": "2024-02-01"}
    assert newest["formats"] == ["parquet", "sqlite", "csv"]
    assert newest["tables"]["snapshots"] == 4
    assert newest["since"] is None
    assert "no synopses" in newest["licence"]
    assert newest["url"] == f"http://testserver/api/v1/exports/{dumps[1].name}"
    assert newest["manifest_url"] == f"http://testserver{url(dumps[1], 'manifest.json')}"
    assert [{k: v for k, v in f.items() if k != "url"} for f in newest["files"]] == listed["files"]
    for entry in newest["files"]:
        assert entry["url"] == f"http://testserver{url(dumps[1], entry['path'])}"
    download = client.get(newest["files"][0]["url"])
    assert hashlib.sha256(body(download)).hexdigest() == newest["files"][0]["sha256"]
    assert newest["bytes"] == sum(f["bytes"] for f in listed["files"]) + len((dumps[1] / "manifest.json").read_bytes())


def test_exports_api_limit_keeps_the_newest(client, dumps):
    answer = client.get("/api/v1/exports", {"limit": 1}).json()
    assert [d["name"] for d in answer["results"]] == [dumps[1].name]


@pytest.mark.parametrize("query", [{"limit": 0}, {"limit": "many"}, {"limit": 101}, {"feed": "top"}])
def test_exports_api_refuses_a_bad_query_naming_the_field(client, out, query):
    response = client.get("/api/v1/exports", query)
    assert response.status_code == 400
    assert set(response.json()) == set(query)


def test_exports_api_with_no_dump_is_an_empty_list(client, out):
    assert client.get("/api/v1/exports").json() == {"count": 0, "results": []}


def test_exports_api_answers_one_dump_as_the_list_does(client, dumps):
    listed = client.get("/api/v1/exports").json()["results"][1]
    response = client.get(f"/api/v1/exports/{dumps[0].name}")
    assert response.status_code == 200
    assert response.json() == listed


@pytest.mark.parametrize("name", ["2000-01-01T000000Z", "not-a-dump", ".tmp-2024-01-01T000000Z-1"])
def test_exports_api_unknown_dump_is_a_json_404(client, dumps, name):
    response = client.get(f"/api/v1/exports/{name}")
    assert response.status_code == 404
    assert "No dump named" in response.json()["detail"]


def test_the_dumps_read_their_manifest_once_until_it_changes(dumps, out):
    first = dumps_published(out=out)
    assert dumps_published(out=out)[0] is first[0]
    data = manifest(dumps[1])
    data["licence"] = "changed"
    (dumps[1] / "manifest.json").write_text(json.dumps(data))
    assert dumps_published(out=out)[0].manifest["licence"] == "changed"
