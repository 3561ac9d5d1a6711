"""The deployment files in deploy/: they parse, validate, and watch metrics the app really exports.

Offline and fast: promtool comes from Debian's prometheus package (`make tools`), the Kubernetes
schemas from the kubernetes-validate package. No Docker engine is needed: the compose file and the
Dockerfile are checked for their structure, not run.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.db import DatabaseError, connection, transaction
from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from kubernetes_validate import utils as kubernetes_validate
from prometheus_client import generate_latest
from prometheus_client.metrics import MetricWrapperBase

from analytics import cache as analytics_cache
from snapshots import jikan, services
from snapshots import metrics as etl_metrics
from snapshots.feeds import FEEDS

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
RULES = PROMETHEUS / "rules" / "animedash.rules.yml"
RULE_TESTS = sorted((PROMETHEUS / "tests").glob("*.yml"))
DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))
COMPOSE = DEPLOY / "docker-compose.yml"
K8S = DEPLOY / "k8s"
RUNBOOKS = DEPLOY / "docs" / "runbooks.md"
SLO = DEPLOY / "docs" / "slo.md"
KUBERNETES_VERSION = "1.33.0"
PROBE_VIEWS = 'view!~"healthz|readyz"'
# Where Prometheus scrapes each process: ports of their own, never the public app's 8000.
WEB_METRICS_PORT = 9807
WORKER_METRICS_PORT = 9808

# Metrics that come from Prometheus itself or from the exporters, not from the app: only the names the
# rules and dashboards use, so each one here is a deliberate choice (checked: every entry is used).
EXPORTER_METRICS = {
    # Prometheus, for every scrape target
    "up",
    # postgres_exporter
    "pg_up",
    "pg_stat_activity_count",
    "pg_stat_activity_max_tx_duration",
    "pg_settings_max_connections",
    "pg_stat_database_xact_commit",
    "pg_stat_database_xact_rollback",
    "pg_stat_database_blks_hit",
    "pg_stat_database_blks_read",
    "pg_stat_database_deadlocks",
    "pg_database_size_bytes",
    "pg_locks_count",
    # redis_exporter
    "redis_up",
    "redis_uptime_in_seconds",
    "redis_memory_used_bytes",
    "redis_memory_max_bytes",
    "redis_connected_clients",
    "redis_blocked_clients",
    "redis_commands_processed_total",
    "redis_keyspace_hits_total",
    "redis_keyspace_misses_total",
    "redis_evicted_keys_total",
    "redis_db_keys",
}

EXPECTED_ALERTS = {
    "AnimeDashHighErrorRate",
    "AnimeDashHighLatency",
    "AnimeDashCacheHitRatioLow",
    "AnimeDashEtlFeedFailing",
    "AnimeDashEtlDataStale",
    "AnimeDashEtlNeverSucceeded",
    "AnimeDashJikanRateLimited",
    "AnimeDashJikanCircuitOpen",
    "AnimeDashTargetDown",
    "AnimeDashPostgresDown",
    "AnimeDashRedisDown",
}


# --- helpers ---------------------------------------------------------------------------------------


def _yaml(file: Path) -> Any:
    return yaml.safe_load(file.read_text())


def _promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is missing: run `make tools` (installs Debian's prometheus package)")
    return subprocess.run([promtool, *map(str, args)], capture_output=True, text=True, timeout=60, check=False)


def _alert_rules() -> list[dict[str, Any]]:
    return [rule for group in _yaml(RULES)["groups"] for rule in group["rules"] if "alert" in rule]


def _dashboard_queries() -> Iterator[tuple[str, str]]:
    """(where, PromQL) for every Prometheus query of every dashboard: panel targets and variables."""
    for file in DASHBOARDS:
        dashboard = json.loads(file.read_text())
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                uid = (target.get("datasource") or panel.get("datasource") or {}).get("uid")
                if uid == "prometheus":
                    yield f"{file.name}: {panel['title']}", target["expr"]
        for variable in dashboard["templating"]["list"]:
            if variable.get("type") == "query":
                match = re.fullmatch(r"label_values\((?:(.+),\s*)?\w+\)", variable["definition"])
                assert match, f"{file.name}: unexpected variable query {variable['definition']}"
                if match.group(1):
                    yield f"{file.name}: ${variable['name']}", match.group(1)


def _slo_queries() -> list[str]:
    return re.findall(r"```promql\n(.*?)```", SLO.read_text(), flags=re.DOTALL)


PROMQL_WORDS = {
    # keywords and modifiers
    *("by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool"),
    *("and", "or", "unless", "atan2", "inf", "nan", "start", "end"),
}
_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w:.$])([A-Za-z_:][\w:]*)(\s*\()?")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, keywords and label names left out)."""
    text = _STRING.sub('""', expr)
    text = re.sub(r"\$\{?\w+\}?", " ", text)  # Grafana variables such as $__rate_interval
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges and subqueries
    text = _GROUPING.sub(" ", text)  # by (le), on (feed), group_left (...)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        name, call = match.groups()
        if not call and name.lower() not in PROMQL_WORDS:
            names.add(name)
    return names


def _family_names(name: str, kind: str) -> set[str]:
    """Sample names of a metric family as the text exposition writes them."""
    suffixes = {
        "counter": ("_total", "_created"),
        "gauge": ("",),
        "histogram": ("_bucket", "_count", "_sum", "_created"),
        "summary": ("", "_count", "_sum", "_created"),
    }[kind]
    return {name + suffix for suffix in suffixes}


def _worker_metric_names() -> set[str]:
    """Every metric the worker process can export, declared in snapshots.jikan and snapshots.metrics."""
    names: set[str] = set()
    families = [family for family in etl_metrics.EtlFactsCollector().describe()]
    for module in (jikan, etl_metrics):
        for value in vars(module).values():
            if isinstance(value, MetricWrapperBase):
                families.extend(value.describe())
    for family in families:
        names |= _family_names(family.name, family.type)
    return names


class _BrokenCache:
    def get(self, *args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("the cache is down")


def _boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("a view that fails, so the exception counters have a series")


urlpatterns = [path("deploy-test-boom", _boom), path("", include("animedash.urls"))]


@pytest.fixture
def live_metric_names(client, etl, settings, monkeypatch) -> set[str]:
    """Sample names of this process's metrics (what its metrics port serves) after API calls, an ETL run,
    a cache outage, a failing query and a 500: labelled series exist only once something was counted."""
    services.feed_snapshot(feed="top", taken_on=dt.date(2024, 5, 1))
    for url in ("/", "/api/v1/overview", "/api/v1/top-rated", "/api/v1/top-rated", "/healthz", "/readyz", "/nope"):
        client.get(url)
    # A cache failure makes the cache skip itself for a while: monkeypatch restores the skip deadline.
    monkeypatch.setattr(analytics_cache, "_skip_until", 0.0)
    monkeypatch.setattr(analytics_cache, "cache", _BrokenCache())
    assert analytics_cache.cached("deploy-test", {}, lambda: 1) == 1
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT * FROM deploy_test_no_such_table")
    settings.ROOT_URLCONF = __name__
    client.raise_request_exception = False
    assert client.get("/deploy-test-boom").status_code == 500
    body = generate_latest().decode()
    return {line.split("{")[0].split(" ")[0] for line in body.splitlines() if line and not line.startswith("#")}


# --- PromQL names ----------------------------------------------------------------------------------


def test_metric_names_parses_selectors_not_functions_labels_or_keywords():
    expr = (
        'sum by (le) (rate(django_x_bucket{view!~"a|b", le="0.5"}[5m])) / on (feed) group_left (x) etl_y'
        " > bool 26 * 3600 or vector(0) unless max_over_time(jikan_z[$__rate_interval:1m] offset 1h)"
        ' and histogram_quantile(0.95, up) or label_replace(pg_up, "a", "$1", "b", "(.*)")'
    )
    assert metric_names(expr) == {"django_x_bucket", "etl_y", "jikan_z", "up", "pg_up"}


@pytest.mark.django_db
def test_rules_dashboards_and_slos_name_only_metrics_that_exist(live_metric_names):
    app_metrics = live_metric_names | _worker_metric_names()
    assert {"django_http_responses_total_by_status_view_method_total", "analytics_cache_hits_total"} <= app_metrics
    assert {"jikan_rate_limited_total", "jikan_circuit_open", "etl_runs_total"} <= app_metrics
    assert not app_metrics & EXPORTER_METRICS - {"up"}, "an exporter name is also an app name"
    known = app_metrics | EXPORTER_METRICS
    queries = [(f"rule {rule['alert']}", rule["expr"]) for rule in _alert_rules()]
    queries += list(_dashboard_queries())
    queries += [("slo.md", expr) for expr in _slo_queries()]
    used: set[str] = set()
    unknown = []
    for where, expr in queries:
        names = metric_names(expr)
        used |= names
        unknown += [f"{where}: {name}" for name in sorted(names - known)]
    assert not unknown, "metrics nobody exports:\n" + "\n".join(unknown)
    assert not EXPORTER_METRICS - used, "allow-listed but unused: keep the list small"


# --- Prometheus ------------------------------------------------------------------------------------


def test_prometheus_config_and_its_rule_files_are_valid():
    result = _promtool("check", "config", PROMETHEUS / "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "rules/animedash.rules.yml" in result.stdout + result.stderr, "the config must load the rules"


def test_alert_rules_are_valid():
    result = _promtool("check", "rules", RULES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rule_unit_tests_pass():
    assert RULE_TESTS
    result = _promtool("test", "rules", *RULE_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_slo_queries_are_valid_promql(tmp_path):
    queries = _slo_queries()
    assert len(queries) == 4
    rules = {"groups": [{"name": "slo", "rules": [{"record": f"slo:{i}", "expr": q} for i, q in enumerate(queries)]}]}
    file = tmp_path / "slo.rules.yml"
    file.write_text(yaml.safe_dump(rules))
    result = _promtool("check", "rules", file)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_fires_and_stays_quiet_in_a_unit_test():
    fires, quiet = set(), set()
    for file in RULE_TESTS:
        for case in _yaml(file)["tests"]:
            for check in case["alert_rule_test"]:
                (fires if check["exp_alerts"] else quiet).add(check["alertname"])
    alerts = {rule["alert"] for rule in _alert_rules()}
    assert alerts >= EXPECTED_ALERTS
    assert alerts - fires == set(), "alerts no test makes fire"
    assert alerts - quiet == set(), "alerts no test keeps quiet"


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+\s+(.+)$", markdown, flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings}


def test_every_alert_has_a_severity_annotations_and_a_runbook_section():
    anchors = _anchors(RUNBOOKS.read_text())
    for rule in _alert_rules():
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        annotations = rule["annotations"]
        assert annotations["summary"], rule["alert"]
        assert annotations["description"], rule["alert"]
        url, _, anchor = annotations["runbook_url"].partition("#")
        assert re.fullmatch(r"https://\S+/deploy/docs/runbooks\.md", url), rule["alert"]
        assert anchor in anchors, f"{rule['alert']}: no section #{anchor} in runbooks.md"


def test_alerts_watch_what_the_slos_promise():
    expressions = {rule["alert"]: " ".join(rule["expr"].split()) for rule in _alert_rules()}
    durations = {rule["alert"]: rule.get("for") for rule in _alert_rules()}
    assert "> 0.01" in expressions["AnimeDashHighErrorRate"]
    assert durations["AnimeDashHighErrorRate"] == "5m"
    assert "histogram_quantile(0.95" in expressions["AnimeDashHighLatency"]
    assert expressions["AnimeDashHighLatency"].endswith("> 0.8")
    assert durations["AnimeDashHighLatency"] == "5m"
    assert "< 0.7" in expressions["AnimeDashCacheHitRatioLow"]
    assert durations["AnimeDashCacheHitRatioLow"] == "15m"
    assert expressions["AnimeDashEtlFeedFailing"].endswith("etl_consecutive_failures) >= 2")
    assert expressions["AnimeDashEtlDataStale"].endswith("etl_data_age_seconds) > 26 * 3600")
    assert durations["AnimeDashEtlNeverSucceeded"] == "26h"
    assert "rate(jikan_rate_limited_total[15m])" in expressions["AnimeDashJikanRateLimited"]
    assert expressions["AnimeDashJikanCircuitOpen"].endswith("== 1")
    assert durations["AnimeDashJikanCircuitOpen"] == "2m"
    assert expressions["AnimeDashTargetDown"] == "up == 0"
    assert durations["AnimeDashTargetDown"] == "2m"
    for name in ("AnimeDashHighErrorRate", "AnimeDashHighLatency"):
        assert PROBE_VIEWS in expressions[name], f"{name} must leave probes and scrapes out"


def test_prometheus_scrapes_web_worker_and_exporters_and_sends_to_alertmanager():
    config = _yaml(PROMETHEUS / "prometheus.yml")
    targets = {
        job["job_name"]: [t for static in job["static_configs"] for t in static["targets"]]
        for job in config["scrape_configs"]
    }
    assert targets["web"] == [f"web:{WEB_METRICS_PORT}"]
    assert targets["worker"] == [f"worker:{WORKER_METRICS_PORT}"]
    assert all(job.get("metrics_path", "/metrics") == "/metrics" for job in config["scrape_configs"])
    assert targets["postgres"] == ["postgres-exporter:9187"]
    assert targets["redis"] == ["redis-exporter:9121"]
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]
    assert config["rule_files"] == ["rules/*.yml"]


# --- Alertmanager ----------------------------------------------------------------------------------


def test_alertmanager_routes_critical_to_slack_and_email_and_warnings_to_email():
    text = (DEPLOY / "alertmanager" / "alertmanager.yml").read_text()
    config = yaml.safe_load(text)
    receivers = {receiver["name"]: receiver for receiver in config["receivers"]}
    routes = {route["matchers"][0]: receivers[route["receiver"]] for route in config["route"]["routes"]}
    critical, warning = routes['severity="critical"'], routes['severity="warning"']
    assert critical.get("slack_configs")
    assert critical.get("email_configs")
    assert warning.get("email_configs")
    assert not warning.get("slack_configs")
    assert config["global"]["slack_api_url_file"].startswith("/run/secrets/")
    for receiver in receivers.values():
        for email in receiver.get("email_configs", []):
            assert email["auth_password_file"].startswith("/run/secrets/")
    assert not re.search(r"(api_url|auth_password|auth_secret):", text), "secrets only as *_file"
    assert "hooks.slack.com" not in text


# --- Grafana, Loki, promtail -----------------------------------------------------------------------


def test_grafana_provisions_prometheus_loki_and_the_dashboards_folder():
    datasources = {
        ds["uid"]: ds
        for file in (DEPLOY / "grafana/provisioning/datasources").glob("*.yml")
        for ds in _yaml(file)["datasources"]
    }
    assert datasources["prometheus"]["type"] == "prometheus"
    assert datasources["prometheus"]["url"] == "http://prometheus:9090"
    assert datasources["loki"]["type"] == "loki"
    assert datasources["loki"]["url"] == "http://loki:3100"
    (provider,) = _yaml(DEPLOY / "grafana/provisioning/dashboards/dashboards.yml")["providers"]
    compose = _yaml(COMPOSE)["services"]["grafana"]["volumes"]
    assert f"./grafana/dashboards:{provider['options']['path']}:ro" in compose


def test_dashboards_cover_the_application_the_etl_and_the_data_stores():
    exprs: dict[str, str] = {}
    uids = set()
    for file in DASHBOARDS:
        dashboard = json.loads(file.read_text())
        uids.add(dashboard["uid"])
        for panel in dashboard["panels"]:
            assert (panel.get("datasource") or {}).get("uid") in {None, "prometheus", "loki"}, panel["title"]
            assert panel["type"] == "row" or panel.get("targets"), f"{file.name}: {panel['title']} has no query"
        exprs[file.stem] = " ".join(t["expr"] for p in dashboard["panels"] for t in p.get("targets", []))
    assert len(uids) == len(DASHBOARDS) == 3
    app, etl, data = exprs["animedash-application"], exprs["animedash-etl-jikan"], exprs["animedash-database-redis"]
    for needle in ("django_http_requests_total_by_view_transport_method_total", 'status=~"5.."'):
        assert needle in app
    assert "histogram_quantile(0.50" in app
    assert "histogram_quantile(0.95" in app
    assert "analytics_cache_hits_total" in app
    for needle in ("etl_runs_total", 'outcome="rejected"', "etl_items_total", "etl_data_age_seconds"):
        assert needle in etl
    assert "sum by (origin) (increase(jikan_rate_limited_total" in etl
    assert "jikan_circuit_open" in etl
    assert "pg_up" in data
    assert "redis_up" in data


def test_loki_and_promtail_configs_parse_and_ship_to_loki():
    loki = _yaml(DEPLOY / "loki" / "loki.yml")
    assert loki["server"]["http_listen_port"] == 3100
    promtail = _yaml(DEPLOY / "promtail" / "promtail.yml")
    assert promtail["clients"] == [{"url": "http://loki:3100/loki/api/v1/push"}]
    assert promtail["scrape_configs"][0]["docker_sd_configs"][0]["host"] == "unix:///var/run/docker.sock"


# --- docker compose --------------------------------------------------------------------------------

CORE = {"postgres", "redis", "migrate", "web", "worker", "beat"}


def test_compose_services_all_have_a_healthcheck_and_a_profile():
    services_ = _yaml(COMPOSE)["services"]
    assert set(services_) >= CORE | {
        *("prometheus", "alertmanager", "grafana", "loki", "promtail", "postgres-exporter", "redis-exporter"),
    }
    for name, service in services_.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        expected = "core" if name in CORE else "observability"
        assert service.get("profiles") == [expected], f"{name} should be in profile {expected}"


def test_compose_starts_web_after_the_migrate_one_shot_and_uses_named_volumes():
    compose = _yaml(COMPOSE)
    services_ = compose["services"]
    for name in ("web", "worker", "beat"):
        assert services_[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert services_["migrate"]["command"] == ["/app/deploy/release"]
    for service in services_.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert source.startswith(".") or source.startswith("/var/run/") or source in compose["volumes"], volume


def test_compose_shares_the_open_data_dumps_written_by_the_worker_with_web_read_only():
    compose = _yaml(COMPOSE)
    services_ = compose["services"]
    assert "exports" in compose["volumes"]
    # The worker runs the nightly dump (Celery); beat only schedules it.
    assert "exports:/app/exports" in services_["worker"]["volumes"]
    assert "exports:/app/exports:ro" in services_["web"]["volumes"]
    assert _compose_env("worker")["EXPORT_DIR"] == "/app/exports"


def test_compose_serves_metrics_on_their_own_ports_and_publishes_only_the_app():
    services_ = _yaml(COMPOSE)["services"]
    assert services_["web"]["environment"]["WEB_METRICS_PORT"] == str(WEB_METRICS_PORT)
    assert services_["worker"]["environment"]["CELERY_METRICS_PORT"] == str(WORKER_METRICS_PORT)
    published = [port for service in services_.values() for port in service.get("ports", [])]
    assert services_["web"]["ports"] == ["127.0.0.1:${WEB_PORT:-8000}:8000"]
    assert not [port for port in published if re.search(rf":({WEB_METRICS_PORT}|{WORKER_METRICS_PORT})$", port)]


def test_compose_holds_no_secret_values():
    text = COMPOSE.read_text()
    for key, value in re.findall(
        r"^\s*([A-Z_]*(?:PASSWORD|SECRET|TOKEN|PASS|KEY)[A-Z_]*):\s*(.+)$", text, re.MULTILINE
    ):
        assert value.strip().startswith("${"), f"{key} must come from deploy/.env"
    for url in re.findall(r"\w+://\S+", text):
        assert "@" not in url or "${POSTGRES_PASSWORD" in url, f"credentials in {url}"
    assert "hooks.slack.com" not in text


def _settings_variables() -> set[str]:
    """Every environment variable animedash/settings.py reads, FEED_PAGES_<FEED> spelled out per feed."""
    text = (ROOT / "animedash" / "settings.py").read_text()
    names = set(re.findall(r'env_\w+\(\s*"([A-Z][A-Z0-9_]+)"', text))
    assert 'f"FEED_PAGES_{name.upper()}"' in text
    return names | {f"FEED_PAGES_{feed.upper()}" for feed in FEEDS}


def test_env_example_lists_every_variable_of_compose_and_settings():
    example = (DEPLOY / ".env.example").read_text()
    listed = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", example, flags=re.MULTILINE))
    compose_vars = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", COMPOSE.read_text()))
    settings_vars = _settings_variables()
    # Set by docker-compose.yml itself (the PostgreSQL/Redis containers, each process's metrics port) or
    # by the image (STATIC_ROOT); FEED_PAGES_SEASON is left unset on purpose (every page of the season).
    derived = {
        *("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_METRICS_PORT", "WEB_METRICS_PORT"),
        *("STATIC_ROOT", "FEED_PAGES_SEASON"),
    }
    assert compose_vars - listed == set()
    assert settings_vars - derived - listed == set()
    # And the other way: nothing listed that no one reads (the start scripts read the gunicorn and Celery knobs).
    scripts_vars = {
        name for script in DEPLOY.glob("start-*") for name in re.findall(r"\$\{([A-Z][A-Z0-9_]*)", script.read_text())
    }
    assert listed - compose_vars - settings_vars - scripts_vars == set()
    assert not (DEPLOY / ".env").exists() or ".env" in (ROOT / ".gitignore").read_text().split()


# Keys the compose stack and Kubernetes set differently on purpose (deploy/k8s/configmap.yaml says why).
ENV_DIFFERENCES = {
    # compose only: the stack's own image tag, published port and containers
    *("ANIMEDASH_VERSION", "WEB_PORT", "POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB", "REDIS_MAXMEMORY"),
    *("PROMETHEUS_RETENTION", "GRAFANA_ADMIN_USER", "GRAFANA_ADMIN_PASSWORD"),
    # Kubernetes keeps these in the Secret animedash-secrets, never committed
    *("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "EMAIL_URL"),
    # host names: compose adds localhost for its health checks, Kubernetes the pod's IP for the kubelet
    *("ALLOWED_HOSTS", "PUBLIC_HOSTS", "POD_IP"),
}


def _compose_env(service: str) -> dict[str, str]:
    """A compose service's environment: deploy/.env (its env_file, as .env.example has it) under its `environment`."""
    env = dict(
        line.split("=", 1)
        for line in (DEPLOY / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    definition = _yaml(COMPOSE)["services"][service]
    assert definition["env_file"] == ".env"
    return env | {key: str(value) for key, value in definition.get("environment", {}).items()}


def _k8s_env(workload: str) -> dict[str, str]:
    """A Kubernetes workload's environment: the ConfigMap under its container's own `env`."""
    (configmap,) = [document for _, document in _k8s_documents() if document["kind"] == "ConfigMap"]
    (container,) = _workloads()[workload]["spec"]["template"]["spec"]["containers"]
    assert {"configMapRef": {"name": configmap["metadata"]["name"]}} in container["envFrom"]
    return configmap["data"] | {item["name"]: item.get("value", "(from the pod)") for item in container.get("env", [])}


@pytest.mark.parametrize(
    ("service", "workload"),
    [
        ("web", "animedash-web"),
        ("worker", "animedash-worker"),
        ("beat", "animedash-beat"),
        ("migrate", "animedash-migrate"),
    ],
)
def test_compose_and_kubernetes_give_each_process_the_same_environment(service, workload):
    compose, k8s = _compose_env(service), _k8s_env(workload)
    assert sorted(compose.keys() - k8s.keys() - ENV_DIFFERENCES) == [], "set in compose only"
    assert sorted(k8s.keys() - compose.keys() - ENV_DIFFERENCES) == [], "set in Kubernetes only"
    differ = {key: (compose[key], k8s[key]) for key in compose.keys() & k8s.keys() - ENV_DIFFERENCES}
    assert {key: values for key, values in differ.items() if values[0] != values[1]} == {}


def test_both_deployments_trust_one_proxy_for_the_lockout_and_the_throttle():
    """Behind the TLS proxy (compose) or the ingress controller (Kubernetes), the client's address is the
    one the proxy appended to X-Forwarded-For: without it every client shares the proxy's address."""
    for env in (_compose_env("web"), _k8s_env("animedash-web")):
        assert (env["AXES_PROXY_COUNT"], env["API_NUM_PROXIES"]) == ("1", "1")


# --- Kubernetes ------------------------------------------------------------------------------------


def _k8s_documents() -> Iterator[tuple[str, dict[str, Any]]]:
    for file in sorted(K8S.glob("*.yaml")):
        if file.name != "kustomization.yaml":
            for document in yaml.safe_load_all(file.read_text()):
                if document:
                    yield file.name, document


def test_kubernetes_manifests_validate_against_the_schemas():
    documents = list(_k8s_documents())
    assert len(documents) >= 10
    errors = []
    for name, document in documents:
        try:
            kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            errors.append(f"{name}: {error.message} at {'/'.join(map(str, error.path))}")
    assert not errors, "\n".join(errors)


def test_kustomization_lists_every_manifest_and_no_secret_is_committed():
    kustomization = _yaml(K8S / "kustomization.yaml")
    files = {file.name for file in K8S.glob("*.y*ml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files
    kinds = [document["kind"] for _, document in _k8s_documents()]
    assert "Secret" not in kinds
    assert {"Namespace", "ConfigMap", "Deployment", "Job", "Service", "Ingress", "HorizontalPodAutoscaler"} <= set(
        kinds
    )


def _workloads() -> dict[str, dict[str, Any]]:
    return {
        document["metadata"]["name"]: document
        for _, document in _k8s_documents()
        if document["kind"] in {"Deployment", "Job"}
    }


def test_kubernetes_workloads_run_as_non_root_and_read_the_secret_by_reference():
    for name, workload in _workloads().items():
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        for container in pod.get("initContainers", []) + pod["containers"]:
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, name
            secret_refs = [ref["secretRef"]["name"] for ref in container.get("envFrom", []) if "secretRef" in ref]
            assert secret_refs == ["animedash-secrets"], f"{name}/{container['name']}"


def test_kubernetes_serves_metrics_on_their_own_ports_which_neither_service_nor_ingress_expose():
    workloads = _workloads()
    for workload, port in (("animedash-web", WEB_METRICS_PORT), ("animedash-worker", WORKER_METRICS_PORT)):
        template = workloads[workload]["spec"]["template"]
        (container,) = template["spec"]["containers"]
        assert {"name": "metrics", "containerPort": port} in container["ports"]
        assert template["metadata"]["annotations"]["prometheus.io/port"] == str(port)
    assert _k8s_env("animedash-web")["WEB_METRICS_PORT"] == str(WEB_METRICS_PORT)
    assert _k8s_env("animedash-worker")["CELERY_METRICS_PORT"] == str(WORKER_METRICS_PORT)
    documents = [document for _, document in _k8s_documents()]
    services_ = [document for document in documents if document["kind"] == "Service"]
    assert [port["targetPort"] for service in services_ for port in service["spec"]["ports"]] == ["http"]
    backends = [
        path["backend"]["service"]["port"]
        for document in documents
        if document["kind"] == "Ingress"
        for rule in document["spec"]["rules"]
        for path in rule["http"]["paths"]
    ]
    assert backends == [{"name": "http"}]


def test_kubernetes_mounts_the_exports_claim_read_write_in_the_worker_and_read_only_in_web():
    (claim,) = [d for _, d in _k8s_documents() if d["kind"] == "PersistentVolumeClaim"]
    assert claim["metadata"]["name"] == "animedash-exports"
    # Web pods may run on other nodes than the worker's.
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    workloads = _workloads()
    for workload, read_only in (("animedash-web", True), ("animedash-worker", False)):
        pod = workloads[workload]["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["exports"]["persistentVolumeClaim"] == {"claimName": "animedash-exports"}, workload
        (container,) = pod["containers"]
        (mount,) = [m for m in container["volumeMounts"] if m["name"] == "exports"]
        assert mount["mountPath"] == _k8s_env(workload)["EXPORT_DIR"] == "/app/exports", workload
        assert mount.get("readOnly", False) is read_only, workload
    # The worker's root filesystem is read-only: it writes into the claim, as the app's group.
    assert workloads["animedash-worker"]["spec"]["template"]["spec"]["securityContext"]["fsGroup"] == 10001


def test_kubernetes_web_probes_worker_liveness_and_a_single_beat():
    workloads = _workloads()
    (web,) = workloads["animedash-web"]["spec"]["template"]["spec"]["containers"]
    assert web["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert web["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert web["resources"]["requests"]
    assert web["resources"]["limits"]
    (worker,) = workloads["animedash-worker"]["spec"]["template"]["spec"]["containers"]
    assert worker["command"] == ["/app/deploy/start-worker"]
    assert worker["livenessProbe"]["tcpSocket"]["port"] == "metrics"
    assert {"name": "metrics", "containerPort": 9808} in worker["ports"]
    beat = workloads["animedash-beat"]["spec"]
    assert beat["replicas"] == 1
    assert beat["strategy"] == {"type": "Recreate"}
    assert workloads["animedash-migrate"]["spec"]["template"]["spec"]["containers"][0]["command"] == [
        "/app/deploy/release"
    ]


# --- Dockerfile, start scripts, README -------------------------------------------------------------


def test_dockerfile_is_multi_stage_non_root_with_a_healthcheck():
    text = (DEPLOY / "Dockerfile").read_text()
    froms = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\w+))?", text, flags=re.MULTILINE | re.IGNORECASE)
    assert len(froms) >= 2
    assert froms[-1][0] == "python:3.11-slim"
    assert "from=builder" in text
    assert "requirements.txt" in text
    users = re.findall(r"^USER\s+(\S+)", text, flags=re.MULTILINE)
    assert users
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert re.search(r"^HEALTHCHECK .*\n?.*/healthz", text, flags=re.MULTILINE)
    assert re.search(r"^EXPOSE 8000$", text, flags=re.MULTILINE)
    # The nightly dump can write into EXPORT_DIR with no volume mounted too.
    assert re.search(r"^RUN mkdir -p /app/exports && chown 10001:10001 /app/exports$", text, re.MULTILINE)
    assert text.index("/app/exports") < text.index("USER 10001")
    collectstatic = re.search(
        r"^RUN SECRET_KEY=\S+ [^\n]*\\\n\s+python manage.py collectstatic --noinput$", text, re.MULTILINE
    )
    assert collectstatic, "collectstatic runs at build time with a build-only SECRET_KEY"


@pytest.mark.parametrize("script", ["start-web", "start-worker", "start-beat", "release"])
def test_start_scripts_are_one_exec_line(script):
    file = DEPLOY / script
    assert os.access(file, os.X_OK)
    commands = [line for line in file.read_text().splitlines()[1:] if line and not line.startswith(("#", "set "))]
    assert len(commands) == 1
    assert commands[0].startswith("exec ")
    if script == "start-worker":
        assert "--pool threads" in commands[0]


def test_readme_explains_how_to_build_and_run_the_deployment():
    readme = (ROOT / "README.md").read_text()
    section = readme.partition("\n## Deployment\n")[2].split("\n## ")[0]
    for needle in (
        "docker build -f deploy/Dockerfile",
        "docker compose -f deploy/docker-compose.yml",
        "--profile observability",
        "kubectl apply -k deploy/k8s",
        "animedash-secrets",
        "make tools",
    ):
        assert needle in section, needle
