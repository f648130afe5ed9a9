"""The refresh step that fits the models and writes every customer's predictions (docs/analytics-models.md).

1. The fitting sample (``model_sample_size`` customers, pseudo-random but the same on every run)
   is summarised by PostgreSQL; BG/NBD is fitted on it, Gamma-Gamma on its repeat buyers, in a
   thread (the fit is CPU-bound and must not stall the worker's event loop). With
   ``model_holdout_days`` the calibration ends that many days before ``as_of`` and the fit's
   predicted purchases in the days after are compared with the actual ones.
2. Both fits are stored in ``analytics_model_fits``.
3. Every customer of ``customer_metrics`` is streamed in chunks (keyset by customer_id, one short
   transaction each): summary in SQL, predictions in numpy, one UPDATE per chunk.
"""

import asyncio
import uuid
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np

from app.analytics import repository as analytics_repository
from app.analytics.enums import ModelKind
from app.analytics.predictive import bgnbd, gamma_gamma, repository
from app.analytics.predictive.bgnbd import Array, BgNbdParams
from app.analytics.predictive.gamma_gamma import GammaGammaParams
from app.analytics.predictive.mle import FitResult
from app.analytics.predictive.repository import Summaries
from app.analytics.rules import cutoff_of
from app.core import clock
from app.core.config import get_settings
from app.db import read_connection, unit_of_work

# Fewer customers than this say nothing reliable about four parameters.
MIN_CUSTOMERS = 20
CHUNK_SIZE = 20_000
MONTH_DAYS = 365.25 / 12
CLV_MONTHS = 12
# Numeric(16, 2): a figure beyond it is not a prediction anyone can use.
MAX_MONEY = 1e13


def predict(
    bg: BgNbdParams,
    gg: GammaGammaParams,
    summaries: Summaries,
    *,
    unit_days: int,
    monthly_discount_rate: float,
) -> dict[str, Array]:
    """Each customer's predictions from their summary (NaN, stored as NULL, for a customer
    without a purchase before the cutoff)."""
    x = summaries.x
    known = np.isfinite(x)
    x = np.where(known, x, 0.0)
    t_x = np.where(known, summaries.t_x_days, 0.0) / unit_days
    age = np.where(known, summaries.age_days, 0.0) / unit_days
    repeat_mean = np.where(np.isfinite(summaries.repeat_mean), summaries.repeat_mean, 0.0)

    alive = bgnbd.p_alive(bg, x, t_x, age)
    expected_90 = bgnbd.expected_purchases(bg, 90 / unit_days, x, t_x, age)
    expected_365 = bgnbd.expected_purchases(bg, 365 / unit_days, x, t_x, age)
    order_value = gamma_gamma.expected_order_value(gg, x, repeat_mean)

    clv = np.zeros_like(x)
    previous = np.zeros_like(x)
    for month in range(1, CLV_MONTHS + 1):
        cumulative = bgnbd.expected_purchases(bg, month * MONTH_DAYS / unit_days, x, t_x, age)
        clv += (cumulative - previous) / (1 + monthly_discount_rate) ** month
        previous = cumulative
    clv *= order_value

    def known_only(values: Array) -> Array:
        result: Array = np.where(known, values, np.nan)
        return result

    def money(values: Array) -> Array:
        return known_only(np.where(np.abs(values) < MAX_MONEY, values, np.nan))

    return {
        "p_alive": known_only(alive),
        "churn_risk": known_only(1 - alive),
        "expected_purchases_90d": known_only(expected_90),
        "expected_purchases_365d": known_only(expected_365),
        "expected_order_value": money(order_value),
        "clv_12m": money(clv),
    }


def _fit_both(sample: Summaries, unit_days: int) -> tuple[FitResult, FitResult | None]:
    x = sample.x
    bg = bgnbd.fit(x, sample.t_x_days / unit_days, sample.age_days / unit_days)
    repeat = (x > 0) & (sample.repeat_mean > 0)
    if not repeat.any():
        return bg, None
    return bg, gamma_gamma.fit(x[repeat], sample.repeat_mean[repeat])


def _holdout(
    fit: FitResult, sample: Summaries, *, unit_days: int, holdout_days: int
) -> dict[str, Any]:
    params = bgnbd.params_from(fit.params)
    predicted = float(
        bgnbd.expected_purchases(
            params,
            holdout_days / unit_days,
            sample.x,
            sample.t_x_days / unit_days,
            sample.age_days / unit_days,
        ).sum()
    )
    actual = int(sample.holdout_days.sum())
    return {
        "days": holdout_days,
        "customers": sample.size,
        "predicted": round(predicted, 3),
        "actual": actual,
        "error_pct": round((predicted - actual) / actual * 100, 3) if actual else None,
    }


def _fit_row(
    kind: ModelKind,
    fit: FitResult,
    *,
    refresh_id: uuid.UUID | None,
    unit_days: int,
    calibration_start: date | None,
    calibration_end: date,
    fitted_at: datetime,
    holdout: dict[str, Any] | None,
) -> dict[str, Any]:
    return {
        "kind": kind.value,
        "refresh_id": refresh_id,
        "params": fit.params,
        "sample_size": fit.n,
        "log_likelihood": fit.log_likelihood,
        "converged": fit.converged,
        "time_unit_days": unit_days,
        "calibration_start": calibration_start,
        "calibration_end": calibration_end,
        "fitted_at": fitted_at,
        "fit_seconds": round(fit.seconds, 4),
        "holdout": holdout,
    }


async def refresh(*, as_of: date, refresh_id: uuid.UUID | None) -> dict[str, Any]:
    settings = get_settings()
    unit_days = settings.model_time_unit_days
    holdout_days = settings.model_holdout_days
    cutoff = cutoff_of(as_of)
    calibration_end = as_of - timedelta(days=holdout_days)

    async with read_connection() as conn:
        sample = await repository.fitting_sample(
            conn,
            cutoff=cutoff,
            calibration_end=calibration_end,
            sample_size=settings.model_sample_size,
        )
        calibration_start = await repository.first_purchase_day(
            conn, cutoff=cutoff_of(calibration_end)
        )
    if sample.size < MIN_CUSTOMERS:
        return {"fitted": False, "reason": "too_few_customers", "customers": sample.size}
    if not ((sample.x > 0) & (sample.repeat_mean > 0)).any():
        return {"fitted": False, "reason": "no_repeat_buyers", "customers": sample.size}

    bg_fit, gg_fit = await asyncio.to_thread(_fit_both, sample, unit_days)
    assert gg_fit is not None  # repeat buyers were checked above
    for fit in (bg_fit, gg_fit):
        # A diverged optimiser leaves infinities JSON cannot hold and nobody could use.
        if not all(np.isfinite(v) for v in (*fit.params.values(), fit.log_likelihood)):
            return {"fitted": False, "reason": "fit_diverged", "customers": sample.size}
    holdout = (
        _holdout(bg_fit, sample, unit_days=unit_days, holdout_days=holdout_days)
        if holdout_days
        else None
    )
    fitted_at = clock.now()
    async with unit_of_work() as conn:
        for kind, fit, checked in (
            (ModelKind.BG_NBD, bg_fit, holdout),
            (ModelKind.GAMMA_GAMMA, gg_fit, None),
        ):
            await repository.insert_fit(
                conn,
                _fit_row(
                    kind,
                    fit,
                    refresh_id=refresh_id,
                    unit_days=unit_days,
                    calibration_start=calibration_start,
                    calibration_end=calibration_end,
                    fitted_at=fitted_at,
                    holdout=checked,
                ),
            )

    bg = bgnbd.params_from(bg_fit.params)
    gg = gamma_gamma.params_from(gg_fit.params)
    predicted = 0
    after: uuid.UUID | None = None
    while True:
        # One short transaction per chunk: orders written meanwhile wait on its row locks for
        # one UPDATE at most.
        async with unit_of_work() as conn:
            await analytics_repository.tune_for_bulk(conn)
            chunk = await repository.customer_chunk(
                conn,
                after=after,
                chunk_size=CHUNK_SIZE,
                cutoff=cutoff,
                calibration_end=as_of,
            )
            if chunk is None:
                break
            values = predict(
                bg,
                gg,
                chunk.summaries,
                unit_days=unit_days,
                monthly_discount_rate=settings.clv_monthly_discount_rate,
            )
            predicted += await repository.write_predictions(conn, chunk.customer_ids, values)
        after = chunk.last_key

    return {
        "fitted": True,
        "customers": sample.size,
        "repeat_buyers": gg_fit.n,
        "bg_nbd": {**bg_fit.params, "converged": bg_fit.converged},
        "gamma_gamma": {**gg_fit.params, "converged": gg_fit.converged},
        "fit_seconds": round(bg_fit.seconds + gg_fit.seconds, 4),
        "holdout": holdout,
        "rows": predicted,
    }
