"""BG/NBD: the closed forms against numeric integration over the individual-level model, stability
for heavy buyers, and recovery of known parameters from simulated customers."""

import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest
from scipy import stats
from scipy.special import hyp2f1

from app.analytics.predictive import bgnbd
from app.analytics.predictive.bgnbd import BgNbdParams

CDNOW = BgNbdParams(r=0.243, alpha=4.414, a=0.793, b=2.426)
Grid = npt.NDArray[np.float64]
HISTORIES = [(0, 0.0, 38.86), (2, 30.43, 38.86), (1, 1.71, 38.86), (6, 20.0, 30.0), (3, 5.0, 35.0)]


# Gauss-Legendre nodes on (0, 1), for integrating over the quantiles of the mixing distributions.
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(400)
_U = (_NODES + 1) / 2
_W = _WEIGHTS / 2


def _integrate(params: BgNbdParams, integrand: Callable[[Grid, Grid], Grid]) -> float:
    """E[integrand(λ, p)] over λ ~ Gamma(r, α) and p ~ Beta(a, b), by quadrature on their
    quantiles (λ = G⁻¹(u), p = B⁻¹(v)): no closed form of the model is used."""
    lam = stats.gamma.ppf(_U, params.r, scale=1 / params.alpha)[:, None]
    p = stats.beta.ppf(_U, params.a, params.b)[None, :]
    return float(_W @ integrand(lam, p) @ _W)


def _individual_likelihood(
    x: int, t_x: float, age: float
) -> tuple[Callable[[Grid, Grid], Grid], Callable[[Grid, Grid], Grid]]:
    """L(λ, p | x, t_x, T) of the paper's equation (3), and its "still alive" part."""

    def alive(lam: Grid, p: Grid) -> Grid:
        return (1 - p) ** x * lam**x * np.exp(-lam * age)

    def total(lam: Grid, p: Grid) -> Grid:
        dropped = p * (1 - p) ** (x - 1) * lam**x * np.exp(-lam * t_x) if x > 0 else 0.0
        return alive(lam, p) + dropped

    return alive, total


@pytest.mark.parametrize(("x", "t_x", "age"), HISTORIES)
def test_log_likelihood_is_the_integral_of_the_individual_likelihood(
    x: int, t_x: float, age: float
) -> None:
    _, total = _individual_likelihood(x, t_x, age)
    expected = math.log(_integrate(CDNOW, total))
    assert bgnbd.log_likelihood(CDNOW, x, t_x, age) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(("x", "t_x", "age"), HISTORIES)
def test_p_alive_is_the_posterior_probability_of_being_alive(
    x: int, t_x: float, age: float
) -> None:
    alive, total = _individual_likelihood(x, t_x, age)
    expected = _integrate(CDNOW, alive) / _integrate(CDNOW, total)
    assert bgnbd.p_alive(CDNOW, x, t_x, age) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(("x", "t_x", "age"), HISTORIES)
@pytest.mark.parametrize("t", [4.0, 39.0, 200.0])
def test_conditional_expectation_is_the_posterior_mean(
    x: int, t_x: float, age: float, t: float
) -> None:
    """Alive at T with (λ, p), a customer makes (1 − e^{−λpt}) / p purchases in t on average
    (a purchase ends a geometric number of purchases); averaged over the posterior."""
    alive, total = _individual_likelihood(x, t_x, age)

    def purchases(lam: Grid, p: Grid) -> Grid:
        return alive(lam, p) * -np.expm1(-lam * p * t) / p

    expected = _integrate(CDNOW, purchases) / _integrate(CDNOW, total)
    assert bgnbd.expected_purchases(CDNOW, t, x, t_x, age) == pytest.approx(expected, rel=1e-5)


def test_conditional_expectation_equals_the_papers_formula() -> None:
    """Equation (10) as printed, where its 2F1 and power are still representable."""
    p = CDNOW
    for x, t_x, age in HISTORIES:
        for t in (1.0, 39.0, 78.0):
            z = t / (p.alpha + age + t)
            tail = ((p.alpha + age) / (p.alpha + age + t)) ** (p.r + x) * hyp2f1(
                p.r + x, p.b + x, p.a + p.b + x - 1, z
            )
            odds = (x > 0) * p.a / (p.b + x - 1) * ((p.alpha + age) / (p.alpha + t_x)) ** (p.r + x)
            printed = (p.a + p.b + x - 1) / (p.a - 1) * (1 - tail) / (1 + odds)
            assert bgnbd.expected_purchases(p, t, x, t_x, age) == pytest.approx(printed, rel=1e-9)


def test_new_customer_expectation_is_the_conditional_one_at_time_zero() -> None:
    # A customer just acquired (x = 0, T = 0) is the population's E[X(t)].
    t = np.array([1.0, 10.0, 52.0])
    assert bgnbd.expected_purchases(CDNOW, t, 0, 0, 0) == pytest.approx(
        bgnbd.expected_purchases_new(CDNOW, t), rel=1e-9
    )


def test_one_time_buyers_are_alive() -> None:
    assert bgnbd.p_alive(CDNOW, [0, 0], [0, 0], [1, 1000]).tolist() == [1.0, 1.0]


def test_heavy_buyers_stay_finite_and_sensible() -> None:
    """x in the thousands: 2F1's parameters and (α+T)^(r+x) overflow a naive evaluation. The
    posteriors concentrate (λ at (r+x)/(α+T), p at a/(a+b+x)), so the individual-level
    expectation at those values, (1 − e^{−λpt}) / p, is close to the model's."""
    x = np.array([500.0, 5_000.0, 50_000.0])
    age = np.array([100.0, 1_000.0, 5_000.0])
    t = 10.0
    with np.errstate(all="raise"):
        expected = bgnbd.expected_purchases(CDNOW, t, x, age, age)
        alive = bgnbd.p_alive(CDNOW, x, age, age)
        ll = bgnbd.log_likelihood(CDNOW, x, age, age)
    rate = (CDNOW.r + x) / (CDNOW.alpha + age)
    dropout = CDNOW.a / (CDNOW.a + CDNOW.b + x)
    plug_in = -np.expm1(-rate * dropout * t) / dropout * alive
    assert np.all(np.isfinite(ll))
    assert expected == pytest.approx(plug_in, rel=0.002)
    # Just bought (t_x = T): equation (13) reduces to 1 / (1 + a / (b + x − 1)).
    assert alive == pytest.approx(1 / (1 + CDNOW.a / (CDNOW.b + x - 1)), rel=1e-12)
    # Silent for long after buying every week: gone, without an underflow error.
    silent = bgnbd.p_alive(CDNOW, 5_000.0, 1_000.0, 2_000.0)
    assert 0 <= silent < 1e-100


def _simulate(
    rng: np.random.Generator, n: int, params: BgNbdParams
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The BG/NBD story, customer by customer: Poisson purchases at λ until a coin with p, tossed
    after each repeat purchase, says they dropped out; observed for T from the first purchase."""
    lam = rng.gamma(params.r, 1 / params.alpha, n)
    p = rng.beta(params.a, params.b, n)
    age = rng.uniform(26, 52, n)
    x = np.zeros(n)
    t_x = np.zeros(n)
    now = np.zeros(n)
    active = np.ones(n, dtype=bool)
    while active.any():
        now[active] += rng.exponential(1 / lam[active])
        bought = active & (now <= age)
        x[bought] += 1
        t_x[bought] = now[bought]
        dropped = bought & (rng.random(n) < p)
        active = bought & ~dropped
    return x, t_x, age


def test_simulated_customers_give_back_their_parameters() -> None:
    truth = BgNbdParams(r=0.5, alpha=6.0, a=0.8, b=2.5)
    x, t_x, age = _simulate(np.random.default_rng(20261207), 6_000, truth)
    fit = bgnbd.fit(x, t_x, age)
    assert fit.converged
    assert fit.n == 6_000
    fitted = bgnbd.params_from(fit.params)
    assert fitted.r == pytest.approx(truth.r, rel=0.15)
    assert fitted.alpha == pytest.approx(truth.alpha, rel=0.15)
    assert fitted.a == pytest.approx(truth.a, rel=0.25)
    assert fitted.b == pytest.approx(truth.b, rel=0.25)
    # The quantities the data pins down best: the mean purchase rate and drop-out probability.
    assert fitted.r / fitted.alpha == pytest.approx(truth.r / truth.alpha, rel=0.06)
    assert fitted.a / (fitted.a + fitted.b) == pytest.approx(
        truth.a / (truth.a + truth.b), rel=0.08
    )
    # A maximum: the truth is no more likely than the fit.
    assert fit.log_likelihood >= bgnbd.log_likelihood(truth, x, t_x, age).sum()
    assert fit.log_likelihood == pytest.approx(bgnbd.log_likelihood(fitted, x, t_x, age).sum())


def test_fit_refuses_no_data() -> None:
    with pytest.raises(ValueError, match="no customers"):
        bgnbd.fit([], [], [])


@pytest.mark.parametrize(("x", "t_x", "age"), HISTORIES)
def test_a_nearly_constant_dropout_probability_is_handled(x: int, t_x: float, age: float) -> None:
    """Large a and b (p concentrated near a/(a+b), as a fit of simulated data with one dropout
    probability gives): Euler's form of E[Y(t)] overflows there, the printed one does not."""
    params = BgNbdParams(r=0.546, alpha=1.745, a=326.2, b=1043.0)
    alive, total = _individual_likelihood(x, t_x, age)
    for t in (1.0, 13.0, 52.0):

        def purchases(lam: Grid, p: Grid, t: float = t) -> Grid:
            return alive(lam, p) * -np.expm1(-lam * p * t) / p

        expected = _integrate(params, purchases) / _integrate(params, total)
        with np.errstate(all="raise"):
            got = bgnbd.expected_purchases(params, t, x, t_x, age)
        assert got == pytest.approx(expected, rel=1e-6)


def test_the_analytic_gradient_is_the_likelihoods_slope() -> None:
    from scipy.optimize import approx_fprime

    x = np.array([0.0, 1.0, 2.0, 6.0, 40.0])
    t_x = np.array([0.0, 1.71, 30.43, 20.0, 35.0])
    age = np.array([38.86, 38.86, 38.86, 30.0, 36.0])
    log_params = np.log([0.243, 4.414, 0.793, 2.426])

    def total(values: np.ndarray) -> float:
        return float(bgnbd.log_likelihood(BgNbdParams(*np.exp(values)), x, t_x, age).sum())

    numeric = approx_fprime(log_params, total, 1e-7)
    analytic = bgnbd._gradient(BgNbdParams(*np.exp(log_params)), x, t_x, age).sum(axis=0)
    assert analytic == pytest.approx(numeric, rel=1e-5, abs=1e-6)
