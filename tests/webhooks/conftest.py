"""Webhook tests deliver to receivers on 127.0.0.1: allowed here by configuration, as an
on-premise install would allow its own network."""

from collections.abc import AsyncIterator, Iterator

import httpx2 as httpx
import pytest

from app.core.config import get_settings
from app.webhooks import delivery, service
from tests.fixtures.receiver import Receiver, running_receiver


@pytest.fixture
def allow_local_targets(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("KEHU_WEBHOOK_ALLOW_NETS", "127.0.0.0/8")
    monkeypatch.setenv("KEHU_WEBHOOK_ALLOW_HTTP", "true")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A partner's receiver on 127.0.0.1 (answers 200 until told otherwise)."""
    async with running_receiver() as running:
        yield running


@pytest.fixture
async def sender() -> AsyncIterator[httpx.AsyncClient]:
    """The HTTP client deliveries go out with (SSRF guard and all), under the test's settings."""
    async with delivery.new_client(service.target_policy()) as client:
        yield client
