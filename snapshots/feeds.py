"""The Jikan queries AnimeDash snapshots every day, declared in code and sized by settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings


@dataclass(frozen=True)
class Feed:
    name: str
    path: str
    description: str
    default_pages: int | None  # None: every page Jikan has
    params: dict[str, str] = field(default_factory=dict)

    @property
    def pages(self) -> int | None:
        """The page budget: `FEED_PAGES_<NAME>` when set, else the default."""
        return settings.FEED_PAGES.get(self.name, self.default_pages)


FEEDS: dict[str, Feed] = {
    feed.name: feed
    for feed in [
        Feed("top", "/top/anime", "MAL rank by score", 4),
        Feed("airing", "/top/anime", "top currently airing", 2, {"filter": "airing"}),
        Feed("upcoming", "/top/anime", "most awaited, by members", 2, {"filter": "upcoming"}),
        Feed("popular", "/top/anime", "most members", 4, {"filter": "bypopularity"}),
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


def get_feed(name: str) -> Feed:
    try:
        return FEEDS[name]
    except KeyError:
        raise ValueError(f"unknown feed {name!r}; choose one of {', '.join(FEEDS)}") from None
