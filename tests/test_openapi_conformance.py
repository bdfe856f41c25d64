"""The OpenAPI document tells the truth: schemathesis calls every operation in-process.

A bounded, derandomised number of examples per operation, as admin and as coordinator, on
SQLite and PostgreSQL: no answer may be a 500, and every answer must match the document
(status code, content type, headers, body schema). Every documented operation runs in-process
and none is left out; the sandbox's fake Graph API and the pages (console, dashboard) are not in
the document, so they are not called.
"""

from datetime import UTC, datetime

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi import checks
from sqlalchemy import Engine

from app.auth.models import Role
from tests.factories import add_campaign, add_opd, add_template, add_token, bearer

EXAMPLES_PER_OPERATION = 25
# What the service answers: no 500, and status, content type, headers and body as documented;
# a request without the token is refused. Not `positive_data_acceptance`: the document cannot say
# everything input validation checks (a phone number that parses, a template's placeholders).
CHECKS = [
    not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
    checks.ignored_auth,
]


@pytest.fixture(params=[Role.admin, Role.coordinator], ids=lambda r: r.value)
def caller(request: pytest.FixtureRequest, engine: Engine) -> dict[str, str]:
    """A bearer header for the role, with an OPD, a template and a campaign to act on."""
    add_opd(engine, "DINKES")
    template_id = add_template(engine)
    add_campaign(engine, template_id=template_id, now=datetime(2026, 2, 1, tzinfo=UTC))
    role: Role = request.param
    return bearer(add_token(engine, role, "DINKES" if role is Role.coordinator else None))


def _causes(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "\n".join(_causes(e) for e in exc.exceptions)
    return str(exc)


def _failures(api: FastAPI, headers: dict[str, str]) -> tuple[int, list[str]]:
    spec = schemathesis.openapi.from_asgi("/openapi.json", api)
    failures = []
    called = 0
    for result in spec.get_all_operations():
        operation = result.ok()
        called += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.explicit, Phase.generate],
        )
        def call(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            call()
        except (Exception, BaseExceptionGroup) as exc:
            failures.append(f"{operation.label}: {exc}\n{_causes(exc)}")
    return called, failures


def test_every_operation_answers_as_documented(api: FastAPI, caller: dict[str, str]) -> None:
    called, failures = _failures(api, caller)
    documented = sum(len(operations) for operations in api.openapi()["paths"].values())
    assert called == documented
    assert not failures, "\n\n".join(failures)
