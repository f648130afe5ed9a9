"""The co-purchase statistics of the refresh step on the hand-computed shop (tests/recommendations/
shop.py): exact support, confidence and lift, the pair threshold, top partners, cancelled orders,
the as_of cutoff, and a re-run replacing the statistics."""

from datetime import date
from decimal import Decimal
from typing import Any

import httpx2 as httpx
import pytest
from sqlalchemy import text

from app.core.config import get_settings
from app.db import read_connection
from app.recommendations import stats
from tests.recommendations.shop import N, build_shop, line, order, post_orders

AS_OF = date(2026, 6, 30)


async def stored() -> tuple[dict[str, dict[str, Any]], dict[tuple[str, str], dict[str, Any]]]:
    async with read_connection() as conn:
        items = {
            row.sku: dict(row._mapping)
            for row in await conn.execute(text("SELECT * FROM item_stats"))
        }
        pairs = {
            (row.sku, row.other_sku): dict(row._mapping)
            for row in await conn.execute(text("SELECT * FROM item_pairs"))
        }
    return items, pairs


def pair(together: int, n: int, with_sku: int, with_other: int) -> dict[str, Any]:
    return {
        "orders_together": together,
        "support": pytest.approx(together / n, rel=1e-12),
        "confidence": pytest.approx(together / with_sku, rel=1e-12),
        "lift": pytest.approx((together / with_sku) / (with_other / n), rel=1e-12),
    }


def measures(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in ("orders_together", "support", "confidence", "lift")}


async def test_item_statistics_and_pairs_are_the_hand_computed_ones(
    client: httpx.AsyncClient,
) -> None:
    await build_shop(client)

    figures = await stats.refresh(as_of=AS_OF, refresh_id=None)

    assert {k: figures[k] for k in ("skus", "pairs", "orders")} == {
        "skus": 5,
        "pairs": 4,
        "orders": N,
    }
    assert isinstance(figures["seconds"], float)
    items, pairs = await stored()
    # RARE was only in the cancelled order; o10 (at the cutoff) and o9 (cancelled) count nowhere.
    assert {
        sku: (r["order_count"], r["customer_count"], r["average_unit_price"])
        for sku, r in items.items()
    } == {
        # TEA: 8 units for 410.00 (o8 lists it on two lines: one order, both lines' units).
        "TEA": (6, 4, Decimal("51.25")),
        "CUP": (5, 4, Decimal("20.00")),
        "HONEY": (2, 2, Decimal("30.00")),
        "POT": (1, 1, Decimal("100.00")),
        "GIFT": (1, 1, Decimal("80.00")),
    }
    # The latest name and category each was sold under, skipping lines without one: o8 sold CUP
    # with neither, o6 with a name only.
    assert (items["TEA"]["name"], items["TEA"]["category"]) == ("Oolong tea", "tea")
    assert (items["CUP"]["name"], items["CUP"]["category"]) == ("Cup v2", "teaware")
    assert {r["refreshed_at"] for r in items.values()} == {items["TEA"]["refreshed_at"]}

    # Bought together in at least 2 orders (the default): TEA-CUP 4 times, TEA-HONEY twice; both
    # directions stored, lift symmetric.
    assert {k: measures(v) for k, v in pairs.items()} == {
        ("TEA", "CUP"): pair(4, N, 6, 5),
        ("CUP", "TEA"): pair(4, N, 5, 6),
        ("TEA", "HONEY"): pair(2, N, 6, 2),
        ("HONEY", "TEA"): pair(2, N, 2, 6),
    }
    assert pairs[("TEA", "CUP")]["lift"] == pairs[("CUP", "TEA")]["lift"] == 32 / 30
    assert pairs[("HONEY", "TEA")]["confidence"] == 1.0


async def test_the_pair_threshold_and_the_top_partners(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await build_shop(client)
    monkeypatch.setenv("KEHU_RECOMMENDATIONS_MIN_PAIR_ORDERS", "1")
    get_settings.cache_clear()
    try:
        assert (await stats.refresh(as_of=AS_OF, refresh_id=None))["pairs"] == 8
        _, pairs = await stored()
        assert measures(pairs[("CUP", "HONEY")]) == pair(1, N, 5, 2)
        assert measures(pairs[("POT", "TEA")]) == pair(1, N, 1, 6)

        # TEA's partners by lift, then confidence: HONEY and POT tie on lift 4/3, HONEY has the
        # higher confidence (2/6 against 1/6); CUP's lift is 16/15.
        monkeypatch.setattr(stats, "TOP_PARTNERS", 2)
        assert (await stats.refresh(as_of=AS_OF, refresh_id=None))["pairs"] == 7
        _, pairs = await stored()
        assert sorted(other for sku, other in pairs if sku == "TEA") == ["HONEY", "POT"]

        monkeypatch.setattr(stats, "TOP_PARTNERS", 1)
        await stats.refresh(as_of=AS_OF, refresh_id=None)
        _, pairs = await stored()
        assert sorted(pairs) == [
            ("CUP", "TEA"),
            ("HONEY", "TEA"),
            ("POT", "TEA"),
            ("TEA", "HONEY"),
        ]
    finally:
        get_settings.cache_clear()


async def test_as_of_cuts_the_history_and_a_rerun_replaces_the_statistics(
    client: httpx.AsyncClient,
) -> None:
    ids = await build_shop(client)
    await stats.refresh(as_of=AS_OF, refresh_id=None)

    # As of the day before, o8 (2026-06-30 23:59:59) is not counted yet: N = 7.
    figures = await stats.refresh(as_of=date(2026, 6, 29), refresh_id=None)
    assert (figures["orders"], figures["skus"], figures["pairs"]) == (7, 5, 4)
    items, pairs = await stored()
    assert (items["TEA"]["order_count"], items["CUP"]["order_count"]) == (5, 4)
    assert items["TEA"]["name"] == "Tea"
    assert measures(pairs[("TEA", "CUP")]) == pair(3, 7, 5, 4)
    assert measures(pairs[("HONEY", "TEA")]) == pair(2, 7, 2, 5)

    # The same refresh twice gives the same rows, not twice as many.
    await stats.refresh(as_of=AS_OF, refresh_id=None)
    first = await stored()
    await stats.refresh(as_of=AS_OF, refresh_id=None)
    again = await stored()
    assert {k: measures(v) for k, v in again[1].items()} == {
        k: measures(v) for k, v in first[1].items()
    }
    assert len(again[0]) == 5

    # A new order moves the figures on the next refresh only.
    await post_orders(
        client,
        order(ids["F"], "2026-06-15T08:00:00Z", line("GIFT", "80.00"), line("POT", "100.00")),
        order(ids["A"], "2026-06-16T08:00:00Z", line("GIFT", "80.00"), line("POT", "100.00")),
    )
    assert (await stored())[0]["GIFT"]["order_count"] == 1
    figures = await stats.refresh(as_of=AS_OF, refresh_id=None)
    assert (figures["orders"], figures["pairs"]) == (N + 2, 6)
    items, pairs = await stored()
    assert items["GIFT"]["order_count"] == 3
    assert measures(pairs[("GIFT", "POT")]) == pair(2, N + 2, 3, 3)

    # Before any order: no statistics at all (the old ones are gone, not kept).
    figures = await stats.refresh(as_of=date(2026, 4, 30), refresh_id=None)
    assert (figures["orders"], figures["skus"], figures["pairs"]) == (0, 0, 0)
    assert await stored() == ({}, {})
