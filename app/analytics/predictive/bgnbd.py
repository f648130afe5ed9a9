"""The BG/NBD model of repeat purchasing: Fader, Hardie & Lee (2005), "Counting Your Customers the
Easy Way: An Alternative to the Pareto/NBD Model", Marketing Science 24(2), 275-284.

While alive, a customer buys at a Poisson rate λ ~ Gamma(r, α); after each purchase they drop out
with probability p ~ Beta(a, b). A customer is summarised by ``x`` (repeat purchases), ``t_x``
(time of the last purchase since the first) and ``age`` (time since the first purchase, the
paper's T), all in the model's time unit. Everything is computed on logs, so large ``x`` and ``age`` neither overflow nor
lose precision.
"""

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import digamma, expit, gammaln, hyp2f1

from app.analytics.predictive.mle import FitResult, maximise

Array = npt.NDArray[np.float64]
PARAM_NAMES = ("r", "alpha", "a", "b")


@dataclass(frozen=True, slots=True)
class BgNbdParams:
    r: float
    alpha: float
    a: float
    b: float

    def as_dict(self) -> dict[str, float]:
        return {
            "r": float(self.r),
            "alpha": float(self.alpha),
            "a": float(self.a),
            "b": float(self.b),
        }


def _arrays(*values: Any) -> list[Array]:
    return [np.asarray(v, dtype=np.float64) for v in values]


def log_likelihood(params: BgNbdParams, x: Any, t_x: Any, age: Any) -> Array:
    """Each customer's log-likelihood, equation (6) of the paper, written as
    ln A1 + ln A2 + ln(exp(A3) + δ(x>0) exp(A4)) so no term is ever exponentiated alone."""
    x, t_x, age = _arrays(x, t_x, age)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + age)
    repeat = x > 0
    # For x = 0 the second term is absent; b + x - 1 may be <= 0 there, so it is never evaluated.
    safe_x = np.where(repeat, x, 1.0)
    a4 = np.where(
        repeat,
        np.log(a) - np.log(b + safe_x - 1) - (r + x) * np.log(alpha + t_x),
        -np.inf,
    )
    result: Array = a1 + a2 + np.logaddexp(a3, a4)
    return result


def _log_alive_odds(params: BgNbdParams, x: Array, t_x: Array, age: Array) -> Array:
    """ln of δ(x>0) · a/(b+x−1) · ((α+T)/(α+t_x))^(r+x): the odds of having dropped out."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    repeat = x > 0
    safe_x = np.where(repeat, x, 1.0)
    odds = (
        np.log(a) - np.log(b + safe_x - 1) + (r + x) * (np.log(alpha + age) - np.log(alpha + t_x))
    )
    result: Array = np.where(repeat, odds, -np.inf)
    return result


def p_alive(params: BgNbdParams, x: Any, t_x: Any, age: Any) -> Array:
    """P(alive | x, t_x, T), equation (13) of the paper: 1 for a customer without repeat
    purchases (in the BG/NBD a customer can only drop out right after a purchase)."""
    x, t_x, age = _arrays(x, t_x, age)
    result: Array = expit(-_log_alive_odds(params, x, t_x, age))
    return result


def _hyp2f1_tail(params: BgNbdParams, x: Array, age: Array, t: Array) -> Array:
    """((α+T)/(α+T+t))^(r+x) · 2F1(r+x, b+x; a+b+x−1; z), z = t/(α+T+t), the term of E[Y(t)].

    As printed, 2F1's parameters grow with x and overflow for heavy buyers (x in the thousands)
    while the power underflows; their product is moderate. Euler's transformation
    2F1(A, B; C; z) = (1−z)^(C−A−B) 2F1(C−A, C−B; C; z) gives the same product as
    (1−z)^(a−1) · 2F1(a+b−1−r, a−1; a+b+x−1; z), whose first parameters no longer depend on x
    (its series converges the faster the larger x), but which overflows in turn when a is large
    (a dropout probability fitted as nearly constant). So each customer takes the branch whose
    growing parameters are the smaller (Euler's when x > a), and the other where that one is not
    finite; Pfaff's form 2F1(r+x, a−1; a+b+x−1; −t/(α+T)) is the last resort."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    z = t / (alpha + age + t)
    c = a + b + x - 1
    log_rest = np.log1p(-z)
    with np.errstate(all="ignore"):
        printed = np.exp((r + x) * log_rest + np.log(hyp2f1(r + x, b + x, c, z)))
        euler = np.exp((a - 1) * log_rest + np.log(hyp2f1(a + b - 1 - r, a - 1, c, z)))
        first, second = np.where(x > a, euler, printed), np.where(x > a, printed, euler)
        result: Array = np.where(np.isfinite(first), first, second)
        if not np.all(np.isfinite(result)):
            pfaff = hyp2f1(r + x, a - 1, c, -t / (alpha + age))
            result = np.where(np.isfinite(result), result, pfaff)
    return result


def expected_purchases(params: BgNbdParams, t: Any, x: Any, t_x: Any, age: Any) -> Array:
    """E[Y(t) | x, t_x, T]: the expected purchases in the next ``t`` time units of a customer
    with that history, equation (10) of the paper."""
    t, x, t_x, age = _arrays(t, x, t_x, age)
    t, x, t_x, age = np.broadcast_arrays(t, x, t_x, age)
    a, b = params.a, params.b
    tail = _hyp2f1_tail(params, x, age, t)
    # (a+b+x−1)/(a−1) · (1 − tail) has a removable singularity at a = 1; a fitted a is never
    # exactly 1, and the optimiser works on ln a, so it is only nudged off it.
    a_minus_one = a - 1 if abs(a - 1) > 1e-9 else 1e-9
    numerator = (a + b + x - 1) / a_minus_one * (1 - tail)
    result: Array = numerator * expit(-_log_alive_odds(params, x, t_x, age))
    return result


def expected_purchases_new(params: BgNbdParams, t: Any) -> Array:
    """E[X(t)]: the expected purchases of a newly acquired customer in ``t`` time units,
    equation (9) of the paper."""
    (t,) = _arrays(t)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    z = t / (alpha + t)
    tail = np.exp(r * np.log(alpha / (alpha + t))) * hyp2f1(r, b, a + b - 1, z)
    result: Array = (a + b - 1) / (a - 1) * (1 - tail)
    return result


def _unique_rows(x: Array, t_x: Array, age: Array) -> tuple[Array, Array, Array, Array]:
    """The distinct (x, t_x, T) with how many customers have each: data in days or weeks repeat
    a lot (every one-time buyer of a day shares a row), so the likelihood is evaluated once each."""
    stacked = np.column_stack((x, t_x, age))
    rows, counts = np.unique(stacked, axis=0, return_counts=True)
    return rows[:, 0], rows[:, 1], rows[:, 2], counts.astype(np.float64)


def _gradient(params: BgNbdParams, x: Array, t_x: Array, age: Array) -> Array:
    """Each customer's log-likelihood differentiated by (ln r, ln α, ln a, ln b), one column each."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    repeat = x > 0
    safe_x = np.where(repeat, x, 1.0)
    a3 = -(r + x) * np.log(alpha + age)
    a4 = np.where(
        repeat,
        np.log(a) - np.log(b + safe_x - 1) - (r + x) * np.log(alpha + t_x),
        -np.inf,
    )
    # ln(e^A3 + e^A4) differentiates into the two terms' gradients, weighted by their shares.
    share4 = expit(a4 - a3)
    share3 = 1 - share4
    d_r = (
        digamma(r + x)
        - digamma(r)
        + np.log(alpha)
        - share3 * np.log(alpha + age)
        - share4 * np.log(alpha + t_x)
    )
    d_alpha = r / alpha - share3 * (r + x) / (alpha + age) - share4 * (r + x) / (alpha + t_x)
    d_a = digamma(a + b) - digamma(a + b + x) + share4 / a
    d_b = (
        digamma(a + b)
        + digamma(b + x)
        - digamma(b)
        - digamma(a + b + x)
        - share4 / (b + safe_x - 1)
    )
    # By the log-parameters: d/d(ln θ) = θ d/dθ.
    return np.column_stack((r * d_r, alpha * d_alpha, a * d_a, b * d_b))


def fit(x: Any, t_x: Any, age: Any) -> FitResult:
    """Maximum-likelihood estimates of (r, α, a, b), optimised over their logarithms (so they
    stay positive and the surface is better scaled), with the analytic gradient."""
    started = time.perf_counter()
    x, t_x, age = _arrays(x, t_x, age)
    if x.size == 0:
        raise ValueError("no customers to fit")
    ux, ut_x, u_age, counts = _unique_rows(x, t_x, age)
    weights = counts / counts.sum()

    def objective(log_params: Array) -> tuple[float, Array]:
        params = BgNbdParams(*np.exp(log_params))
        value = float(np.dot(weights, log_likelihood(params, ux, ut_x, u_age)))
        gradient: Array = weights @ _gradient(params, ux, ut_x, u_age)
        return value, gradient

    # α starts at the mean customer age, so r/α (the purchase rate) starts near one purchase per
    # customer lifetime, whatever the time unit. Taken from the sorted distinct rows, so the same
    # customers read in another order start (and end) at exactly the same point.
    mean_age = float(np.dot(weights, u_age))
    start = np.log([1.0, max(mean_age, 1e-3), 1.0, 1.0])
    return maximise(objective, start, names=PARAM_NAMES, n=int(x.size), started=started)


def params_from(values: dict[str, float]) -> BgNbdParams:
    return BgNbdParams(*(float(values[name]) for name in PARAM_NAMES))
