"""The Jikan queries AnimeDash snapshots every day, declared in code and sized by settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from django.conf import settings

# The Snapshot fields a feed can rank by: MAL's rank by score, MAL's rank by members, the place in the list.
RankBy = Literal["rank", "popularity", "position"]


@dataclass(frozen=True)
class Feed:
    name: str
    path: str
    description: str
    default_pages: int | None  # None: every page Jikan has
    params: dict[str, str] = field(default_factory=dict)
    # The feed rank: the Snapshot field the feed ranks by, which its trends (climbers, fallers, new
    # entries, streaks) compare. MAL's score rank is a fact of the title, the yardstick of `top` only.
    rank_by: RankBy = "position"

    @property
    def pages(self) -> int | None:
        """The page budget: `FEED_PAGES_<NAME>` when set, else the default."""
        return settings.FEED_PAGES.get(self.name, self.default_pages)


FEEDS: dict[str, Feed] = {
    feed.name: feed
    for feed in [
        Feed("top", "/top/anime", "MAL rank by score", 4, rank_by="rank"),
        Feed("airing", "/top/anime", "top currently airing", 2, {"filter": "airing"}),
        Feed("upcoming", "/top/anime", "most awaited, by members", 2, {"filter": "upcoming"}),
        Feed("popular", "/top/anime", "most members", 4, {"filter": "bypopularity"}, rank_by="popularity"),
        Feed("movies", "/top/anime", "top movies", 2, {"type": "movie"}),
        Feed("season", "/seasons/now", "this season, by members", None),
    ]
}

# What a page or an answer shows when no feed is named.
DEFAULT_FEED = "top"

# A safety net for feeds that follow `has_next_page` to the end: Jikan's paging has been seen to
# claim a next page forever (the episodes quirk), and the whole catalogue is about 1,100 pages.
MAX_PAGES = 2000


def feed_order(name: str) -> tuple[int, str]:
    """Sort key of feed names: the declared feeds in their order (top first), any other found in the data
    (a feed no longer declared) after them, by name."""
    names = list(FEEDS)
    return (names.index(name) if name in FEEDS else len(names), name)


def rank_by(name: str) -> RankBy:
    """The feed rank of a feed name; a feed found in the data but no longer declared has its position."""
    return FEEDS[name].rank_by if name in FEEDS else "position"


def get_feed(name: str) -> Feed:
    try:
        return FEEDS[name]
    except KeyError:
        raise ValueError(f"unknown feed {name!r}; choose one of {', '.join(FEEDS)}") from None
