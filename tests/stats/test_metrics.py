"""/metrics: the metric names, labels from fixed vocabularies only, and access control."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from sqlalchemy import Engine, create_engine

from app.outbox import metrics as outbox_metrics
from app.security import PhoneVault
from app.stats import metrics
from tests.factories import add_enrolments, add_opd
from tests.stats.helpers import (
    TODAY,
    add_campaign_row,
    add_deliveries,
    delivery_counts,
    enrolment_counts,
    opd_ids,
)

LOCAL = ("127.0.0.1", 40000)
EXPECTED = (
    "spi_outbox_depth",
    "spi_campaigns",
    "spi_delivery_outcomes",
    "spi_scheduler_leader",
    "spi_outbox_send_attempts",
    "spi_outbox_campaign_halts",
    "spi_webhook_events",
    "spi_metrics_database_up",
)


@pytest.fixture
def local(api: FastAPI) -> TestClient:
    """A client on loopback (no lifespan: /metrics needs none, and the app runs it once)."""
    return TestClient(api, client=LOCAL)


def _families(text: str) -> dict[str, list[tuple[str, dict[str, str], float]]]:
    out: dict[str, list[tuple[str, dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        out[family.name] = [(s.name, s.labels, s.value) for s in family.samples]
    return out


def _value(
    families: dict[str, list[tuple[str, dict[str, str], float]]], name: str, **labels: str
) -> float:
    for family in families.values():
        for sample, sample_labels, value in family:
            if sample == name and all(sample_labels.get(k) == v for k, v in labels.items()):
                return value
    raise AssertionError(f"no sample {name} {labels}")


def test_metrics_expose_the_documented_names_and_database_figures(
    local: TestClient, engine: Engine, vault: PhoneVault
) -> None:
    add_opd(engine, "DINKES", "Dinas Kesehatan Kota")
    opd = opd_ids(engine)["DINKES"]
    campaign = add_campaign_row(engine)
    add_campaign_row(engine, state="paused")
    enrolments = add_enrolments(engine, vault, "DINKES", 3)
    add_deliveries(
        engine, campaign_id=campaign, enrolment_ids=enrolments, opd_id=opd, state="queued"
    )
    delivery_counts(engine, campaign, opd, TODAY, scheduled=7, accepted=5, retried=2)
    enrolment_counts(engine, opd, TODAY - timedelta(days=1), opted_out=4)
    outbox_metrics.SEND_ATTEMPTS.labels("accepted").inc()
    response = local.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = _families(response.text)
    for name in EXPECTED:
        assert name in families, name
    assert "spi_webhook_requests" in families  # the webhook's own counters are exposed too
    assert _value(families, "spi_outbox_depth", state="queued") == 3
    assert _value(families, "spi_campaigns", state="paused") == 1
    assert _value(families, "spi_campaigns", state="active") == 1
    assert _value(families, "spi_delivery_outcomes_total", outcome="retried") == 2
    assert "spi_enrolment_events" not in families  # opt-outs are no operational figure
    assert not [n for n in families if not n.startswith("spi_")]
    assert _value(families, "spi_scheduler_leader") == 0
    assert _value(families, "spi_metrics_database_up") == 1


def test_no_label_carries_a_number_a_name_or_free_text(
    local: TestClient, engine: Engine, vault: PhoneVault
) -> None:
    add_opd(engine, "DINKES", "Dinas Kesehatan Kota")
    opd = opd_ids(engine)["DINKES"]
    campaign = add_campaign_row(engine, name="Kampanye Rahasia 2026")
    enrolments = add_enrolments(engine, vault, "DINKES", 2)
    add_deliveries(engine, campaign_id=campaign, enrolment_ids=enrolments, opd_id=opd)
    delivery_counts(engine, campaign, opd, TODAY, scheduled=2, accepted=2)
    outbox_metrics.SEND_ATTEMPTS.labels("halt").inc()
    outbox_metrics.CAMPAIGN_HALTS.inc()
    text = local.get("/metrics").text
    # Names, help texts and label values; sample values are numbers (a heartbeat timestamp
    # may well contain the digits 628), so they are left out of the search.
    descriptive = []
    for family in text_string_to_metric_families(text):
        descriptive += [family.name, family.documentation]
        for sample in family.samples:
            descriptive += [f"{k}={v}" for k, v in sample.labels.items()]
            if not family.name.startswith("spi_"):
                continue
            for key, value in sample.labels.items():
                if key == "le":  # histogram bucket bounds are numbers by definition
                    continue
                assert re.fullmatch(r"[a-z_]+", value), (family.name, key, value)
    joined = "\n".join(descriptive)
    for forbidden in ("DINKES", "Dinas Kesehatan", "Rahasia", "0812", "628", "wamid"):
        assert forbidden not in joined


def test_process_counters_fed_by_the_worker_are_exposed(local: TestClient) -> None:
    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    before = sample("spi_outbox_send_attempts_total", outcome="retry")
    outbox_metrics.SEND_ATTEMPTS.labels("retry").inc()
    families = _families(local.get("/metrics").text)
    assert _value(families, "spi_outbox_send_attempts_total", outcome="retry") == before + 1


def test_without_a_token_only_loopback_may_read(api: FastAPI) -> None:
    assert TestClient(api).get("/metrics").status_code == 403  # its host is "testclient"
    assert TestClient(api, client=("10.1.2.3", 5555)).get("/metrics").status_code == 403
    local = TestClient(api, client=LOCAL)
    assert local.get("/metrics").status_code == 200
    # through a reverse proxy on the same machine: not local
    assert local.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 403
    assert TestClient(api, client=("::1", 5555)).get("/metrics").status_code == 200


def test_a_metrics_token_is_required_when_set(api: FastAPI) -> None:
    api.state.settings = api.state.settings.model_copy(
        update={"metrics_token": SecretStr("scrape-secret")}
    )
    remote = TestClient(api, client=("10.1.2.3", 5555))
    assert remote.get("/metrics").status_code == 401
    assert remote.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
    right = {"Authorization": "Bearer scrape-secret"}
    assert remote.get("/metrics", headers=right).status_code == 200
    local = TestClient(api, client=LOCAL)
    assert local.get("/metrics").status_code == 401  # loopback needs it too once set


def test_metrics_answer_when_the_database_does_not() -> None:
    broken = create_engine("sqlite:////nonexistent/dir/db.sqlite")
    families = _families(metrics.exposition(broken, None).decode())
    broken.dispose()
    assert _value(families, "spi_metrics_database_up") == 0
    assert "spi_outbox_depth" not in families


class _Leader:
    is_leader = True
    last_heartbeat = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


def test_scheduler_lock_and_heartbeat_come_from_the_handle(api: FastAPI) -> None:
    api.state.scheduler = _Leader()
    families = _families(TestClient(api, client=LOCAL).get("/metrics").text)
    assert _value(families, "spi_scheduler_leader") == 1
    assert _value(families, "spi_scheduler_heartbeat_timestamp_seconds") == (
        _Leader.last_heartbeat.timestamp()
    )
