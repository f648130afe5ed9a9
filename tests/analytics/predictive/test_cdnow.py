"""The published CDNOW fits, reproduced through the service's own code: the 2,357 customers and
their 6,919 purchase lines ingested with POST /v1/orders/batch (1,000 a request), the
predictive step run as of 1997-09-30 (39 weeks from 1997-01-01), and the fitted parameters within
1 % of Fader, Hardie & Lee (2005) (BG/NBD) and Fader & Hardie (2013) (Gamma-Gamma).

Data: tests/data/cdnow/README.md."""

import csv
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx2 as httpx
import numpy as np
import pytest
from sqlalchemy import text

from app.analytics.predictive import repository, step
from app.analytics.rules import cutoff_of
from app.core.config import get_settings
from app.db import read_connection, unit_of_work

DATA = Path(__file__).resolve().parents[2] / "data" / "cdnow"
AS_OF = date(1997, 9, 30)
PUBLISHED_BG_NBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PUBLISHED_GAMMA_GAMMA = {"p": 6.25, "q": 3.74, "gamma": 15.44}
BATCH = 1_000


def _lines() -> list[tuple[str, str, str]]:
    """(sample id, YYYYMMDD, dollars) per purchase line of CDNOW_sample.txt."""
    lines = []
    for raw in (DATA / "CDNOW_sample.txt").read_text().splitlines():
        _, sample_id, day, _, dollars = raw.split()
        lines.append((sample_id, day, dollars))
    return lines


@pytest.fixture
def whole_sample(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Weeks, as the published fit, and a sample that takes every customer."""
    monkeypatch.setenv("KEHU_MODEL_TIME_UNIT_DAYS", "7")
    monkeypatch.setenv("KEHU_MODEL_SAMPLE_SIZE", "5000")
    monkeypatch.setenv("KEHU_MODEL_HOLDOUT_DAYS", "0")
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


async def _ingest(client: httpx.AsyncClient, lines: list[tuple[str, str, str]]) -> None:
    sample_ids = sorted({sample_id for sample_id, _, _ in lines}, key=int)
    # The customers are only the orders' owners here, so they are written in one statement: the
    # customers' batch upsert would take ~9 s of the test for nothing this test checks.
    async with unit_of_work() as conn:
        rows = await conn.execute(
            text(
                "INSERT INTO customers (id, external_id)"
                " SELECT gen_random_uuid(), 'cdnow-' || sid FROM unnest(CAST(:ids AS text[])) sid"
                " RETURNING id, external_id"
            ),
            {"ids": sample_ids},
        )
        customers = {external_id.removeprefix("cdnow-"): str(id_) for id_, external_id in rows}

    currency = get_settings().currency
    orders: list[dict[str, Any]] = [
        {
            "customer_id": customers[sample_id],
            "source": "cdnow",
            "external_id": f"line-{number}",
            "occurred_at": f"{day[:4]}-{day[4:6]}-{day[6:]}T12:00:00Z",
            "total": {"amount": dollars, "currency": currency},
        }
        for number, (sample_id, day, dollars) in enumerate(lines, start=1)
    ]
    for start in range(0, len(orders), BATCH):
        response = await client.post(
            "/v1/orders/batch", json={"items": orders[start : start + BATCH]}
        )
        assert response.status_code == 200, response.text
        assert response.json()["errors"] == 0, response.text


async def test_cdnow_fits_match_the_published_parameters(
    client: httpx.AsyncClient, whole_sample: None
) -> None:
    lines = _lines()
    assert len(lines) == 6_919
    await _ingest(client, lines)

    # The service's summaries are the published ones (x, t_x, T in weeks, mean repeat spend).
    async with read_connection() as conn:
        sample = await repository.fitting_sample(
            conn, cutoff=cutoff_of(AS_OF), calibration_end=AS_OF, sample_size=5_000
        )
    with (DATA / "cdnow_customers_summary_with_transactions.csv").open() as file:
        published = list(csv.DictReader(file))
    assert sample.size == len(published) == 2_357

    def totals(x: Any, t_x: Any, age: Any, zbar: Any) -> list[float]:
        return [float(np.sum(x)), float(np.sum(t_x)), float(np.sum(age)), float(np.sum(zbar))]

    ours = totals(
        sample.x,
        sample.t_x_days / 7,
        sample.age_days / 7,
        np.nan_to_num(sample.repeat_mean),
    )
    theirs = totals(*([float(row[k]) for row in published] for k in ("x", "t_x", "T", "zbar")))
    # The csv rounds to 2 decimals: sums over 2,357 customers agree to that rounding.
    assert ours == pytest.approx(theirs, abs=2_357 * 0.005)
    assert int(np.sum(sample.x > 0)) == sum(1 for row in published if int(row["x"]) > 0) == 946

    figures = await step.refresh(as_of=AS_OF, refresh_id=None)
    assert figures["fitted"] is True, figures

    fits = {fit["kind"]: fit for fit in (await client.get("/v1/analytics/models")).json()["data"]}
    bg, gg = fits["bg_nbd"], fits["gamma_gamma"]
    assert (bg["sample_size"], gg["sample_size"]) == (2_357, 946)
    assert bg["converged"]
    assert gg["converged"]
    assert (bg["calibration_start"], bg["calibration_end"]) == ("1997-01-01", "1997-09-30")
    assert bg["params"] == pytest.approx(PUBLISHED_BG_NBD, rel=0.01)
    assert gg["params"] == pytest.approx(PUBLISHED_GAMMA_GAMMA, rel=0.01)
    # The paper's maximised log-likelihood.
    assert bg["log_likelihood"] == pytest.approx(-9582.4, abs=0.1)
    print(
        "CDNOW fit:",
        {k: round(v, 4) for k, v in bg["params"].items()},
        {k: round(v, 4) for k, v in gg["params"].items()},
        f"LL {bg['log_likelihood']:.2f}",
        f"{bg['fit_seconds'] + gg['fit_seconds']:.3f} s",
    )
