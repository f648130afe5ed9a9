"""Gamma-Gamma: likelihood and conditional expectation against numeric integration over ν, and
recovery of known parameters from simulated spend."""

import math
from typing import Any

import numpy as np
import pytest
from scipy import integrate, stats

from app.analytics.predictive import gamma_gamma
from app.analytics.predictive.gamma_gamma import GammaGammaParams

CDNOW = GammaGammaParams(p=6.25, q=3.74, gamma=15.44)
BUYERS = [(1, 11.77), (2, 22.35), (5, 40.0), (20, 8.5)]


def _nu() -> Any:
    """ν's distribution across customers: Gamma(q, rate γ)."""
    return stats.gamma(CDNOW.q, scale=1 / CDNOW.gamma)


def _mean_density(x: int, m: float, nu: float) -> float:
    """The mean of x Gamma(p, ν) purchases is Gamma(px, xν)."""
    return float(stats.gamma.pdf(m, CDNOW.p * x, scale=1 / (x * nu)))


@pytest.mark.parametrize(("x", "m"), BUYERS)
def test_log_likelihood_is_the_integral_over_nu(x: int, m: float) -> None:
    prior = _nu()
    value, _ = integrate.quad(lambda nu: _mean_density(x, m, nu) * prior.pdf(nu), 0, np.inf)
    assert gamma_gamma.log_likelihood(CDNOW, x, m) == pytest.approx(math.log(value), rel=1e-7)


@pytest.mark.parametrize(("x", "m"), BUYERS)
def test_expected_order_value_is_the_posterior_mean_of_p_over_nu(x: int, m: float) -> None:
    prior = _nu()

    def posterior(nu: float) -> float:
        return _mean_density(x, m, nu) * float(prior.pdf(nu))

    evidence, _ = integrate.quad(posterior, 0, np.inf)
    mean, _ = integrate.quad(lambda nu: CDNOW.p / nu * posterior(nu), 0, np.inf)
    assert gamma_gamma.expected_order_value(CDNOW, x, m) == pytest.approx(mean / evidence, rel=1e-7)


def test_no_repeat_purchase_expects_the_population_mean() -> None:
    population = CDNOW.p * CDNOW.gamma / (CDNOW.q - 1)
    assert CDNOW.population_mean == pytest.approx(population)
    assert gamma_gamma.expected_order_value(CDNOW, [0, 0], [0.0, np.nan]) == pytest.approx(
        [population, population]
    )
    assert math.isnan(GammaGammaParams(p=1, q=0.9, gamma=1).population_mean)


def test_simulated_spend_gives_back_its_parameters() -> None:
    truth = GammaGammaParams(p=6.0, q=4.0, gamma=15.0)
    rng = np.random.default_rng(20261207)
    n = 5_000
    nu = rng.gamma(truth.q, 1 / truth.gamma, n)
    x = 1 + rng.poisson(3, n)
    # Each customer's x purchase values, Gamma(p, ν), averaged.
    sums = rng.gamma(truth.p * x, 1 / nu)
    m = sums / x
    fit = gamma_gamma.fit(x, m)
    assert fit.converged
    assert fit.n == n
    fitted = gamma_gamma.params_from(fit.params)
    assert fitted.p == pytest.approx(truth.p, rel=0.12)
    assert fitted.q == pytest.approx(truth.q, rel=0.2)
    assert fitted.gamma == pytest.approx(truth.gamma, rel=0.2)
    assert fitted.population_mean == pytest.approx(truth.population_mean, rel=0.05)
    assert fit.log_likelihood >= gamma_gamma.log_likelihood(truth, x, m).sum()


def test_fit_leaves_out_customers_without_repeat_spend() -> None:
    rng = np.random.default_rng(1)
    x = 1 + rng.poisson(3, 500)
    m = rng.gamma(6.0 * x, 1 / rng.gamma(4.0, 1 / 15.0, 500)) / x
    with_others = gamma_gamma.fit(np.r_[x, 0, 0, 3], np.r_[m, 0.0, np.nan, 0.0])
    alone = gamma_gamma.fit(x, m)
    assert with_others.n == 500
    assert with_others.params == pytest.approx(alone.params)
    with pytest.raises(ValueError, match="no repeat buyers"):
        gamma_gamma.fit([0, 2], [np.nan, 0.0])


def test_the_analytic_gradient_is_the_likelihoods_slope() -> None:
    from scipy.optimize import approx_fprime

    x = np.array([b[0] for b in BUYERS], dtype=float)
    m = np.array([b[1] for b in BUYERS])
    log_params = np.log([CDNOW.p, CDNOW.q, CDNOW.gamma])

    def total(values: np.ndarray) -> float:
        return float(gamma_gamma.log_likelihood(GammaGammaParams(*np.exp(values)), x, m).sum())

    numeric = approx_fprime(log_params, total, 1e-7)
    analytic = gamma_gamma._gradient(CDNOW, x, m).sum(axis=0)
    assert analytic == pytest.approx(numeric, rel=1e-5, abs=1e-6)
