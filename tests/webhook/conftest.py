"""Webhook fixtures: an app secret and verify token, and a fake that records replies."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine

from app.config import Settings
from app.messaging.results import SendOutcome, SendResult
from app.webhook.replies import has_link
from tests.factories import add_opd

APP_SECRET = "uji-app-secret-1234567890abcdef"
VERIFY_TOKEN = "uji-verify-token"
URL = re.compile(r"https?://|www\.|\b[a-z0-9-]+\.(?:go\.id|id|com|net|org)\b", re.IGNORECASE)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "whatsapp_app_secret": SecretStr(APP_SECRET),
            "whatsapp_verify_token": SecretStr(VERIFY_TOKEN),
        }
    )


class FakeWhatsApp:
    """Stands in for app.state.whatsapp: records replies instead of sending them."""

    def __init__(self) -> None:
        self.replies: list[tuple[str, str]] = []

    async def send_reply(self, *, to: str, body: str) -> SendResult:
        assert not has_link(body), "a reply must never contain a link"
        assert not URL.search(body), "a reply must never contain a link"
        self.replies.append((to, body))
        return SendResult(SendOutcome.ACCEPTED, "accepted", wamid="wamid.fake")

    def to(self, e164: str) -> list[str]:
        return [body for to, body in self.replies if to == e164]


@pytest.fixture
def wa(api: FastAPI, client: TestClient) -> Iterator[FakeWhatsApp]:
    """The fake, installed after start-up; the real messenger is put back for shutdown."""
    original = api.state.whatsapp
    fake = FakeWhatsApp()
    api.state.whatsapp = fake
    yield fake
    api.state.whatsapp = original


@pytest.fixture
def opd(engine: Engine) -> str:
    add_opd(engine, "DINKES", "Dinas Kesehatan")
    return "DINKES"
