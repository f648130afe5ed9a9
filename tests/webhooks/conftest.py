"""Webhook tests deliver to receivers on 127.0.0.1: allowed here by configuration, as an
on-premise install would allow its own network."""

from collections.abc import Iterator

import pytest

from app.core.config import get_settings


@pytest.fixture
def allow_local_targets(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("KEHU_WEBHOOK_ALLOW_NETS", "127.0.0.0/8")
    monkeypatch.setenv("KEHU_WEBHOOK_ALLOW_HTTP", "true")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
