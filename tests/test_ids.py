"""Ids outside the database's integer range are refused at the edge (422), never a 500."""

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from app.auth.models import Role
from app.ids import MAX_ID
from tests.factories import add_campaign, add_opd, add_template, add_token, bearer

OUT_OF_RANGE = [MAX_ID + 1, 2**63, -1, 0]
# Path parameters that are not ids get a plausible value, so that only the id is wrong.
_OTHER_PATH_VALUES = {"code": "DINKES"}
Operation = tuple[str, str, str, str, dict[str, Any]]


def _is_integer(schema: dict[str, Any]) -> bool:
    return any(s.get("type") == "integer" for s in schema.get("anyOf", [schema]))


def _id_parameters(api: FastAPI) -> list[Operation]:
    """(path, method, parameter, 'path' or 'query', schema) for every integer id parameter."""
    found = []
    for path, operations in api.openapi()["paths"].items():
        for method, operation in operations.items():
            for param in operation.get("parameters", []):
                name, schema = param["name"], param["schema"]
                if name.endswith("id") and _is_integer(schema):
                    found.append((path, method.upper(), name, param["in"], schema))
    return found


def _request(path: str, name: str, where: str, value: int) -> tuple[str, dict[str, int]]:
    def fill(match: re.Match[str]) -> str:
        param = match.group(1)
        if where == "path" and param == name:
            return str(value)
        return _OTHER_PATH_VALUES.get(param, "1")

    return re.sub(r"\{(\w+)\}", fill, path), ({name: value} if where == "query" else {})


def test_every_id_parameter_declares_the_database_range(api: FastAPI) -> None:
    params = _id_parameters(api)
    # campaigns (7 routes), templates (5), stats (2), preview's campaign, the audit filter
    assert len(params) >= 16
    for path, _method, name, _, schema in params:
        declared = next(s for s in schema.get("anyOf", [schema]) if s.get("type") == "integer")
        assert (declared.get("minimum"), declared.get("maximum")) == (1, MAX_ID), (path, name)


def test_ids_out_of_range_are_refused_on_every_route(
    api: FastAPI, client: TestClient, engine: Engine
) -> None:
    add_opd(engine, "DINKES")
    headers = bearer(add_token(engine, Role.admin))
    params = _id_parameters(api)
    assert params
    for template, method, name, where, _ in params:
        for value in OUT_OF_RANGE:
            path, query = _request(template, name, where, value)
            response = client.request(method, path, params=query, headers=headers)
            assert response.status_code == 422, (method, path, query, response.text)
            fields = [d["field"] for d in response.json()["error"]["details"]]
            assert f"{where}.{name}" in fields, (method, path, fields)


def test_dashboard_campaign_page_refuses_ids_out_of_range(client: TestClient) -> None:
    for value in OUT_OF_RANGE:
        response = client.get(f"/dashboard/campaigns/{value}", follow_redirects=False)
        assert response.status_code == 422, value


def test_largest_id_in_range_is_a_plain_404(client: TestClient, engine: Engine) -> None:
    template_id = add_template(engine)
    add_campaign(
        engine, template_id=template_id, now=datetime(2026, 3, 1, tzinfo=UTC), activate=False
    )
    headers = bearer(add_token(engine, Role.admin))
    for path in (
        f"/api/v1/campaigns/{MAX_ID}",
        f"/api/v1/stats/campaigns/{MAX_ID}",
        f"/api/v1/templates/{MAX_ID}",
        f"/api/v1/templates/{template_id}/preview?campaign_id={MAX_ID}",
    ):
        assert client.get(path, headers=headers).status_code == 404, path
    assert client.get(f"/api/v1/audit?actor_token_id={MAX_ID}", headers=headers).json() == []


@pytest.mark.parametrize("value", ["9223372036854775808", "2147483648", "1e3", "x"])
def test_stats_id_from_the_issue_is_422(client: TestClient, engine: Engine, value: str) -> None:
    headers = bearer(add_token(engine, Role.admin))
    response = client.get(f"/api/v1/stats/campaigns/{value}", headers=headers)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid"
