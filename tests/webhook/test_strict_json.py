"""The webhook reads standard JSON only: NaN and Infinity are refused, nothing is acted on."""

import json

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from tests.webhook.conftest import FakeWhatsApp
from tests.webhook.payloads import inbound, post, text


def _help_request(number: str) -> bytes:
    """A BANTUAN message (it gets a reply) with `number` written raw into the message."""
    body = json.dumps(inbound(text("6281298765432", "BANTUAN")))
    return body.replace('"timestamp": "', f'"price": {number}, "timestamp": "', 1).encode()


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_signed_body_with_non_standard_constant_is_400(
    client: TestClient, settings: Settings, wa: FakeWhatsApp, constant: str
) -> None:
    # The same message with a valid number where the constant goes is answered normally.
    assert post(client, settings, _help_request("1.5")).status_code == 200
    replies = len(wa.replies)
    assert replies == 1
    response = post(client, settings, _help_request(constant))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"
    assert len(wa.replies) == replies  # the keyword in the refused body got no reply


def test_unsigned_nan_body_is_still_401(client: TestClient, settings: Settings) -> None:
    body = b'{"object": "whatsapp_business_account", "entry": NaN}'
    assert post(client, settings, body, signature=None).status_code == 401
