"""Markup the page templates share: the trend tables (the only place they are drawn) and small formats."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.text import capfirst

register = template.Library()

# "{rank}" is the feed rank the table counts in (its envelope's `rank_by`), named as RANK_LABELS says.
TREND_TABLES: dict[str, dict[str, Any]] = {
    "climbers": {"label": "Climbers", "columns": ["{rank}", "Title", "Change", "Was", "Score"]},
    "fallers": {"label": "Fallers", "columns": ["{rank}", "Title", "Change", "Was", "Score"]},
    "momentum": {"label": "Score momentum", "columns": ["{rank}", "Title", "Score", "Change", "Was"]},
    "new_entries": {"label": "New entries", "columns": ["{rank}", "Title", "Entered on", "Best {rank}"]},
    "streaks": {"label": "Streaks", "columns": ["{rank}", "Title", "Days in top 10", "Since"]},
}
# What each feed rank (Feed.rank_by) is called on the pages.
RANK_LABELS = {"rank": "MAL rank", "popularity": "popularity", "position": "position"}


@register.inclusion_tag("analytics/_trend_table.html", takes_context=True)
def trend_table(context: template.Context, kind: str, envelope: dict[str, Any], caption: str = "") -> dict[str, Any]:
    """One trend list as a table, or its empty state.

    The first column is the feed rank; beside any feed rank but MAL's own, MAL's rank gets a column too.
    """
    spec = TREND_TABLES[kind]
    rank = rank_label(envelope["rank_by"])
    columns = [capfirst(column.format(rank=rank)) for column in spec["columns"]]
    show_mal_rank = envelope["rank_by"] != "rank"
    if show_mal_rank:
        columns.insert(2, RANK_LABELS["rank"])
    return {
        "kind": kind,
        "env": envelope,
        "columns": columns,
        "show_mal_rank": show_mal_rank,
        "caption": caption or spec["label"],
        "empty": empty_message(envelope, spec["label"]),
        "no_data": no_data(envelope),
        # Each row's quick control needs to know who is looking (tracking_tags.track_control).
        "request": context.get("request"),
        "csrf_token": context.get("csrf_token"),
    }


@register.filter
def rank_label(rank_by: str) -> str:
    """A feed rank (`rank_by`) in words: "MAL rank", "popularity" or "position"."""
    return RANK_LABELS[rank_by]


@register.filter
def no_data(envelope: dict[str, Any]) -> bool:
    """True when the feed has no snapshot at all yet (the answer is "run the ETL")."""
    short = envelope.get("insufficient_history")
    return bool(short and short["have_days"] == 0)


def empty_message(envelope: dict[str, Any], what: str) -> str:
    """What an empty list means and what to do about it ("" when there are rows)."""
    if envelope.get("results"):
        return ""
    short = envelope.get("insufficient_history")
    if short:
        days = short["available_in_days"]
        return (
            f"{what} will appear in {days} day{'s' if days != 1 else ''}: "
            f"they need {short['needed_days']} days of history and there are {short['have_days']} so far."
        )
    return f"Nothing to list for {what.lower()} on this day."


@register.filter
def initials(title: str) -> str:
    """Up to two initials of a title, for the cover placeholder."""
    words = [w for w in str(title).replace(":", " ").split() if w[:1].isalnum()]
    return "".join(w[0] for w in words[:2]).upper() or "?"


@register.filter
def abs_value(value: Any) -> Any:
    return abs(value) if value is not None else value


@register.filter
def thousands(value: Any) -> str:
    """12345 -> "12,345"; None -> an en dash, as the tables show a missing number."""
    if value is None or value == "":
        return "\u2013"
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return str(value)
