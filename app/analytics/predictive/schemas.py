"""The fitted predictive models as the API shows them (REST body and GraphQL type, declared once)."""

import uuid
from datetime import date, datetime

from pydantic import ConfigDict, Field
from pydantic.config import JsonDict

from app.analytics.enums import ModelKind
from app.core.schemas import OutputModel

_HOLDOUT_EXAMPLE: JsonDict = {
    "days": 90,
    "customers": 2357,
    "predicted": 1402.6,
    "actual": 1366,
    "error_pct": 2.68,
}
_BG_NBD_EXAMPLE: JsonDict = {
    "id": "0b7c6a4e-3a8f-4a43-9d57-8c1f0a3b2d11",
    "kind": "bg_nbd",
    "refresh_id": "6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b",
    "params": {"r": 0.2426, "alpha": 4.4137, "a": 0.7929, "b": 2.4259},
    "sample_size": 2357,
    "log_likelihood": -9582.43,
    "converged": True,
    "time_unit_days": 7,
    "calibration_start": "1997-01-01",
    "calibration_end": "1997-09-30",
    "fitted_at": "1997-10-01T02:15:04Z",
    "fit_seconds": 0.084,
    "holdout": _HOLDOUT_EXAMPLE,
}
_GAMMA_GAMMA_EXAMPLE: JsonDict = {
    **_BG_NBD_EXAMPLE,
    "id": "1c8d7b5f-4b9a-4b54-8e68-9d2a1b4c3e22",
    "kind": "gamma_gamma",
    "params": {"p": 6.2488, "q": 3.7447, "gamma": 15.4438},
    "sample_size": 946,
    "log_likelihood": -4059.87,
    "holdout": None,
}


class ModelHoldout(OutputModel):
    """Predicted against actual repeat purchases in the holdout days: the model was fitted on the
    history up to ``days`` days before the calibration end and predicted the days after it."""

    model_config = ConfigDict(json_schema_extra={"examples": [_HOLDOUT_EXAMPLE]})

    days: int = Field(description="Length of the holdout window, in days.")
    customers: int = Field(description="Customers of the fitting sample compared.")
    predicted: float = Field(
        description="Repeat purchases (purchase days) the model expected of them in the window."
    )
    actual: int = Field(description="Purchase days they actually had in the window.")
    error_pct: float | None = Field(
        description="(predicted − actual) / actual × 100; null when there was no actual purchase."
    )


class ModelFitOut(OutputModel):
    """One maximum-likelihood fit of a predictive model by an analytics refresh."""

    model_config = ConfigDict(json_schema_extra={"examples": [_BG_NBD_EXAMPLE]})

    id: uuid.UUID = Field(description="The fit's id.")
    kind: ModelKind = Field(
        description="`bg_nbd` (purchase frequency and P(alive)) or `gamma_gamma` (spend per order)."
    )
    refresh_id: uuid.UUID | None = Field(description="The analytics refresh that fitted it.")
    params: dict[str, float] = Field(
        description="The fitted parameters: `r`, `alpha`, `a`, `b` (BG/NBD, `alpha` in time "
        "units) or `p`, `q`, `gamma` (Gamma-Gamma, `gamma` in the configured currency)."
    )
    sample_size: int = Field(
        description="Customers the model was fitted on (Gamma-Gamma: the repeat buyers of the sample)."
    )
    log_likelihood: float = Field(description="Log-likelihood at the fitted parameters.")
    converged: bool = Field(description="Whether the optimiser reported convergence.")
    time_unit_days: int = Field(description="The model's time unit in days (7: weeks).")
    calibration_start: date | None = Field(
        description="The first purchase day in the data the model was fitted on."
    )
    calibration_end: date = Field(description="The last day of the calibration (the as_of date).")
    fitted_at: datetime = Field(description="When the fit ran.")
    fit_seconds: float = Field(description="How long the maximum-likelihood fit took.")
    holdout: ModelHoldout | None = Field(
        description="The holdout check, when `model_holdout_days` was above 0."
    )


class ModelFitList(OutputModel):
    """The newest fit of each model kind (empty before the first refresh that could fit them)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"data": [_BG_NBD_EXAMPLE, _GAMMA_GAMMA_EXAMPLE]}]}
    )

    data: list[ModelFitOut] = Field(description="One fit per kind, `bg_nbd` first.")


STORED_FIELDS = tuple(name for name in ModelFitOut.model_fields)
