"""All analytics reads: the API, the pages and the CSV export share these functions.

Windowed metrics read only the days they compare, filtered by (feed, taken_on) first, so their cost
follows the window, not the length of the history.
"""

from __future__ import annotations

from analytics.selectors.catalog import anime_detail, anime_history, anime_search
from analytics.selectors.envelope import Envelope, InsufficientHistory, resolve_day
from analytics.selectors.status import data_version, etl_runs, feeds_summary, overview
from analytics.selectors.tables import genre_distribution, season_years, seasonal_trends, top_rated
from analytics.selectors.trends import (
    moving_now,
    new_entries,
    rank_climbers,
    rank_fallers,
    score_momentum,
    top_streaks,
    trending,
)

__all__ = [
    "Envelope",
    "InsufficientHistory",
    "anime_detail",
    "anime_history",
    "anime_search",
    "data_version",
    "etl_runs",
    "feeds_summary",
    "genre_distribution",
    "moving_now",
    "new_entries",
    "overview",
    "rank_climbers",
    "rank_fallers",
    "resolve_day",
    "score_momentum",
    "season_years",
    "seasonal_trends",
    "top_rated",
    "top_streaks",
    "trending",
]
