from __future__ import annotations

import logging

from animedash.logging import log_context


def test_request_id_is_taken_from_the_header_and_returned(client):
    response = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert response["X-Request-ID"] == "abc-123"


def test_request_id_is_generated_when_missing_or_unsafe(client):
    generated = client.get("/healthz")["X-Request-ID"]
    assert len(generated) == 32
    unsafe = client.get("/healthz", headers={"X-Request-ID": "bad id\nwith newline"})["X-Request-ID"]
    assert unsafe != "bad id\nwith newline"
    assert len(unsafe) == 32


def test_every_log_line_of_a_request_is_json_with_its_request_id(client, json_logs):
    client.get("/healthz", headers={"X-Request-ID": "req-42"})
    lines = json_logs()
    request_lines = [line for line in lines if line.get("logger") == "animedash.request"]
    assert request_lines, lines
    line = request_lines[-1]
    assert line["request_id"] == "req-42"
    assert line["status"] == 200
    assert line["path"] == "/healthz"
    assert {"time", "level", "message"} <= line.keys()


def test_log_context_fields_nest_and_unwind(json_logs):
    logger = logging.getLogger("animedash.test")
    with log_context(run_id=7), log_context(feed="top"):
        logger.warning("inside")
    logger.warning("outside")
    inside, outside = [line for line in json_logs() if line["logger"] == "animedash.test"]
    assert (inside["run_id"], inside["feed"]) == (7, "top")
    assert "run_id" not in outside
