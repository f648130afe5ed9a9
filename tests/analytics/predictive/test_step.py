"""The predictive refresh step over the database: summaries as defined, fits stored and served,
every customer's predictions written chunk by chunk, the holdout check, and the cases where there
is too little to fit."""

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import httpx2 as httpx
import numpy as np
import pytest
from sqlalchemy import text

from app.analytics.predictive import bgnbd, gamma_gamma, repository, step
from app.analytics.rules import cutoff_of
from app.core.config import get_settings
from app.db import read_connection
from tests.analytics.predictive.helpers import (
    SeedOrder,
    Summary,
    customer_id,
    seed,
    simulated_orders,
    summaries,
)
from tests.fixtures.api import gql

AS_OF = date(2026, 2, 28)
D = Decimal


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


# Hand-made histories around the edges of the definitions.
EDGES = [
    # Two orders on one UTC day are one purchase of 150; a refund counts against its day; a
    # cancelled order is no purchase; an order after the cutoff is not seen.
    SeedOrder("edge-a", _at("2026-01-05T10:00:00+00:00"), D("100.00")),
    SeedOrder("edge-a", _at("2026-01-05T23:00:00+00:00"), D("50.00")),
    SeedOrder("edge-a", _at("2026-01-19T22:30:00-02:00"), D("80.00"), refunded=D("30.00")),
    SeedOrder("edge-a", _at("2026-02-02T09:00:00+00:00"), D("999.00"), status="cancelled"),
    SeedOrder("edge-a", _at("2026-03-01T00:00:00+00:00"), D("70.00")),
    # The last second of as_of counts, and is the same UTC day as its first order.
    SeedOrder("edge-b", _at("2026-02-28T00:00:00+00:00"), D("20.00")),
    SeedOrder("edge-b", _at("2026-02-28T23:59:59+00:00"), D("20.00")),
    # Only after the cutoff: no predictions.
    SeedOrder("edge-c", _at("2026-03-02T12:00:00+00:00"), D("35.00")),
]


@pytest.fixture
def configure(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    def set_env(**values: Any) -> None:
        for name, value in values.items():
            monkeypatch.setenv(f"KEHU_{name.upper()}", str(value))
        get_settings.cache_clear()

    yield set_env
    monkeypatch.undo()
    get_settings.cache_clear()


async def _metrics() -> dict[uuid.UUID, dict[str, Any]]:
    async with read_connection() as conn:
        rows = await conn.execute(
            text(
                "SELECT customer_id, p_alive, churn_risk, expected_purchases_90d,"
                " expected_purchases_365d, expected_order_value, clv_12m FROM customer_metrics"
            )
        )
        return {row.customer_id: dict(row._mapping) for row in rows}


def _arrays(found: dict[str, Summary]) -> tuple[np.ndarray, ...]:
    ordered = [found[name] for name in sorted(found)]
    x = np.array([s.x for s in ordered], dtype=float)
    t_x = np.array([s.t_x_days for s in ordered], dtype=float)
    age = np.array([s.age_days for s in ordered], dtype=float)
    m = np.array([np.nan if s.repeat_mean is None else s.repeat_mean for s in ordered])
    return x, t_x, age, m


async def test_summaries_follow_the_definitions(database_url: str) -> None:
    await seed(EDGES)
    async with read_connection() as conn:
        chunk = await repository.customer_chunk(
            conn,
            after=None,
            chunk_size=10,
            cutoff=cutoff_of(AS_OF),
            calibration_end=AS_OF,
        )
    assert chunk is not None
    got = {
        cid: (s_x, t_x, age, None if np.isnan(m) else m)
        for cid, s_x, t_x, age, m in zip(
            chunk.customer_ids,
            chunk.summaries.x,
            chunk.summaries.t_x_days,
            chunk.summaries.age_days,
            chunk.summaries.repeat_mean,
            strict=True,
        )
    }
    # edge-a: purchase days 01-05 (150) and 01-20 UTC (80 - 30); age from 01-05 to 02-28.
    assert got[customer_id("edge-a")] == (1, 15, 54, 50.0)
    assert got[customer_id("edge-b")] == (0, 0, 0, None)
    assert np.isnan(got[customer_id("edge-c")][0])
    expected = summaries(EDGES, as_of=AS_OF)
    assert expected["edge-a"] == Summary(x=1, t_x_days=15, age_days=54, repeat_mean=50.0)
    assert chunk.customer_ids == sorted(chunk.customer_ids)


async def test_refresh_fits_both_models_and_predicts_every_customer(
    database_url: str, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    orders = EDGES + simulated_orders(
        np.random.default_rng(9), 150, start=date(2025, 3, 1), end=date(2026, 3, 20)
    )
    await seed(orders, customers_without_orders=2)
    # Small chunks: the keyset walk must reach every customer across chunk edges.
    monkeypatch.setattr(step, "CHUNK_SIZE", 7)
    refresh_id = uuid.uuid4()
    figures = await step.refresh(as_of=AS_OF, refresh_id=refresh_id)

    expected = summaries(orders, as_of=AS_OF)
    x, t_x, age, m = _arrays(expected)
    unit = get_settings().model_time_unit_days
    bg_fit = bgnbd.fit(x, t_x / unit, age / unit)
    repeat = x > 0
    gg_fit = gamma_gamma.fit(x[repeat], m[repeat])
    assert figures["fitted"] is True
    assert figures["customers"] == len(expected)
    assert figures["repeat_buyers"] == gg_fit.n
    # Every customer with a metrics row (a non-cancelled order at any time) is written.
    assert figures["rows"] == len({o.customer for o in orders if o.status != "cancelled"})

    listed = (await client.get("/v1/analytics/models")).json()["data"]
    assert [fit["kind"] for fit in listed] == ["bg_nbd", "gamma_gamma"]
    bg, gg = listed
    assert bg["params"] == pytest.approx(bg_fit.params, rel=1e-6)
    assert gg["params"] == pytest.approx(gg_fit.params, rel=1e-6)
    assert bg["log_likelihood"] == pytest.approx(bg_fit.log_likelihood, rel=1e-9)
    assert (bg["sample_size"], gg["sample_size"]) == (len(expected), gg_fit.n)
    first_day = min(o.at.date() for o in orders if o.status != "cancelled")
    assert bg["calibration_start"] == first_day.isoformat()
    assert bg["calibration_end"] == AS_OF.isoformat()
    assert bg["time_unit_days"] == unit
    assert bg["converged"] is True
    assert bg["refresh_id"] == str(refresh_id)
    assert bg["holdout"] is None
    assert bg["fit_seconds"] > 0

    bg_params = bgnbd.params_from(bg["params"])
    gg_params = gamma_gamma.params_from(gg["params"])
    metrics = await _metrics()
    rate = get_settings().clv_monthly_discount_rate
    for name, summary in expected.items():
        row = metrics[customer_id(name)]
        args = (summary.x, summary.t_x_days / unit, summary.age_days / unit)
        alive = float(bgnbd.p_alive(bg_params, *args))
        assert row["p_alive"] == pytest.approx(alive, rel=1e-9)
        assert row["churn_risk"] == pytest.approx(1 - alive, rel=1e-9, abs=1e-12)
        assert row["expected_purchases_90d"] == pytest.approx(
            float(bgnbd.expected_purchases(bg_params, 90 / unit, *args)), rel=1e-9
        )
        assert row["expected_purchases_365d"] == pytest.approx(
            float(bgnbd.expected_purchases(bg_params, 365 / unit, *args)), rel=1e-9
        )
        if summary.repeat_mean is None:
            value = gg_params.population_mean
        else:
            value = (
                (gg_params.gamma + summary.repeat_mean * summary.x)
                * gg_params.p
                / (gg_params.p * summary.x + gg_params.q - 1)
            )
        assert float(row["expected_order_value"]) == pytest.approx(value, abs=0.006)
        # Month by month: the purchases expected in month k, discounted k months.
        months = [k * 365.25 / 12 / unit for k in range(13)]
        cumulative = [float(bgnbd.expected_purchases(bg_params, t, *args)) for t in months]
        clv = sum(
            (cumulative[k] - cumulative[k - 1]) * value / (1 + rate) ** k for k in range(1, 13)
        )
        assert float(row["clv_12m"]) == pytest.approx(clv, abs=0.006)
    # A customer without purchases before the cutoff, or without orders at all, gets nothing.
    assert set(metrics[customer_id("edge-c")].values()) == {customer_id("edge-c"), None}
    assert customer_id("no-orders-0") not in metrics

    graphql = await gql(client, "{ analyticsModels { kind params sampleSize holdout { days } } }")
    assert [fit["kind"] for fit in graphql["data"]["analyticsModels"]] == ["BG_NBD", "GAMMA_GAMMA"]
    assert graphql["data"]["analyticsModels"][0]["params"] == bg["params"]


async def test_the_newest_fit_of_each_kind_is_served(
    database_url: str, client: httpx.AsyncClient
) -> None:
    assert (await client.get("/v1/analytics/models")).json() == {"data": []}
    orders = simulated_orders(
        np.random.default_rng(3), 60, start=date(2025, 6, 1), end=date(2026, 2, 1)
    )
    await seed(orders)
    await step.refresh(as_of=date(2026, 1, 1), refresh_id=None)
    await step.refresh(as_of=AS_OF, refresh_id=None)
    listed = (await client.get("/v1/analytics/models")).json()["data"]
    assert [(fit["kind"], fit["calibration_end"]) for fit in listed] == [
        ("bg_nbd", AS_OF.isoformat()),
        ("gamma_gamma", AS_OF.isoformat()),
    ]
    async with read_connection() as conn:
        stored = (await conn.execute(text("SELECT count(*) FROM analytics_model_fits"))).scalar()
    assert stored == 4


async def test_models_need_the_analytics_read_scope(
    database_url: str, anon: httpx.AsyncClient, make_key: Any
) -> None:
    orders_key = await make_key("orders:read")
    response = await anon.get(
        "/v1/analytics/models", headers={"Authorization": f"Bearer {orders_key}"}
    )
    assert response.status_code == 403
    reader = await make_key("analytics:read")
    response = await anon.get("/v1/analytics/models", headers={"Authorization": f"Bearer {reader}"})
    assert response.status_code == 200


async def test_holdout_compares_predicted_and_actual_purchases(
    database_url: str, configure: Any
) -> None:
    configure(model_holdout_days=30)
    orders = simulated_orders(
        np.random.default_rng(11), 120, start=date(2025, 3, 1), end=date(2026, 3, 1)
    )
    await seed(orders)
    figures = await step.refresh(as_of=AS_OF, refresh_id=None)

    calibration = summaries(orders, as_of=AS_OF, holdout_days=30)
    x, t_x, age, _m = _arrays(calibration)
    bg_fit = bgnbd.fit(x, t_x / 7, age / 7)
    holdout = figures["holdout"]
    fitted = {name: figures["bg_nbd"][name] for name in bgnbd.PARAM_NAMES}
    assert fitted == pytest.approx(bg_fit.params, rel=1e-6)
    predicted = bgnbd.expected_purchases(
        bgnbd.params_from(bg_fit.params), 30 / 7, x, t_x / 7, age / 7
    ).sum()
    actual = sum(s.holdout_days for s in calibration.values())
    assert actual > 0
    assert holdout["days"] == 30
    assert holdout["customers"] == len(calibration)
    assert holdout["actual"] == actual
    assert holdout["predicted"] == pytest.approx(predicted, abs=1e-3)
    assert holdout["error_pct"] == pytest.approx((predicted - actual) / actual * 100, abs=1e-3)
    async with read_connection() as conn:
        ends = (
            await conn.execute(
                text(
                    "SELECT kind, calibration_end, holdout FROM analytics_model_fits ORDER BY kind"
                )
            )
        ).all()
    assert [(kind, end) for kind, end, _ in ends] == [
        ("bg_nbd", date(2026, 1, 29)),
        ("gamma_gamma", date(2026, 1, 29)),
    ]
    assert ends[0].holdout == holdout
    assert ends[1].holdout is None


async def test_the_sample_is_bounded_and_the_same_every_run(
    database_url: str, configure: Any
) -> None:
    configure(model_sample_size=100)
    orders = simulated_orders(
        np.random.default_rng(5), 160, start=date(2025, 3, 1), end=date(2026, 3, 1)
    )
    await seed(orders)
    first = await step.refresh(as_of=AS_OF, refresh_id=None)
    second = await step.refresh(as_of=AS_OF, refresh_id=None)
    assert first["customers"] == 100
    assert first["bg_nbd"] == second["bg_nbd"]
    # Predictions still cover every customer with a purchase, sampled or not.
    assert first["rows"] == len({o.customer for o in orders if o.status != "cancelled"})
    metrics = await _metrics()
    with_purchases = summaries(orders, as_of=AS_OF)
    assert all(metrics[customer_id(name)]["p_alive"] is not None for name in with_purchases)


async def test_too_little_data_fits_nothing(database_url: str) -> None:
    few = [
        SeedOrder(f"few-{n}", datetime(2026, 1, 1 + n, tzinfo=UTC), D("10.00")) for n in range(5)
    ]
    await seed(few)
    assert await step.refresh(as_of=AS_OF, refresh_id=None) == {
        "fitted": False,
        "reason": "too_few_customers",
        "customers": 5,
    }
    one_time = [
        SeedOrder(f"once-{n}", datetime(2026, 1, 1 + n, tzinfo=UTC), D("10.00")) for n in range(25)
    ]
    await seed(one_time)
    assert await step.refresh(as_of=AS_OF, refresh_id=None) == {
        "fitted": False,
        "reason": "no_repeat_buyers",
        "customers": 30,
    }
    async with read_connection() as conn:
        fits = (await conn.execute(text("SELECT count(*) FROM analytics_model_fits"))).scalar()
        predicted = (
            await conn.execute(
                text("SELECT count(*) FROM customer_metrics WHERE p_alive IS NOT NULL")
            )
        ).scalar()
    assert (fits, predicted) == (0, 0)
