"""The alerts pages: rules with their preview, webhooks, the private feed and the delivery log.

As on the list pages, every form works without JavaScript: a POST changes one thing through alerts/services.py
and redirects back (post/redirect/get) with what happened as a message. Each person reaches only their own
rows: another's id answers 404, as if there were none.
"""

from __future__ import annotations

import copy
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.forms import Form
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST, require_safe

from alerts import delivery, services
from alerts.feeds import METRICS
from alerts.forms import THRESHOLD_HELP, EndpointForm, RuleForm
from alerts.models import AlertRule, Delivery, WebhookEndpoint
from snapshots.feeds import FEEDS
from snapshots.models import Anime

DELIVERIES_PER_PAGE = 50


@login_required
@require_safe
def rules(request: HttpRequest) -> HttpResponse:
    return _rules_page(request, EndpointForm())


def _rules_page(request: HttpRequest, endpoint_form: EndpointForm, status: int = 200) -> HttpResponse:
    me = _me(request)
    key = services.feed_key(user=me)
    context = {
        "rules": AlertRule.objects.filter(user=me).select_related("anime").prefetch_related("webhooks"),
        "endpoints": WebhookEndpoint.objects.filter(user=me),
        "endpoint_form": endpoint_form,
        "feed_url": request.build_absolute_uri(reverse("alerts:private-feed", args=[key.key])),
        "public_feeds": _public_feeds(),
    }
    return render(request, "alerts/rules.html", context, status=status)


def _public_feeds() -> list[tuple[str, str, list[tuple[str, str, str]]]]:
    """Each feed with the address of each of its public Atom feeds."""
    return [
        (
            name,
            feed.description,
            [(m, label, reverse("alerts:public-feed", args=[name, m])) for m, label in METRICS.items()],
        )
        for name, feed in FEEDS.items()
    ]


@login_required
def rule_new(request: HttpRequest) -> HttpResponse:
    initial: dict[str, Any] = {}
    mal_id = request.GET.get("anime", "")
    if mal_id.isdigit():
        initial = {"scope": AlertRule.Scope.TITLE, "anime": int(mal_id)}
    return _rule_page(request, None, initial)


@login_required
def rule_edit(request: HttpRequest, rule_id: int) -> HttpResponse:
    rule = get_object_or_404(AlertRule, pk=rule_id, user=_me(request))
    return _rule_page(request, rule, RuleForm.initial_for(rule))


def _rule_page(request: HttpRequest, rule: AlertRule | None, initial: dict[str, Any]) -> HttpResponse:
    """The rule form: "Preview" shows what the rule would have sent lately, "Save" saves it."""
    me = _me(request)
    form = RuleForm(request.POST if request.method == "POST" else None, initial=initial, user=me)
    preview = None
    if request.method == "POST" and form.is_valid():
        changes = form.changes()
        try:
            if "preview" in request.POST:
                preview = services.rule_preview(rule=_unsaved(me, rule, changes))
            else:
                saved = services.rule_save(user=me, changes=changes, rule=rule)
                messages.success(request, f"Saved: {saved.describe()}.")
                return redirect("alerts:rules")
        except ValidationError as exc:
            _add_errors(form, exc)
    context = {
        "form": form,
        "rule": rule,
        "preview": preview,
        "preview_days": services.PREVIEW_DAYS,
        "threshold_help": [(AlertRule.Kind(kind).label, text) for kind, text in THRESHOLD_HELP.items()],
    }
    return render(request, "alerts/rule_form.html", context, status=400 if form.errors else 200)


def _unsaved(me: User, rule: AlertRule | None, changes: dict[str, Any]) -> AlertRule:
    """The rule as the form has it, not saved: what a preview replays."""
    draft = copy.copy(rule) if rule is not None else AlertRule(user=me)
    for name, value in changes.items():
        if name != "webhooks":
            setattr(draft, name, value)
    return draft


def _add_errors(form: Form, exc: ValidationError) -> None:
    """A service's errors beside the fields they name (any other on top of the form)."""
    for name, problems in exc.message_dict.items():
        form.add_error(name if name in form.fields else None, problems)


@login_required
@require_POST
def rule_delete(request: HttpRequest, rule_id: int) -> HttpResponse:
    if not services.rule_delete(user=_me(request), rule_id=rule_id):
        raise Http404
    messages.success(request, "The rule is deleted.")
    return redirect("alerts:rules")


@login_required
@require_POST
def rule_toggle(request: HttpRequest, rule_id: int) -> HttpResponse:
    rule = get_object_or_404(AlertRule, pk=rule_id, user=_me(request))
    try:
        rule = services.rule_save(user=_me(request), changes={"active": not rule.active}, rule=rule)
    except ValidationError as exc:
        messages.error(request, f"{rule.describe()}: {' '.join(exc.messages)} Edit the rule to fix it.")
    else:
        messages.success(request, f"{'Active' if rule.active else 'Paused'}: {rule.describe()}.")
    return redirect("alerts:rules")


@login_required
@require_POST
def feed_reset(request: HttpRequest) -> HttpResponse:
    services.feed_key_reset(user=_me(request))
    messages.success(request, "Your private feed has a new URL; the old one no longer works.")
    return redirect("alerts:rules")


@login_required
@require_POST
def endpoint_new(request: HttpRequest) -> HttpResponse:
    form = EndpointForm(request.POST)
    if form.is_valid():
        try:
            endpoint = services.endpoint_save(user=_me(request), changes=form.cleaned_data)
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, f"Webhook “{endpoint.name}” added. Send it a test to check it.")
            return redirect(reverse("alerts:rules") + "#webhooks")
    return _rules_page(request, form, status=400)


@login_required
@require_POST
def endpoint_toggle(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = _endpoint(request, endpoint_id)
    try:
        services.endpoint_save(user=_me(request), changes={"active": not endpoint.active}, endpoint=endpoint)
    except ValidationError as exc:
        messages.error(request, f"Webhook “{endpoint.name}”: {' '.join(exc.messages)}")
    else:
        messages.success(request, f"Webhook “{endpoint.name}” {'enabled' if endpoint.active else 'disabled'}.")
    return redirect(reverse("alerts:rules") + "#webhooks")


@login_required
@require_POST
def endpoint_rotate(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = services.endpoint_rotate(endpoint=_endpoint(request, endpoint_id))
    messages.success(
        request, f"Webhook “{endpoint.name}” has a new secret; for a day, requests are signed with the old one too."
    )
    return redirect(reverse("alerts:rules") + "#webhooks")


@login_required
@require_POST
def endpoint_delete(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = _endpoint(request, endpoint_id)
    services.endpoint_delete(user=_me(request), endpoint_id=endpoint.pk)
    messages.success(request, f"Webhook “{endpoint.name}” deleted.")
    return redirect(reverse("alerts:rules") + "#webhooks")


@login_required
@require_POST
def endpoint_test(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    """Send one signed test message now and say how it went (it is in the delivery log too)."""
    endpoint = _endpoint(request, endpoint_id)
    sent = delivery.test_send(endpoint=endpoint)
    if sent.status == Delivery.Status.SENT:
        messages.success(request, f"Test sent to “{endpoint.name}”: the receiver answered {sent.response_code}.")
    else:
        messages.error(request, f"Test to “{endpoint.name}” failed: {sent.error}")
    return redirect(reverse("alerts:rules") + "#webhooks")


def _endpoint(request: HttpRequest, endpoint_id: int) -> WebhookEndpoint:
    return get_object_or_404(WebhookEndpoint, pk=endpoint_id, user=_me(request))


@login_required
@require_safe
def deliveries(request: HttpRequest) -> HttpResponse:
    rows = Delivery.objects.filter(user=_me(request)).select_related("endpoint", "event")
    page = Paginator(rows, DELIVERIES_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "alerts/deliveries.html", {"page": page})


@login_required
@require_POST
def follow(request: HttpRequest, mal_id: int) -> HttpResponse:
    anime = get_object_or_404(Anime, mal_id=mal_id)
    services.title_follow(user=_me(request), anime=anime)
    messages.success(
        request, f"Following {anime.title}: a daily digest when it climbs or falls 5 places or reaches its best."
    )
    return _back(request, anime)


@login_required
@require_POST
def unfollow(request: HttpRequest, mal_id: int) -> HttpResponse:
    anime = get_object_or_404(Anime, mal_id=mal_id)
    if services.title_unfollow(user=_me(request), anime=anime):
        messages.success(request, f"No more alerts on {anime.title}.")
    return _back(request, anime)


def _me(request: HttpRequest) -> User:
    """The signed-in person (these views are behind login_required)."""
    assert isinstance(request.user, User)
    return request.user


def _back(request: HttpRequest, anime: Anime) -> HttpResponse:
    """Back where the button was, when that is on this site; else to the title's page."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, require_https=request.is_secure()):
        return HttpResponseRedirect(target)
    return redirect("analytics:anime-detail", anime.mal_id)
