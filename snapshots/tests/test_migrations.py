"""Migrations that rewrite data keep it: a self-hosted history must survive an upgrade."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE, AFTER = ("snapshots", "0004_rawpage_lz4"), ("snapshots", "0005_rawpage_body")


def _migrate(target: tuple[str, str]):
    executor = MigrationExecutor(connection)
    executor.migrate([target])
    return executor.loader.project_state([target]).apps


@pytest.mark.django_db(transaction=True)
def test_stored_pages_keep_their_body_and_next_page_flag_across_0005():
    payloads = [
        {"pagination": {"has_next_page": True, "last_visible_page": 2}, "data": [{"mal_id": 1, "title": 'Ü "x"'}]},
        {"pagination": {"has_next_page": False}, "data": []},
        {"data": [{"mal_id": 2}]},  # early shapes may lack pagination: the only page
    ]
    try:
        old = _migrate(BEFORE)
        run = old.get_model("snapshots", "EtlRun").objects.create(feed="top", taken_on=dt.date(2024, 1, 1))
        for page, payload in enumerate(payloads, start=1):
            old.get_model("snapshots", "RawPage").objects.create(
                run=run, page=page, url=f"u{page}", http_status=200, payload=payload
            )

        new = _migrate(AFTER)
        stored = new.get_model("snapshots", "RawPage").objects.order_by("page")
        assert [json.loads(raw.body) for raw in stored] == payloads
        assert [raw.has_next_page for raw in stored] == [True, False, False]

        back = _migrate(BEFORE)
        assert [raw.payload for raw in back.get_model("snapshots", "RawPage").objects.order_by("page")] == payloads
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes("snapshots")[0])
