"""Bad requests get a JSON error with a real status, never a 500."""

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from app.auth.models import Role
from tests.factories import add_opd, add_token, bearer


def test_invalid_json_is_400(client: TestClient, engine: Engine) -> None:
    headers = bearer(add_token(engine, Role.admin)) | {"content-type": "application/json"}
    response = client.post("/api/v1/opds", content=b"{not json", headers=headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"


def test_oversized_json_body_is_413_with_limit(client: TestClient, engine: Engine) -> None:
    headers = bearer(add_token(engine, Role.admin))
    body = {"code": "X", "name": "x" * 100_000, "timezone": "WIB"}
    response = client.post("/api/v1/opds", json=body, headers=headers)
    assert response.status_code == 413
    assert str(64 * 1024) in response.json()["error"]["message"]


def test_streamed_body_without_length_is_also_limited(client: TestClient, engine: Engine) -> None:
    headers = bearer(add_token(engine, Role.admin)) | {"content-type": "application/json"}

    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(100):
            yield b" " * 1024

    response = client.post("/api/v1/opds", content=chunks(), headers=headers)
    assert response.status_code == 413


def test_validation_error_names_field_and_hides_input(client: TestClient, engine: Engine) -> None:
    add_opd(engine, "DINKES")
    headers = bearer(add_token(engine, Role.admin))
    response = client.post(
        "/api/v1/opds/DINKES/enrolments",
        json={"phone": "081234567890", "consent": {"method": "telepati"}},
        headers=headers,
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert "consent.method" in error["message"]
    assert "081234567890" not in response.text


def test_a_validators_own_sentence_is_kept_without_prefix(
    client: TestClient, engine: Engine
) -> None:
    add_opd(engine, "DINKES")
    response = client.post(
        "/api/v1/opds/DINKES/enrolments",
        json={"phone": "081234567890", "label": "x" * 81, "consent": {"method": "paper_form"}},
        headers=bearer(add_token(engine, Role.admin)),
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["details"] == [
        {"field": "label", "problem": "label lebih panjang dari 80 karakter"}
    ]


def test_unknown_route_is_json_404(client: TestClient) -> None:
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_wrong_timezone_is_422_with_reason(client: TestClient, engine: Engine) -> None:
    headers = bearer(add_token(engine, Role.admin))
    response = client.post(
        "/api/v1/opds", json={"code": "A", "name": "A", "timezone": "Europe/Paris"}, headers=headers
    )
    assert response.status_code == 422
    assert "WIB" in response.json()["error"]["message"]


def test_duplicate_opd_is_409(client: TestClient, engine: Engine) -> None:
    headers = bearer(add_token(engine, Role.admin))
    body = {"code": "bappeda", "name": "Bappeda", "timezone": "wita"}
    assert client.post("/api/v1/opds", json=body, headers=headers).status_code == 201
    again = client.post("/api/v1/opds", json=body, headers=headers)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "opd_exists"


def test_openapi_describes_every_route(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            assert op.get("description"), f"{method} {path} has no description"
    assert client.get("/docs").status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/api/v1/templates", {"name": "x", "body": "Halo\u0000", "category": "UTILITY"}),
        ("get", "/api/v1/audit?actor_name=a%00b", None),
        ("get", "/api/v1/opds/DIN%00KES/enrolments", None),
    ],
    ids=["json-body", "query", "path"],
)
def test_nul_in_text_is_422_on_both_databases(
    client: TestClient, engine: Engine, method: str, path: str, body: object
) -> None:
    # PostgreSQL cannot hold NUL in text (it answered 500); SQLite stored it.
    headers = bearer(add_token(engine, Role.admin))
    response = client.request(method.upper(), path, json=body, headers=headers)
    assert response.status_code == 422, response.text
    assert "NUL" in response.json()["error"]["message"]


def test_an_escaped_backslash_before_u0000_is_not_a_nul(client: TestClient, engine: Engine) -> None:
    headers = bearer(add_token(engine, Role.admin))
    body = {"code": "A", "name": "C:\\u0000", "timezone": "WIB"}
    response = client.post("/api/v1/opds", json=body, headers=headers)
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "C:\\u0000"


def test_offset_past_the_id_range_is_422_not_500(client: TestClient, engine: Engine) -> None:
    headers = bearer(add_token(engine, Role.admin))
    assert client.get("/api/v1/audit?offset=2147483647", headers=headers).status_code == 200
    response = client.get(f"/api/v1/audit?offset={2**63}", headers=headers)
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "query.offset"


def test_nul_in_a_query_parameter_the_route_ignores_is_ignored(
    client: TestClient, engine: Engine
) -> None:
    headers = bearer(add_token(engine, Role.admin))
    assert client.get("/api/v1/opds?unused=a%00b", headers=headers).status_code == 200
