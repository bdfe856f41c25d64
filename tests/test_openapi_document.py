"""What the OpenAPI document promises about errors, and the Allow header of 405 answers."""

import re
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.openapi_errors import ERROR_SCHEMA_REF, LOCAL_TIME_PATTERN

METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture
def spec(api: FastAPI) -> dict[str, Any]:
    return api.openapi()


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(p, m, op) for p, ops in spec["paths"].items() for m, op in ops.items()]


def test_every_error_answer_has_the_error_schema(spec: dict[str, Any]) -> None:
    for path, method, operation in _operations(spec):
        for status, response in operation["responses"].items():
            if status[0] in "45":
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": ERROR_SCHEMA_REF}, (method, path, status)
    error = spec["components"]["schemas"]["ErrorBody"]
    assert error["required"] == ["error"]
    # FastAPI's own {"detail": [...]} body is never sent, so it is not described either.
    assert "HTTPValidationError" not in spec["components"]["schemas"]


def test_errors_follow_from_how_each_route_is_built(spec: dict[str, Any]) -> None:
    paths = spec["paths"]

    def statuses(path: str, method: str) -> set[str]:
        return set(paths[path][method]["responses"])

    # A JSON body: unreadable (400), too large (413), invalid (422); the token: 401, 403; the
    # database: 503; a conflict only where the route says so.
    assert statuses("/api/v1/opds", "post") == {
        "201",
        "400",
        "401",
        "403",
        "409",
        "413",
        "422",
        "503",
    }
    # Every role may list OPDs: no 403; no parameters: no 422.
    assert statuses("/api/v1/opds", "get") == {"200", "401", "503"}
    assert {"404", "422"} <= statuses("/api/v1/campaigns/{campaign_id}", "get")
    assert "409" in statuses("/api/v1/campaigns/{campaign_id}/activate", "post")
    assert "401" not in statuses("/healthz", "get")
    assert paths["/api/v1/opds"]["get"]["security"] == [{"bearerToken": []}]
    assert "security" not in paths["/healthz"]["get"]


def test_local_times_are_documented_as_they_are_sent(
    client: TestClient, spec: dict[str, Any]
) -> None:
    send_start = spec["components"]["schemas"]["CampaignPublic"]["properties"]["send_start"]
    assert "format" not in send_start
    assert send_start["pattern"] == LOCAL_TIME_PATTERN
    assert re.fullmatch(LOCAL_TIME_PATTERN, "08:00:00")
    assert not re.fullmatch(LOCAL_TIME_PATTERN, "08:00:00+07:00")


def _fill(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: "DINKES" if m.group(1) == "code" else "1", path)


def test_405_allows_every_documented_method_of_the_path(
    client: TestClient, spec: dict[str, Any]
) -> None:
    checked = 0
    for path, operations in spec["paths"].items():
        documented = {m.upper() for m in operations}
        for method in sorted(METHODS - set(operations)):
            response = client.request(method.upper(), _fill(path))
            assert response.status_code == 405, (method, path)
            assert response.json()["error"]["code"] == "method_not_allowed"
            allowed = {m.strip() for m in response.headers["allow"].split(",")}
            assert allowed == documented, (method, path)
            checked += 1
    assert checked > 50


def test_405_on_the_webhook_names_the_receivers_post(client: TestClient) -> None:
    response = client.put("/webhook/whatsapp")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
