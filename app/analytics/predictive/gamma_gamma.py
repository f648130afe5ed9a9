"""The Gamma-Gamma model of spend per purchase: Fader & Hardie (2013), "The Gamma-Gamma Model of
Monetary Value" (note), after Colombo & Jiang (1999).

A customer's purchase values are Gamma(p, ν) around their mean p/ν, and ν ~ Gamma(q, γ) across
customers. Fitted on the repeat buyers only (``x`` > 0 repeat purchases, ``m̄`` their mean value),
independently of the BG/NBD; everything is computed on logs.
"""

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import digamma, gammaln

from app.analytics.predictive.bgnbd import Array
from app.analytics.predictive.mle import FitResult, maximise

PARAM_NAMES = ("p", "q", "gamma")


@dataclass(frozen=True, slots=True)
class GammaGammaParams:
    p: float
    q: float
    gamma: float

    def as_dict(self) -> dict[str, float]:
        return {"p": float(self.p), "q": float(self.q), "gamma": float(self.gamma)}

    @property
    def population_mean(self) -> float:
        """E[M] = pγ/(q−1), the expected purchase value of a customer with no repeat purchase
        yet (infinite for q ≤ 1: no finite mean exists, so NaN)."""
        return self.p * self.gamma / (self.q - 1) if self.q > 1 else float("nan")


def log_likelihood(params: GammaGammaParams, x: Any, m: Any) -> Array:
    """Each repeat buyer's log-likelihood of their mean purchase value ``m`` over ``x`` repeat
    purchases, equation (3) of the note (the density of m̄, with its Jacobian)."""
    x = np.asarray(x, dtype=np.float64)
    m = np.asarray(m, dtype=np.float64)
    p, q, gamma = params.p, params.q, params.gamma
    px = p * x
    result: Array = (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(gamma)
        + (px - 1) * np.log(m)
        + px * np.log(x)
        - (px + q) * np.log(gamma + m * x)
    )
    return result


def expected_order_value(params: GammaGammaParams, x: Any, m: Any) -> Array:
    """E[M | x, m̄], equation (5) of the note: a weighted mean of the population mean and the
    customer's own mean, the customer's weight growing with x; the population mean for x = 0."""
    x = np.asarray(x, dtype=np.float64)
    m = np.asarray(m, dtype=np.float64)
    p, q, gamma = params.p, params.q, params.gamma
    repeat = x > 0
    own = np.where(repeat, m, 0.0)
    result: Array = (gamma + own * x) * p / (p * x + q - 1)
    return result


def _gradient(params: GammaGammaParams, x: Array, m: Array) -> Array:
    """Each repeat buyer's log-likelihood differentiated by (ln p, ln q, ln γ)."""
    p, q, gamma = params.p, params.q, params.gamma
    px = p * x
    total = np.log(gamma + m * x)
    d_p = x * (digamma(px + q) - digamma(px) + np.log(m) + np.log(x) - total)
    d_q = digamma(px + q) - digamma(q) + np.log(gamma) - total
    d_gamma = q / gamma - (px + q) / (gamma + m * x)
    return np.column_stack((p * d_p, q * d_q, gamma * d_gamma))


def fit(x: Any, m: Any) -> FitResult:
    """Maximum-likelihood estimates of (p, q, γ) over repeat buyers (x > 0, m > 0; others are
    left out: a mean of nothing, or a free purchase, has no likelihood under the model)."""
    started = time.perf_counter()
    x = np.asarray(x, dtype=np.float64)
    m = np.asarray(m, dtype=np.float64)
    keep = (x > 0) & (m > 0)
    # In a fixed order, so the same customers give the same fit however they were read.
    order = np.lexsort((m[keep], x[keep]))
    x, m = x[keep][order], m[keep][order]
    if x.size == 0:
        raise ValueError("no repeat buyers to fit")
    weight = 1 / x.size

    def objective(log_params: Array) -> tuple[float, Array]:
        params = GammaGammaParams(*np.exp(log_params))
        value = float(log_likelihood(params, x, m).sum()) * weight
        gradient: Array = _gradient(params, x, m).sum(axis=0) * weight
        return value, gradient

    # γ starts at the mean spend so that pγ/(q−1), the population mean, starts near it.
    start = np.log([1.0, 2.0, max(float(m.mean()), 1e-6)])
    return maximise(objective, start, names=PARAM_NAMES, n=int(x.size), started=started)


def params_from(values: dict[str, float]) -> GammaGammaParams:
    return GammaGammaParams(*(float(values[name]) for name in PARAM_NAMES))
