"""deploy/ is read by machines the suite cannot run (Docker, systemd, Caddy, Prometheus, Grafana):
parse each file and hold it to the code — real subcommands, real settings, real metrics."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError
from sqlalchemy import Engine

import app.main  # noqa: F401  (registers every process counter)
from app.campaigns.models import CampaignState
from app.cli import cli
from app.config import Settings
from app.stats import metrics

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
ENV_EXAMPLE = DEPLOY / ".env.production.example"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
DASHBOARD = DEPLOY / "grafana" / "pengingat-spi.json"
# Read by compose and Caddy, not by the service.
NOT_SETTINGS = {"SITE_ADDRESS", "ACME_EMAIL", "POSTGRES_PASSWORD", "SPI_IMAGE_TAG"}
SPI_SERVICES = {"api-1", "api-2", "scheduler-1", "scheduler-2", "worker-1", "worker-2"}
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "RestrictNamespaces": "yes",
    "CapabilityBoundingSet": "",
    "UMask": "0077",
}
READY_PATH = "/readyz"


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def services() -> dict[str, Any]:
    found: dict[str, Any] = compose()["services"]
    return found


def environment(service: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in (service.get("environment") or {}).items()}


def setting_name(variable: str) -> str:
    assert variable.startswith("SPI_"), variable
    return variable.removeprefix("SPI_").lower()


def assert_is_setting(variable: str, value: str | None = None) -> None:
    """The variable is a field of Settings, and a literal value is one it accepts."""
    name = setting_name(variable)
    assert name in Settings.model_fields, f"{variable} is not a setting of app/config.py"
    if value is None or "${" in value or value == "":
        return
    try:
        Settings.model_validate({name: value})
    except ValidationError as exc:  # pragma: no cover - the message is the point
        pytest.fail(f"{variable}={value!r} is refused by Settings: {exc}")


def subcommand(argv: list[str]) -> Any:
    """Resolve `spi-reminder <argv...>` to its command, failing on a name that is not one."""
    command: Any = typer.main.get_command(cli)
    for word in argv:
        if word.startswith("-"):
            break
        assert hasattr(command, "get_command"), f"{word!r}: {command.name} takes no subcommand"
        found = command.get_command(command.context_class(command), word)
        assert found is not None, f"`spi-reminder {' '.join(argv)}`: no subcommand {word!r}"
        command = found
    return command


# --- compose ----------------------------------------------------------------------------------


def test_compose_has_the_production_shape() -> None:
    found = services()
    assert set(found) == SPI_SERVICES | {"postgres", "caddy"}
    roles = {name: environment(found[name]) for name in SPI_SERVICES}
    for name in ("api-1", "api-2"):
        assert found[name]["command"] == ["spi-reminder", "serve"]
        assert roles[name]["SPI_SCHEDULER_ENABLED"] == "false"
        assert roles[name]["SPI_WORKER_ENABLED"] == "false"
    for name in ("scheduler-1", "scheduler-2"):
        assert found[name]["command"] == ["spi-reminder", "serve"]
        assert roles[name]["SPI_SCHEDULER_ENABLED"] == "true"
        assert roles[name]["SPI_WORKER_ENABLED"] == "false"
        assert "ports" not in found[name]  # never published, never behind the proxy
    for name in ("worker-1", "worker-2"):
        assert found[name]["command"] == ["spi-reminder", "worker"]
    for name in SPI_SERVICES:
        env = roles[name]
        assert env["SPI_ENV"] == "production"
        assert env["SPI_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert "@postgres:5432/" in env["SPI_DATABASE_URL"]
        assert found[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
    # Only the proxy is reachable from outside.
    assert [n for n, s in found.items() if "ports" in s] == ["caddy"]


def test_every_compose_command_is_a_real_subcommand() -> None:
    for name in SPI_SERVICES:
        argv = services()[name]["command"]
        assert argv[0] == "spi-reminder", name
        subcommand(argv[1:])


def test_compose_variables_are_settings() -> None:
    for name in SPI_SERVICES:
        for variable, value in environment(services()[name]).items():
            assert_is_setting(variable, value)
    text = COMPOSE.read_text()
    for variable in set(re.findall(r"\$\{(\w+)", text)):
        assert variable in NOT_SETTINGS, f"${{{variable}}} is read by compose but not documented"
        assert re.search(rf"^{variable}=", ENV_EXAMPLE.read_text(), re.MULTILINE), variable


def test_serve_services_are_checked_on_readiness_at_their_port(api: FastAPI) -> None:
    routes = {getattr(r, "path", "") for r in api.routes}
    assert READY_PATH in routes
    for name, service in services().items():
        if name not in SPI_SERVICES:
            continue
        health = service["healthcheck"]
        if service["command"][1] == "worker":
            assert health == {"disable": True}  # no port; the image's check would always fail
            continue
        probe = " ".join(health["test"])
        port = environment(service)["SPI_PORT"]
        assert f"http://127.0.0.1:{port}{READY_PATH}" in probe, name
        assert health["start_period"]
        assert health["retries"] >= 1


def test_every_service_has_resource_limits_and_postgres_a_health_check() -> None:
    for name, service in services().items():
        limits = service["deploy"]["resources"]["limits"]
        assert float(limits["cpus"]) > 0, name
        assert limits["memory"].endswith(("M", "G")), name
    assert "pg_isready" in services()["postgres"]["healthcheck"]["test"]
    declared = set(compose()["volumes"])
    used = {
        volume.split(":", 1)[0]
        for service in services().values()
        for volume in service.get("volumes", [])
        if not volume.startswith(".")
    }
    assert used == declared == {"pgdata", "caddy_data", "caddy_config"}


def test_caddy_proxies_to_both_api_replicas_on_readiness() -> None:
    caddyfile = (DEPLOY / "Caddyfile").read_text()
    upstreams = re.search(r"reverse_proxy ([^{]+)\{", caddyfile)
    assert upstreams is not None
    ports = {environment(services()[n])["SPI_PORT"] for n in ("api-1", "api-2")}
    assert upstreams.group(1).split() == [f"api-1:{p}" for p in ports] + [
        f"api-2:{p}" for p in ports
    ]
    assert f"health_uri {READY_PATH}" in caddyfile
    assert "respond /metrics 404" in caddyfile
    assert services()["caddy"]["volumes"][0] == "./Caddyfile:/etc/caddy/Caddyfile:ro"


def test_production_env_example_names_only_settings_and_the_required_secrets() -> None:
    variables = dict(
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line and not line.startswith("#")
    )
    for variable, value in variables.items():
        if variable in NOT_SETTINGS:
            continue
        assert_is_setting(variable, value)
    for required in (
        "SPI_ENV",
        "SPI_ENCRYPTION_KEYS",
        "SPI_BLIND_INDEX_KEY",
        "SPI_WHATSAPP_ACCESS_TOKEN",
        "SPI_WHATSAPP_PHONE_NUMBER_ID",
        "SPI_WHATSAPP_APP_SECRET",
        "SPI_WHATSAPP_VERIFY_TOKEN",
        "SPI_METRICS_TOKEN",
    ):
        assert required in variables, required
    assert variables["SPI_ENV"] == "production"


# --- systemd ----------------------------------------------------------------------------------


@dataclass
class Unit:
    sections: dict[str, list[tuple[str, str]]]

    def values(self, section: str, key: str) -> list[str]:
        return [v for k, v in self.sections[section] if k == key]

    def one(self, section: str, key: str) -> str:
        (value,) = self.values(section, key)
        return value


def read_unit(path: Path) -> Unit:
    """systemd's format: [Section], Key=Value, repeatable keys (configparser cannot)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), [])
            continue
        key, value = line.split("=", 1)
        current.append((key, value))
    return Unit(sections)


def unit_environment(unit: Unit) -> dict[str, str]:
    return dict(v.split("=", 1) for v in unit.values("Service", "Environment"))


def test_systemd_units_run_real_subcommands_hardened() -> None:
    assert {p.name for p in UNITS} == {
        "spi-reminder-serve.service",
        "spi-reminder-scheduler.service",
        "spi-reminder-worker@.service",
    }
    for path in UNITS:
        unit = read_unit(path)
        binary, *argv = unit.one("Service", "ExecStart").split()
        assert binary.endswith("/bin/spi-reminder"), path.name
        subcommand(argv)
        assert unit.one("Service", "EnvironmentFile") == "/etc/pengingat-spi/env"
        assert unit.one("Service", "KillSignal") == "SIGTERM"
        assert unit.one("Service", "User") == "spi"
        for key, value in HARDENING.items():
            assert unit.one("Service", key) == value, f"{path.name}: {key}"
        assert unit.one("Install", "WantedBy") == "multi-user.target"
        for variable, value in unit_environment(unit).items():
            assert_is_setting(variable, value)


def test_systemd_roles_match_compose() -> None:
    serve = unit_environment(read_unit(DEPLOY / "systemd" / "spi-reminder-serve.service"))
    scheduler = unit_environment(read_unit(DEPLOY / "systemd" / "spi-reminder-scheduler.service"))
    assert (serve["SPI_SCHEDULER_ENABLED"], serve["SPI_WORKER_ENABLED"]) == ("false", "false")
    assert (scheduler["SPI_SCHEDULER_ENABLED"], scheduler["SPI_WORKER_ENABLED"]) == (
        "true",
        "false",
    )
    assert serve["SPI_PORT"] != scheduler["SPI_PORT"]  # both may run on one machine
    assert serve["SPI_HOST"] == scheduler["SPI_HOST"] == "127.0.0.1"


# --- metrics ----------------------------------------------------------------------------------


@dataclass
class _Leading:
    is_leader: bool = True
    last_heartbeat: datetime | None = datetime(2026, 3, 10, tzinfo=UTC)


@pytest.fixture
def exposed(engine: Engine) -> dict[str, set[tuple[str, str]]]:
    """Every sample name /metrics can serve, with the (label, value) pairs it was seen with."""
    text = metrics.exposition(engine, _Leading()).decode()
    names: dict[str, set[tuple[str, str]]] = {}
    for family in text_string_to_metric_families(text):
        # A labelled counter without observations yet has no samples: its name still counts.
        names.setdefault(family.name, set())
        if family.type == "counter":
            names.setdefault(family.name + "_total", set())
        for sample in family.samples:
            names.setdefault(sample.name, set()).update(sample.labels.items())
    return names


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def dashboard_exprs() -> Iterator[str]:
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel["targets"]:
            yield target["expr"]


def check_expr(expr: str, exposed: dict[str, set[tuple[str, str]]]) -> None:
    names = re.findall(r"\bspi_[a-z0-9_]+", expr)
    assert names, f"no service metric in {expr!r}"
    for name in names:
        assert name in exposed, f"{name} is not served by /metrics"
    for name, label, value in re.findall(r"\b(spi_[a-z0-9_]+)\{(\w+)=\"(\w+)\"\}", expr):
        if not exposed[name]:
            continue  # a labelled counter nothing has observed yet in this process
        # Label values of the database figures are all present at every scrape: check them
        # too. A counter shows only the values observed so far (which other tests decide).
        if name.startswith(DATABASE_FIGURES):
            assert (label, value) in exposed[name], f"{name}{{{label}={value!r}}} never appears"
        else:
            assert label in {seen for seen, _ in exposed[name]}, f"{name} has no label {label}"


def test_alert_rules_use_only_served_metrics(exposed: dict[str, set[tuple[str, str]]]) -> None:
    rules = alert_rules()
    assert {r["alert"] for r in rules} >= {
        "SpiOutboxDepthGrowing",
        "SpiCampaignPaused",
        "SpiWebhookErrors",
        "SpiNoSchedulerLeader",
    }
    for rule in rules:
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]
        if rule["alert"] == "SpiTargetDown":
            continue  # Prometheus' own `up`
        check_expr(rule["expr"], exposed)


def test_dashboard_panels_use_only_served_metrics(
    exposed: dict[str, set[tuple[str, str]]],
) -> None:
    exprs = list(dashboard_exprs())
    assert len(exprs) >= 6
    for expr in exprs:
        check_expr(expr, exposed)


DATABASE_FIGURES = ("spi_outbox_depth", "spi_campaigns", "spi_delivery_outcomes_total")


def test_database_figures_are_never_summed_over_replicas() -> None:
    # Every `serve` reports the same database figures: a sum would count them once per replica.
    exprs = [r["expr"] for r in alert_rules()] + list(dashboard_exprs())
    for expr in exprs:
        for name in DATABASE_FIGURES:
            if name in expr:
                assert not re.search(r"\bsum\b", expr), expr
                assert re.search(r"\b(max|min)\b", expr), expr


def test_the_paused_alert_reads_the_campaign_state_the_code_has() -> None:
    (rule,) = [r for r in alert_rules() if r["alert"] == "SpiCampaignPaused"]
    assert f'state="{CampaignState.paused.value}"' in rule["expr"]


# --- the operator guide -----------------------------------------------------------------------


def guide_commands() -> list[list[str]]:
    """Every `spi-reminder …` command line of docs/operations.md, continuation lines joined."""
    text = (ROOT / "docs" / "operations.md").read_text().replace("\\\n", " ")
    found = []
    for match in re.finditer(r"spi-reminder ([^`\n]+)", text):
        words = shlex.split(match.group(1).rstrip(").,"))
        found.append(words)
    return found


def test_every_command_in_the_operator_guide_exists_with_its_options() -> None:
    commands = guide_commands()
    assert len(commands) >= 8
    for words in commands:
        command = subcommand(words)
        known = {opt for param in command.params for opt in param.opts}
        for word in words:
            if word.startswith("--"):
                assert word.split("=", 1)[0] in known, f"`spi-reminder {' '.join(words)}`"
