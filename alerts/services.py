"""Every write of the alerts app: rules, webhook endpoints, the private feed key, evaluation and the preview.

A broken rule raises django's ValidationError with a message per field, which forms show beside the field
and the API returns as a 400 naming it; nothing is written then.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from alerts import evaluation
from alerts.evaluation import DayFacts, Kind
from alerts.models import AlertEvent, AlertRule, AlertState, Delivery, FeedKey, WebhookEndpoint
from snapshots.feeds import FEEDS
from snapshots.models import Anime, SnapshotDay
from tracking.models import ListEntry, ListStatus

RULE_FIELDS = (
    "kind",
    "feed",
    "threshold",
    "window",
    "scope",
    "anime",
    "statuses",
    "email",
    "webhooks",
    "atom",
    "active",
)
# What evaluation reads of a rule: the condition, its scope and channels (who and where are read for those that fire).
EVALUATED_FIELDS = (
    "user_id",
    "kind",
    "feed",
    "threshold",
    "window",
    "scope",
    "anime_id",
    "statuses",
    "email",
    "evaluated_on",
)
RULES_MAX = 200
ENDPOINTS_MAX = 20
PREVIEW_DAYS = 30
# "Follow" on a title page: tell me when it climbs or falls 5 places in a week, or reaches its best place.
FOLLOW_RULES = ((Kind.CLIMBED, Decimal(5)), (Kind.FELL, Decimal(5)), (Kind.NEW_BEST, Decimal(1)))
FOLLOW_FEED = "top"


# Rules


def rule_save(*, user: User, changes: Mapping[str, Any], rule: AlertRule | None = None) -> AlertRule:
    """Create a rule (no `rule`) or change one of the person's own. `anime` is a MAL id; `webhooks` endpoint ids."""
    unknown = set(changes) - set(RULE_FIELDS)
    if unknown:
        raise ValidationError({name: "This field cannot be changed." for name in sorted(unknown)})
    if rule is None:
        if AlertRule.objects.filter(user=user).count() >= RULES_MAX:
            raise ValidationError({"kind": f"You have {RULES_MAX} rules, the most a person can keep."})
        rule = AlertRule(user=user)
    elif rule.user_id != user.pk:
        raise AlertRule.DoesNotExist
    changes = dict(changes)
    webhooks = changes.pop("webhooks", None)
    endpoints = _own_endpoints(user, webhooks) if webhooks is not None else None
    if "anime" in changes:
        changes["anime"] = _anime(changes["anime"])
    changed_condition = False
    for name, value in changes.items():
        if name in ("kind", "feed", "threshold", "window", "scope", "anime", "statuses"):
            changed_condition |= getattr(rule, name) != value
        setattr(rule, name, value)
    rule_check(rule)
    if changed_condition:
        # A new condition starts from the history again, like a new rule; what held before says nothing now.
        rule.evaluated_on = None
    with transaction.atomic():
        if rule.pk is None:
            rule.save()
        else:
            # Only what changed: an evaluation that ran since the rule was read keeps its day.
            fields = [name for name in RULE_FIELDS if name != "webhooks"] + ["evaluated_on"] * changed_condition
            rule.save(update_fields=fields)
        if changed_condition:
            rule.states.all().delete()
        if endpoints is not None:
            rule.webhooks.set(endpoints)
    return rule


def rule_check(rule: AlertRule) -> None:
    """Raise ValidationError naming each field that breaks a rule of rules."""
    errors: dict[str, str] = {}
    if rule.kind not in Kind.values:
        errors["kind"] = f"Pick one of: {', '.join(Kind.values)}."
    if rule.feed not in FEEDS:
        errors["feed"] = f"Pick one of: {', '.join(FEEDS)}."
    if rule.scope not in AlertRule.Scope.values:
        errors["scope"] = f"Pick one of: {', '.join(AlertRule.Scope.values)}."
    if rule.email not in AlertRule.Email.values:
        errors["email"] = f"Pick one of: {', '.join(AlertRule.Email.values)}."
    if rule.window not in (7, 30):
        errors["window"] = "Pick 7 or 30 days."
    threshold = _decimal(rule.threshold)
    if threshold is None:
        errors["threshold"] = "Enter a number."
    elif rule.kind == Kind.SCORE_MOVED:
        if not Decimal("0.01") <= threshold <= 10:
            errors["threshold"] = "Pick a score change from 0.01 to 10."
    elif rule.kind in (Kind.ENTERED_TOP, Kind.LEFT_TOP, Kind.CLIMBED, Kind.FELL):
        # 9999: the column holds numbers below 10000 (max_digits=6, decimal_places=2).
        if threshold != threshold.to_integral_value() or not 1 <= threshold <= 9999:
            errors["threshold"] = "Pick a whole number of places from 1 to 9999."
    elif rule.kind == Kind.NEW_BEST:
        threshold = Decimal(1)
    if threshold is not None and "threshold" not in errors:
        rule.threshold = threshold
    if rule.scope == AlertRule.Scope.TITLE and rule.anime_id is None and "anime" not in errors:
        errors["anime"] = "Pick the title this rule watches."
    if rule.scope != AlertRule.Scope.TITLE:
        rule.anime = None
    statuses = rule.statuses if isinstance(rule.statuses, list) else None
    if statuses is None or any(status not in ListStatus.values for status in statuses):
        errors["statuses"] = f"Pick statuses among: {', '.join(ListStatus.values)}."
    elif rule.scope != AlertRule.Scope.LIST:
        rule.statuses = []
    else:
        rule.statuses = sorted(set(statuses), key=ListStatus.values.index)
    if not isinstance(rule.atom, bool) or not isinstance(rule.active, bool):
        errors["atom" if not isinstance(rule.atom, bool) else "active"] = "Must be true or false."
    if errors:
        raise ValidationError(errors)


def rule_delete(*, user: User, rule_id: int) -> bool:
    return AlertRule.objects.filter(user=user, pk=rule_id).delete()[0] > 0


def title_follow(*, user: User, anime: Anime) -> list[AlertRule]:
    """The "Follow" button: rules on the title's climbs, falls and best place in the top feed, by daily digest."""
    existing = title_rules(user=user, anime=anime)
    if existing:
        return existing
    return [
        rule_save(
            user=user,
            changes={
                "kind": kind,
                "feed": FOLLOW_FEED,
                "threshold": threshold,
                "window": 7,
                "scope": "title",
                "anime": anime.pk,
                "email": AlertRule.Email.DIGEST,
            },
        )
        for kind, threshold in FOLLOW_RULES
    ]


def title_unfollow(*, user: User, anime: Anime) -> int:
    return AlertRule.objects.filter(user=user, scope=AlertRule.Scope.TITLE, anime=anime).delete()[0]


def title_rules(*, user: User, anime: Anime) -> list[AlertRule]:
    return list(AlertRule.objects.filter(user=user, scope=AlertRule.Scope.TITLE, anime=anime))


def _anime(value: Any) -> Anime | None:
    if value in (None, ""):
        return None
    if isinstance(value, Anime):
        return value
    try:
        return Anime.objects.get(pk=int(value))
    except (TypeError, ValueError, Anime.DoesNotExist):
        raise ValidationError({"anime": "No title with this MAL id is known here; open its page first."}) from None


def _own_endpoints(user: User, ids: Iterable[Any]) -> list[WebhookEndpoint]:
    try:
        wanted = {int(i.pk if isinstance(i, WebhookEndpoint) else i) for i in ids}
    except (TypeError, ValueError):
        raise ValidationError({"webhooks": "Give webhook ids."}) from None
    endpoints = list(WebhookEndpoint.objects.filter(user=user, pk__in=wanted))
    if len(endpoints) != len(wanted):
        raise ValidationError({"webhooks": "One of these webhooks is not yours or does not exist."})
    return endpoints


def _decimal(value: Any) -> Decimal | None:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


# Webhook endpoints and the private feed


def endpoint_save(
    *, user: User, changes: Mapping[str, Any], endpoint: WebhookEndpoint | None = None
) -> WebhookEndpoint:
    """Create or change a webhook endpoint; re-enabling one clears why it was disabled."""
    unknown = set(changes) - {"name", "url", "preset", "active"}
    if unknown:
        raise ValidationError({name: "This field cannot be changed." for name in sorted(unknown)})
    if endpoint is None:
        if WebhookEndpoint.objects.filter(user=user).count() >= ENDPOINTS_MAX:
            raise ValidationError({"url": f"You have {ENDPOINTS_MAX} webhooks, the most a person can keep."})
        endpoint = WebhookEndpoint(user=user)
    for name, value in changes.items():
        setattr(endpoint, name, value)
    if changes.get("active"):
        endpoint.disabled_reason = ""
    endpoint.full_clean(exclude=["user"])
    from alerts.delivery import url_problem

    problem = url_problem(endpoint.url)
    if problem:
        raise ValidationError({"url": problem})
    endpoint.save()
    return endpoint


def endpoint_delete(*, user: User, endpoint_id: int) -> bool:
    return WebhookEndpoint.objects.filter(user=user, pk=endpoint_id).delete()[0] > 0


def endpoint_rotate(*, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    from alerts.models import webhook_secret_new

    endpoint.previous_secret = endpoint.secret
    endpoint.secret = webhook_secret_new()
    endpoint.rotated_at = timezone.now()
    endpoint.save(update_fields=["secret", "previous_secret", "rotated_at"])
    return endpoint


def feed_key(*, user: User) -> FeedKey:
    return FeedKey.objects.get_or_create(user=user)[0]


def feed_key_reset(*, user: User) -> FeedKey:
    from alerts.models import feed_key_new

    key = feed_key(user=user)
    key.key = feed_key_new()
    key.save(update_fields=["key"])
    return key


# Evaluation


@dataclass(frozen=True)
class Evaluation:
    feed: str
    day: dt.date
    rules: int
    events: int
    deliveries: int


def rules_evaluate(*, feed: str, day: dt.date) -> Evaluation:
    """Fire the feed's active rules on a committed snapshot day, in a fixed number of queries.

    Each (rule, title, day) fires at most once: a re-run of the day, or a redelivered task, finds the rules
    already evaluated on it (and the events' unique constraint backs that up).
    """
    rules = list(
        AlertRule.objects.filter(feed=feed, active=True)
        .filter(Q(evaluated_on__isnull=True) | Q(evaluated_on__lt=day))
        .only(*EVALUATED_FIELDS)
    )
    if not rules:
        return Evaluation(feed, day, 0, 0, 0)
    facts = _facts(feed, day, rules)
    lists = _list_titles(rules)
    scopes = {rule.pk: _scope_titles(rule, lists) for rule in rules}
    joined = {rule.pk: _joined(rule, scopes[rule.pk], lists) for rule in rules if rule.evaluated_on is not None}
    # New rules, and titles that joined a "my list" rule since it last ran, take what held before from the history.
    looking_back = [rule for rule in rules if rule.evaluated_on is None or joined.get(rule.pk)]
    previous_day = evaluation.day_before(feed, day) if looking_back else None
    previous = _facts(feed, previous_day, looking_back) if previous_day else None
    states: dict[int, dict[int, int]] = defaultdict(dict)
    for state_id, rule_id, anime_id in AlertState.objects.filter(rule__feed=feed, rule__active=True).values_list(
        "id", "rule_id", "anime_id"
    ):
        states[rule_id][anime_id] = state_id
    done = set(AlertEvent.objects.filter(rule__feed=feed, day=day).values_list("rule_id", "anime_id"))

    state_drop: list[int] = []
    state_add: list[AlertState] = []
    firing: list[tuple[AlertRule, int]] = []
    memo: dict[tuple[Any, ...], set[int]] = {}
    for rule in rules:
        titles = scopes[rule.pk]
        now = _holding(rule, facts, titles, memo, "now")
        kept = states.get(rule.pk, {})
        if rule.evaluated_on is None:
            before = _holding(rule, previous, titles, memo, "before") if previous else set()
        else:
            before = set(kept) if titles is None else set(kept) & titles
            fresh = joined.get(rule.pk)
            if fresh:
                held = evaluation.holding(rule, previous, fresh) if previous else set()
                before = (before - fresh) | held
        firing.extend(
            (rule, anime_id) for anime_id in evaluation.fired(rule, before, now) if (rule.pk, anime_id) not in done
        )
        state_drop.extend(state_id for anime_id, state_id in kept.items() if anime_id not in now)
        state_add.extend(AlertState(rule=rule, anime_id=anime_id, since=day) for anime_id in now - kept.keys())

    titles_by_id = dict(Anime.objects.filter(pk__in={anime_id for _, anime_id in firing}).values_list("pk", "title"))
    events = []
    for rule, anime_id in firing:
        data = evaluation.event_data(rule, facts, anime_id)
        data.update(mal_id=anime_id, title=titles_by_id.get(anime_id, str(anime_id)), kind=rule.kind)
        message = evaluation.event_message(rule, str(data["title"]), data)
        events.append(AlertEvent(rule=rule, anime_id=anime_id, day=day, data=data, message=message[:500]))
    channels = _channels({rule for rule, _ in firing})
    with transaction.atomic():
        AlertState.objects.filter(pk__in=state_drop).delete()
        AlertState.objects.bulk_create(state_add, batch_size=5000)
        AlertEvent.objects.bulk_create(events, batch_size=2000)
        deliveries = [delivery for event in events for delivery in _deliveries(event, channels)]
        Delivery.objects.bulk_create(deliveries, batch_size=2000)
        AlertRule.objects.filter(pk__in=[rule.pk for rule in rules]).update(evaluated_on=day)
    return Evaluation(feed, day, len(rules), len(events), len(deliveries))


def _facts(feed: str, day: dt.date, rules: list[AlertRule]) -> DayFacts:
    windows = {rule.window for rule in rules if rule.kind in evaluation.WINDOWED}
    best = any(rule.kind == Kind.NEW_BEST for rule in rules)
    return evaluation.facts_for(feed, day, windows=windows, best=best)


@dataclass(frozen=True)
class Lists:
    """The lists of the people with a "my list" rule: titles by status, and the day each entry last changed."""

    titles: dict[int, dict[str, set[int]]]
    changed_on: dict[int, dict[int, dt.date]]


def _list_titles(rules: list[AlertRule]) -> Lists:
    """Per person with a "my list" rule, their titles by status (one query for all of them)."""
    people = {rule.user_id for rule in rules if rule.scope == AlertRule.Scope.LIST}
    lists = Lists(defaultdict(lambda: defaultdict(set)), defaultdict(dict))
    if people:
        for user_id, anime_id, status, updated_at in ListEntry.objects.filter(user_id__in=people).values_list(
            "user_id", "anime_id", "status", "updated_at"
        ):
            lists.titles[user_id][status].add(anime_id)
            lists.changed_on[user_id][anime_id] = updated_at.date()
    return lists


def _joined(rule: AlertRule, titles: set[int] | None, lists: Lists) -> set[int]:
    """The titles of a "my list" rule whose entry changed since the rule's last evaluated day: they may have
    joined its scope since, so, as for a new rule, what held before them comes from the history. A title put
    on the list while in the top 10 has not entered the top 10."""
    if rule.scope != AlertRule.Scope.LIST or not titles or rule.evaluated_on is None:
        return set()
    changed_on = lists.changed_on.get(rule.user_id, {})
    return {anime_id for anime_id in titles if changed_on.get(anime_id, dt.date.min) >= rule.evaluated_on}


def _scope_titles(rule: AlertRule, lists: Lists) -> set[int] | None:
    """The titles a rule watches; None for the whole feed."""
    if rule.scope == AlertRule.Scope.TITLE:
        return {rule.anime_id} if rule.anime_id else set()
    if rule.scope == AlertRule.Scope.LIST:
        by_status = lists.titles.get(rule.user_id, {})
        statuses = rule.statuses or ListStatus.values
        return set().union(*(by_status.get(status, set()) for status in statuses))
    return None


def _holding(
    rule: AlertRule, facts: DayFacts, titles: set[int] | None, memo: dict[tuple[Any, ...], set[int]], tag: str
) -> set[int]:
    if titles is not None:
        return evaluation.holding(rule, facts, titles)
    # Whole-feed rules with the same condition share one pass over the feed.
    key = (tag, rule.kind, rule.threshold, rule.window)
    if key not in memo:
        memo[key] = evaluation.holding(rule, facts, None)
    return memo[key]


@dataclass(frozen=True)
class Channels:
    """Where the firing rules send: each person's e-mail address and each rule's active webhooks."""

    emails: dict[int, str]
    webhooks: dict[int, list[int]]


def _channels(rules: set[AlertRule]) -> Channels:
    """Two queries for all the rules that fire, however many they are."""
    if not rules:
        return Channels({}, {})
    emails = dict(User.objects.filter(pk__in={rule.user_id for rule in rules}).values_list("pk", "email"))
    links = AlertRule.webhooks.through.objects.filter(
        alertrule_id__in=[rule.pk for rule in rules], webhookendpoint__active=True
    )
    webhooks: dict[int, list[int]] = defaultdict(list)
    for rule_id, endpoint_id in links.values_list("alertrule_id", "webhookendpoint_id"):
        webhooks[rule_id].append(endpoint_id)
    return Channels(emails, webhooks)


def _deliveries(event: AlertEvent, channels: Channels) -> list[Delivery]:
    rule = event.rule
    rows = []
    if rule.email != AlertRule.Email.OFF and channels.emails.get(rule.user_id):
        channel = Delivery.Channel.DIGEST if rule.email == AlertRule.Email.DIGEST else Delivery.Channel.EMAIL
        rows.append(Delivery(user_id=rule.user_id, event=event, channel=channel))
    rows.extend(
        Delivery(user_id=rule.user_id, event=event, channel=Delivery.Channel.WEBHOOK, endpoint_id=endpoint_id)
        for endpoint_id in channels.webhooks.get(rule.pk, [])
    )
    return rows


# Preview


@dataclass(frozen=True)
class PreviewEvent:
    day: dt.date
    mal_id: int
    title: str
    message: str


def rule_preview(*, rule: AlertRule, days: int = PREVIEW_DAYS) -> list[PreviewEvent]:
    """What the rule (saved or not) would have sent over the feed's last `days` days, newest first.

    It replays evaluation day by day: a rule created before those days and evaluated after each snapshot
    sends exactly these events.
    """
    rule_check(rule)
    end = SnapshotDay.objects.filter(feed=rule.feed).aggregate(day=Max("taken_on"))["day"]
    if end is None:
        return []
    lists = _list_titles([rule])
    titles = _scope_titles(rule, lists)
    days_in = evaluation.days_between(rule.feed, end - dt.timedelta(days=days - 1), end)
    first_before = evaluation.day_before(rule.feed, days_in[0])
    before = evaluation.holding(rule, _facts(rule.feed, first_before, [rule]), titles) if first_before else set()
    found: list[tuple[dt.date, int, dict[str, Any]]] = []
    for day in days_in:
        facts = _facts(rule.feed, day, [rule])
        now = evaluation.holding(rule, facts, titles)
        found.extend(
            (day, anime_id, evaluation.event_data(rule, facts, anime_id))
            for anime_id in evaluation.fired(rule, before, now)
        )
        before = now
    names = dict(Anime.objects.filter(pk__in={anime_id for _, anime_id, _ in found}).values_list("pk", "title"))
    events = [
        PreviewEvent(
            day,
            anime_id,
            names.get(anime_id, str(anime_id)),
            evaluation.event_message(rule, names.get(anime_id, str(anime_id)), data),
        )
        for day, anime_id, data in found
    ]
    return sorted(events, key=lambda e: (e.day, e.mal_id), reverse=True)
