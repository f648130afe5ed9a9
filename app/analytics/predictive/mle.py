"""Maximum likelihood over log-parameters, shared by both models."""

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize

Array = npt.NDArray[np.float64]
# The mean log-likelihood per customer and its gradient in the log-parameters.
Objective = Callable[[Array], tuple[float, Array]]

# On the mean log-likelihood, so the same stop holds for 100 customers or 1,000,000: a gradient
# this small moves the parameters by far less than their standard errors.
_GRADIENT_TOLERANCE = 1e-7
_OPTIONS = {"ftol": 1e-15, "gtol": _GRADIENT_TOLERANCE, "maxiter": 1_000}


@dataclass(frozen=True, slots=True)
class FitResult:
    """A maximum-likelihood fit: its parameters, the log-likelihood there (summed over the
    customers), whether the optimiser converged, on how many customers, in how many seconds."""

    params: dict[str, float]
    log_likelihood: float
    converged: bool
    n: int
    seconds: float


def maximise(
    objective: Objective, start: Array, *, names: tuple[str, ...], n: int, started: float
) -> FitResult:
    """The parameters (named ``names``) maximising ``objective`` from ``start`` (log-scale), by
    L-BFGS-B with the analytic gradient. Converged when the optimiser says so, or when it stopped
    on a line search that could not improve any more with the gradient already negligible (the
    usual end at machine precision)."""

    def negative(log_params: Array) -> tuple[float, Array]:
        with np.errstate(all="ignore"):
            value, gradient = objective(log_params)
        if not (np.isfinite(value) and np.all(np.isfinite(gradient))):
            # Outside where the likelihood can be evaluated: a wall the line search backs off.
            return 1e300, np.zeros_like(log_params)
        return -value, -gradient

    result = minimize(negative, start, jac=True, method="L-BFGS-B", options=_OPTIONS)
    _, gradient = negative(result.x)
    converged = bool(result.success) or float(np.max(np.abs(gradient))) < 1e-5
    values = np.exp(result.x)
    return FitResult(
        params={name: float(v) for name, v in zip(names, values, strict=True)},
        log_likelihood=-float(result.fun) * n,
        converged=converged and bool(np.all(np.isfinite(values))),
        n=n,
        seconds=time.perf_counter() - started,
    )
