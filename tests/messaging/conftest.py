"""Fixtures for messaging tests: Graph config, a respx router and a sync runner."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import pytest
import respx

from app.messaging.client import GraphConfig, WhatsAppClient, build_http_client

T = TypeVar("T")

PHONE_NUMBER_ID = "106540352242922"
WABA_ID = "419561257915477"
ACCESS_TOKEN = "EAAG-test-token-do-not-log"
RECIPIENT = "+6281234567890"


@dataclass(frozen=True)
class Harness:
    """Runs a coroutine against a WhatsAppClient built on a fresh shared AsyncClient."""

    config: GraphConfig

    def run(self, action: Callable[[WhatsAppClient], Awaitable[T]]) -> T:
        """Execute `action(client)` in its own event loop (no pytest-asyncio here)."""

        async def main() -> T:
            async with build_http_client(
                base_url=self.config.base_url,
                connect_timeout=1.0,
                read_timeout=2.0,
                max_connections=4,
            ) as http:
                return await action(WhatsAppClient(http, self.config))

        return asyncio.run(main())


@pytest.fixture
def config() -> GraphConfig:
    """Graph settings with the default base URL and API version."""
    return GraphConfig(phone_number_id=PHONE_NUMBER_ID, waba_id=WABA_ID, access_token=ACCESS_TOKEN)


@pytest.fixture
def wa(config: GraphConfig) -> Harness:
    """Runner bound to the default config."""
    return Harness(config)


@pytest.fixture
def graph() -> Iterator[respx.MockRouter]:
    """respx router for graph.facebook.com; any unmocked request fails the test."""
    with respx.mock(
        base_url="https://graph.facebook.com", assert_all_mocked=True, assert_all_called=False
    ) as router:
        yield router
