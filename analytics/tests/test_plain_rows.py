"""PlainRows represents a selector's rows exactly as DRF's own list would, only faster."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from rest_framework import serializers

from analytics.api.base import PlainRows
from analytics.api.catalog import FeedPoint, HistoryDay

DAY = {
    "taken_on": dt.date(2024, 1, 2),
    "score": Decimal("8.5"),
    "rank": 3,
    "popularity": None,
    "members": 120_000,
    "favorites": 0,
    "score_change": Decimal("-0.10"),
    "rank_change": None,
    "popularity_change": 2,
    "members_change": -5,
    "favorites_change": None,
}


def test_history_rows_read_as_drf_would_read_them():
    rows = [DAY, {**DAY, "score": None, "rank": None, "taken_on": dt.date(2024, 1, 3)}]
    plain = HistoryDay(many=True)
    assert isinstance(plain, PlainRows)
    assert plain.to_representation(rows) == serializers.ListSerializer(child=HistoryDay()).to_representation(rows)


def test_feed_points_read_as_drf_would_read_them():
    points = [{"taken_on": dt.date(2024, 1, 2), "feed_rank": None, "position": 4, "feed_rank_change": -1}]
    expected = serializers.ListSerializer(child=FeedPoint()).to_representation(points)
    assert (
        FeedPoint(many=True).to_representation(points)
        == expected
        == [{"taken_on": "2024-01-02", "feed_rank": None, "position": 4, "feed_rank_change": -1}]
    )
