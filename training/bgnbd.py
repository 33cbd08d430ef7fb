"""BG/NBD ("beta-geometric / negative binomial distribution") model of repeat purchasing.

Our own implementation of Fader, Hardie & Lee (2005), "Counting your customers the easy way: an alternative
to the Pareto/NBD model", Marketing Science 24(2), written from the published likelihood.

Model, for one customer observed from the first purchase (time 0) to time ``T``:

* while alive, repeat purchases arrive as a Poisson process with rate ``lambda``;
* right after each repeat purchase the customer drops out ("dies") with probability ``p`` (so a customer
  can only drop out immediately after a purchase, never while waiting);
* across customers ``lambda ~ Gamma(shape=r, rate=alpha)`` and ``p ~ Beta(a, b)``, independently.

The data of one customer are ``x`` (number of repeat purchases, the first purchase is not counted), ``t_x``
(time of the last repeat purchase, 0 if ``x == 0``) and ``T``. The individual likelihood is

    L(lambda, p | x, t_x, T) = (1-p)^x lambda^x e^{-lambda T} + [x > 0] p (1-p)^{x-1} lambda^x e^{-lambda t_x}

(first term: still alive at ``T``; second term: died right after the ``x``-th purchase) and integrating it
against the two mixing distributions gives the closed form used here (B = beta function)

    L = B(a, b+x)/B(a, b) * Gamma(r+x) alpha^r / (Gamma(r) (alpha+T)^(r+x))
        + [x > 0] B(a+1, b+x-1)/B(a, b) * Gamma(r+x) alpha^r / (Gamma(r) (alpha+t_x)^(r+x)),

which we evaluate as ``log L = <first term> + log(1 + e^D)`` with
``D = log(a / (b+x-1)) + (r+x) log((alpha+T) / (alpha+t_x))``; note ``P(alive at T | data) = 1/(1 + e^D)``.

Units. All public inputs (``frequency``, ``recency``, ``T``, ``t_days``) are in days. ``alpha`` has the unit
of time (``lambda`` is a rate per unit time and ``alpha`` its gamma *rate*). For numerical conditioning the
fit works in an internal unit of ``time_scale_days`` days (weeks by default), and ``params_["alpha"]`` is
reported in that unit (directly comparable to published weekly estimates such as CDNOW's alpha = 4.414);
``params_days_`` holds the same parameters with alpha in days, and every prediction method uses those, so
predictions do not depend on the internal unit (up to optimisation tolerance). ``log_likelihood`` and
``log_likelihood_`` are likewise densities with respect to time in days.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy import linalg, optimize, special
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted

PARAM_NAMES = ("r", "alpha", "a", "b")

# Parameters are optimised on the log scale inside these bounds (exp(+-18) ~ 6.6e7), which keeps every
# special function finite; a parameter on a bound usually means the data do not identify it (e.g. no
# visible drop-out pushes a and b to infinity).
_LOG_BOUNDS = (-18.0, 18.0)
# Closed-form expectations use 2F1 with a factor 1/(a-1); closer to a == 1 than this (or with the 2F1
# parameter c = a+b+x-1 close to / below zero) we integrate over p by Gauss-Jacobi quadrature instead.
_A_NEAR_ONE = 1e-3
_C_MIN = 0.05


# --------------------------------------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------------------------------------


def _as_1d_float(name: str, values: Any) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array, got shape {arr.shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ValueError(f"{name}: {int(bad.sum())} rows are NaN or infinite")
    return arr


def _bad(name: str, mask: np.ndarray, what: str) -> None:
    if mask.any():
        raise ValueError(f"{name}: {int(mask.sum())} rows {what}")


def check_rfm(frequency: Any, recency: Any, T: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate (frequency, recency, T) in days and return them as float64 1-D arrays.

    Raises ``ValueError`` naming the offending argument and the number of bad rows when: lengths differ,
    values are NaN/inf, anything is negative, ``frequency`` is not integer-valued, ``recency > T`` (a
    relative slack of 1e-9 is tolerated for float round-off, and recency is then clipped to T), or
    ``frequency == 0`` with ``recency != 0``.
    """
    x = _as_1d_float("frequency", frequency)
    tx = _as_1d_float("recency", recency)
    t_obs = _as_1d_float("T", T)
    if not (len(x) == len(tx) == len(t_obs)):
        raise ValueError(
            f"frequency, recency and T must have the same length, got {len(x)}, {len(tx)}, {len(t_obs)}"
        )
    _bad("frequency", x < 0, "are negative")
    _bad("frequency", x != np.round(x), "are not integer-valued")
    _bad("recency", tx < 0, "are negative")
    _bad("T", t_obs < 0, "are negative")
    _bad("recency", tx > t_obs + 1e-9 * np.maximum(t_obs, 1.0), "have recency > T")
    _bad("recency", (x == 0) & (tx != 0), "have frequency == 0 but recency != 0")
    return x, np.minimum(tx, t_obs), t_obs


def _check_t(t_days: Any, n: int | None = None) -> np.ndarray:
    t = np.asarray(t_days, dtype=float)
    if t.ndim > 1:
        raise ValueError(f"t_days: expected a scalar or 1-D array, got shape {t.shape}")
    if not np.isfinite(t).all():
        raise ValueError(f"t_days: {int((~np.isfinite(t)).sum())} values are NaN or infinite")
    if (t < 0).any():
        raise ValueError(f"t_days: {int((t < 0).sum())} values are negative")
    if n is not None and t.ndim == 1 and len(t) != n:
        raise ValueError(f"t_days: expected a scalar or {n} values, got {len(t)}")
    return t


def _check_params(r: float, alpha: float, a: float, b: float) -> tuple[float, float, float, float]:
    vals = tuple(float(v) for v in (r, alpha, a, b))
    for name, v in zip(PARAM_NAMES, vals, strict=True):
        if not (np.isfinite(v) and v > 0):
            raise ValueError(f"{name}: BG/NBD parameters must be finite and > 0, got {v!r}")
    return vals  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------------------
# Closed forms (all times in one consistent unit)
# --------------------------------------------------------------------------------------------------------


def bgnbd_log_likelihood(
    x: np.ndarray, tx: np.ndarray, T: np.ndarray, r: float, alpha: float, a: float, b: float
) -> np.ndarray:
    """Per-customer log-likelihood; ``tx``, ``T`` and ``alpha`` in the same time unit (validated input)."""
    ux, inv = np.unique(x, return_inverse=True)
    g = (
        special.gammaln(r + ux)
        - special.gammaln(r)
        + special.gammaln(b + ux)
        - special.gammaln(b)
        - special.gammaln(a + b + ux)
        + special.gammaln(a + b)
    )
    log_at = np.log(alpha + T)
    ll = g[inv] + r * np.log(alpha) - (r + x) * log_at
    pos = x > 0
    ll[pos] += np.logaddexp(0.0, _d_term(x[pos], tx[pos], log_at[pos], r, alpha, a, b))
    return ll


def _d_term(x: np.ndarray, tx: np.ndarray, log_at: np.ndarray, r: float, alpha: float, a: float, b: float):
    """D = log(a/(b+x-1)) + (r+x) log((alpha+T)/(alpha+t_x)) for x > 0; P(alive) = 1/(1+e^D)."""
    return np.log(a) - np.log(b + x - 1.0) + (r + x) * (log_at - np.log(alpha + tx))


def _p_alive(x, tx, T, r, alpha, a, b) -> np.ndarray:
    out = np.ones_like(x)
    pos = x > 0
    out[pos] = special.expit(-_d_term(x[pos], tx[pos], np.log(alpha + T[pos]), r, alpha, a, b))
    return out


def _plausible(e: np.ndarray, t: np.ndarray, k: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """0 <= E <= E[lambda] t = k t / scale must hold; anything else is a numerical failure."""
    return np.isfinite(e) & (e >= 0) & (e <= k * t / scale * (1 + 1e-8))


def _alive_count_closed(t, k, scale, a, bx) -> np.ndarray:
    """E_p[(1 - (scale/(scale + p t))^k) / p] for p ~ Beta(a, bx), via 2F1 (needs a != 1, a+bx-1 > 0):

        (a+bx-1)/(a-1) * [1 - (scale/(scale+t))^k 2F1(k, bx; a+bx-1; t/(scale+t))]     (FHL 2005, eq. 10)
      = (a+bx-1)/(a-1) * [1 - 2F1(k, a-1; a+bx-1; -t/scale)]                          (Pfaff transform)

    scipy's 2F1 occasionally loses accuracy silently (e.g. 1e-5 relative for the Pfaff form at -t/scale =
    -3) or fails, so both forms are evaluated and only values on which they agree to 1e-9 relative and
    that are plausible are returned; the rest are NaN (the caller falls back to quadrature).
    """
    c = a + bx - 1.0
    with np.errstate(all="ignore"):
        pfaff = c / (a - 1.0) * (1.0 - special.hyp2f1(k, a - 1.0, c, -t / scale))
        lead = np.exp(-k * np.log1p(t / scale))
        euler = c / (a - 1.0) * (1.0 - lead * special.hyp2f1(k, bx, c, t / (scale + t)))
        agree = np.abs(pfaff - euler) <= 1e-9 * np.abs(pfaff)
    ok = agree & _plausible(pfaff, t, k, scale) & _plausible(euler, t, k, scale)
    return np.where(ok, (pfaff + euler) / 2.0, np.nan)


@functools.lru_cache(maxsize=512)
def _gauss_beta(n: int, a: float, bx: float) -> tuple[np.ndarray, np.ndarray]:
    """n-point Gauss rule for the Beta(a, bx) distribution on [0, 1]: nodes and weights summing to 1.

    Golub-Welsch on the Jacobi recurrence (weight (1-u)^(bx-1) (1+u)^(a-1) on [-1, 1], p = (1+u)/2);
    unlike scipy.special.roots_jacobi it stays finite for large bx (no gamma-function normalisation).
    """
    al, be = bx - 1.0, a - 1.0
    j = np.arange(n, dtype=float)
    s = 2.0 * j + al + be
    with np.errstate(all="ignore"):
        diag = (be * be - al * al) / (s * (s + 2.0))
        jj, ss = j[1:], s[1:]
        off2 = 4.0 * jj * (jj + al) * (jj + be) * (jj + al + be) / (ss * ss * (ss + 1.0) * (ss - 1.0))
    diag[0] = (be - al) / (al + be + 2.0)
    if n > 1:
        off2[0] = 4.0 * (1.0 + al) * (1.0 + be) / ((al + be + 2.0) ** 2 * (al + be + 3.0))
    u, vec = linalg.eigh_tridiagonal(diag, np.sqrt(off2))
    w = vec[0] ** 2
    nodes, weights = (1.0 + u) / 2.0, w / w.sum()
    nodes.flags.writeable = weights.flags.writeable = False  # cached
    return nodes, weights


def _alive_count_quad(t, k, scale, a, bx) -> np.ndarray:
    """Same expectation by Gauss quadrature over p ~ Beta(a, bx) (any a > 0), one rule per distinct bx."""
    out = np.empty(t.shape)
    ratio = t / scale
    for v in np.unique(bx):
        m = bx == v
        # The integrand (1 - (1 + p c)^-k)/p is analytic on [0, 1] with its singularity at p = -1/c but
        # steep near 0 when k c is large; n below gives ~1e-9 relative accuracy up to k c ~ 1e4.
        n = 40.0 + 8.0 * np.sqrt((ratio[m] * np.maximum(k[m], 1.0)).max())
        p, w = _gauss_beta(int(min(40 * np.ceil(n / 40), 1000)), float(a), float(v))
        with np.errstate(invalid="ignore", divide="ignore"):  # nodes that underflow to p = 0: use the limit
            f = -np.expm1(-k[m][:, None] * np.log1p(ratio[m][:, None] * p[None, :])) / p[None, :]
        f = np.where(p[None, :] > 0, f, k[m][:, None] * ratio[m][:, None])
        out[m] = f @ w
    return out


def _alive_count(t, k, scale, a, bx) -> np.ndarray:
    """E[# purchases in a window of length t | alive at its start] for lambda ~ Gamma(k, rate scale),
    p ~ Beta(a, bx): E[(1 - e^{-lambda p t}) / p | p] integrates lambda out in closed form, leaving
    E_p[(1 - (scale/(scale+p t))^k) / p]. 2F1 closed form where safe; Gauss quadrature over p near a == 1
    (removable singularity, cancellation), for a+bx-1 <= 0.05 (2F1 parameter c near its poles), and
    wherever the two 2F1 forms disagree or fail (rare in practice: very long windows, huge histories)."""
    t, k, scale, bx = (np.asarray(v, dtype=float).ravel() for v in np.broadcast_arrays(t, k, scale, bx))
    out = np.zeros_like(t)
    todo = t > 0
    closed = todo & (abs(a - 1.0) > _A_NEAR_ONE) & (a + bx - 1.0 > _C_MIN)
    if closed.any():
        out[closed] = _alive_count_closed(t[closed], k[closed], scale[closed], a, bx[closed])
    redo = todo & (~closed | np.isnan(out))
    if redo.any():
        out[redo] = _alive_count_quad(t[redo], k[redo], scale[redo], a, bx[redo])
    return np.clip(out, 0.0, k * t / scale)


def simulate_bgnbd(
    r: float,
    alpha: float,
    a: float,
    b: float,
    T: Any,
    n: int,
    rng: int | np.random.Generator | None = None,
    return_alive: bool = False,
) -> pd.DataFrame:
    """Simulate ``n`` customers from the BG/NBD process, each observed for ``T`` after its first purchase.

    ``alpha`` and ``T`` must be in the same time unit (pass alpha in days with T in days to get data for
    :class:`BetaGeoModel`; alpha in weeks = 4.414 is alpha = 30.898 in days). ``T`` is a scalar or ``n``
    values. Exact, vectorised sampling: the number of repeat purchases before drop-out (inclusive) is
    ``K ~ Geometric(p)``, the Poisson count on [0, T] is ``N``, so ``x = min(N, K)``, the customer is alive at
    T iff ``N < K``, and given ``N`` the x-th arrival time is ``T * Beta(x, N - x + 1)`` (order statistic of
    ``N`` uniforms). Returns columns frequency (int), recency, T (and ``alive`` if ``return_alive``).
    """
    r, alpha, a, b = _check_params(r, alpha, a, b)
    gen = np.random.default_rng(rng)
    t_obs = np.broadcast_to(np.asarray(T, dtype=float), (n,)).copy()
    if not np.isfinite(t_obs).all() or (t_obs < 0).any():
        raise ValueError("T: must be finite and >= 0")
    lam = gen.gamma(shape=r, scale=1.0 / alpha, size=n)
    p = np.clip(gen.beta(a, b, size=n), 1e-15, 1.0)
    k = gen.geometric(p)
    count = gen.poisson(lam * t_obs)
    x = np.minimum(count, k)
    pos = x > 0
    recency = np.zeros(n)
    recency[pos] = t_obs[pos] * gen.beta(x[pos], count[pos] - x[pos] + 1)
    out = pd.DataFrame({"frequency": x.astype(np.int64), "recency": recency, "T": t_obs})
    if return_alive:
        out["alive"] = count < k
    return out


# --------------------------------------------------------------------------------------------------------
# Fitting objective
# --------------------------------------------------------------------------------------------------------


class _Objective:
    """Mean weighted negative log-likelihood (internal time unit) + L2 penalty, with analytic gradient in
    log-parameters. Terms depending only on x are computed once per distinct x (weights summed)."""

    def __init__(self, x, tx, T, w, penalizer: float):
        self.W = float(w.sum())
        self.w = w / self.W
        self.x, self.T = x, T
        ux, inv = np.unique(x, return_inverse=True)
        self.ux = ux
        self.Wg = np.bincount(inv, weights=self.w, minlength=len(ux))
        pos = x > 0
        self.pos = pos
        self.xp, self.txp, self.wp = x[pos], tx[pos], self.w[pos]
        self.penalizer = penalizer

    def __call__(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        r, alpha, a, b = np.exp(theta)
        ux, Wg, w, x, T = self.ux, self.Wg, self.w, self.x, self.T
        sg = special.gammaln
        psi = special.digamma
        # terms depending on x only
        g = sg(r + ux) - sg(r) + sg(b + ux) - sg(b) - sg(a + b + ux) + sg(a + b)
        psi_rx = psi(r + ux)
        psi_abx = psi(a + b + ux)
        psi_bx = psi(b + ux)
        psi_r, psi_b, psi_ab = psi(r), psi(b), psi(a + b)
        # per-row terms
        log_at = np.log(alpha + T)
        inv_at = 1.0 / (alpha + T)
        xp, txp, wp = self.xp, self.txp, self.wp
        log_at_p = log_at[self.pos]
        dl = log_at_p - np.log(alpha + txp)
        d = np.log(a) - np.log(b + xp - 1.0) + (r + xp) * dl
        s = special.expit(d)
        ws = wp * s
        log_alpha = np.log(alpha)
        rx_w = (r + x) * w
        ll = Wg @ g + r * log_alpha - rx_w @ log_at + wp @ np.logaddexp(0.0, d)
        g_r = Wg @ (psi_rx - psi_r) + log_alpha - w @ log_at + ws @ dl
        g_alpha = r / alpha - rx_w @ inv_at + ws @ ((r + xp) * (inv_at[self.pos] - 1.0 / (alpha + txp)))
        g_a = Wg @ (psi_ab - psi_abx) + ws.sum() / a
        g_b = Wg @ (psi_bx - psi_b - psi_abx + psi_ab) - ws @ (1.0 / (b + xp - 1.0))
        params = np.array([r, alpha, a, b])
        grad_ll = np.array([g_r, g_alpha, g_a, g_b]) * params  # chain rule for log-parameters
        f = -ll + self.penalizer * float(params @ params)
        grad = -grad_ll + 2.0 * self.penalizer * params * params
        return float(f), grad


def _aggregate(x, tx, T, w):
    """Collapse identical (x, t_x, T) rows, summing weights (real data in whole days repeat a lot)."""
    df = pd.DataFrame({"x": x, "tx": tx, "T": T, "w": w})
    agg = df.groupby(["x", "tx", "T"], sort=False, observed=True)["w"].sum()
    if len(agg) > 0.8 * len(df):
        return x, tx, T, w
    idx = agg.index
    return (
        idx.get_level_values(0).to_numpy(float),
        idx.get_level_values(1).to_numpy(float),
        idx.get_level_values(2).to_numpy(float),
        agg.to_numpy(float),
    )


# --------------------------------------------------------------------------------------------------------
# Estimator
# --------------------------------------------------------------------------------------------------------


class BetaGeoModel(BaseEstimator):
    """BG/NBD model (Fader, Hardie & Lee 2005) fitted by maximum likelihood; scikit-learn style.

    Parameters
    ----------
    penalizer : float
        L2 penalty ``penalizer * (r^2 + alpha^2 + a^2 + b^2)`` added to the *mean* (weighted) negative
        log-likelihood, as lifetimes does. It acts on the parameters in the internal unit, so with
        ``penalizer > 0`` results depend on ``time_scale_days``; with 0 they do not.
    time_scale_days : float
        Internal time unit in days (7 = weeks). Data are divided by it before optimisation and
        ``params_["alpha"]`` is expressed in it.
    max_iter : int
        Maximum L-BFGS-B iterations.

    Attributes
    ----------
    params_ : dict
        ``{"r", "alpha", "a", "b"}``; alpha in units of ``time_scale_days`` days (weeks by default).
    params_days_ : dict
        The same with alpha in days; used by every prediction method (inputs in days).
    log_likelihood_ : float
        Total weighted log-likelihood at the optimum (density w.r.t. days, penalty excluded).
    n_iter_ : int
    converged_ : bool
    """

    def __init__(self, penalizer: float = 0.0, time_scale_days: float = 7.0, max_iter: int = 1000):
        self.penalizer = penalizer
        self.time_scale_days = time_scale_days
        self.max_iter = max_iter

    # ---- construction -----------------------------------------------------------------------------------

    @classmethod
    def from_params(
        cls, r: float, alpha: float, a: float, b: float, time_scale_days: float = 7.0, **kwargs: Any
    ) -> BetaGeoModel:
        """A ready-to-predict model with given parameters; ``alpha`` in units of ``time_scale_days`` days
        (e.g. the published CDNOW estimates ``from_params(0.243, 4.414, 0.793, 2.426)`` in weeks)."""
        model = cls(time_scale_days=time_scale_days, **kwargs)
        model._set_params(*_check_params(r, alpha, a, b))
        model.n_iter_ = 0
        model.converged_ = True
        return model

    def _set_params(self, r: float, alpha: float, a: float, b: float) -> None:
        scale = float(self.time_scale_days)
        self.params_ = {"r": float(r), "alpha": float(alpha), "a": float(a), "b": float(b)}
        self.params_days_ = {**self.params_, "alpha": float(alpha) * scale}

    def _check_hyper(self) -> None:
        if not (np.isfinite(self.time_scale_days) and self.time_scale_days > 0):
            raise ValueError(f"time_scale_days must be > 0, got {self.time_scale_days!r}")
        if not (np.isfinite(self.penalizer) and self.penalizer >= 0):
            raise ValueError(f"penalizer must be >= 0, got {self.penalizer!r}")
        if int(self.max_iter) < 1:
            raise ValueError(f"max_iter must be >= 1, got {self.max_iter!r}")

    # ---- fitting ------------------------------------------------------------------------------------------

    def fit(self, frequency: Any, recency: Any, T: Any, sample_weight: Any = None) -> BetaGeoModel:
        """Maximum-likelihood fit; ``frequency`` = repeat purchases, ``recency`` = t_x, ``T`` in days.

        ``sample_weight`` multiplies each customer's log-likelihood (e.g. counts of identical rows).
        Identical (frequency, recency, T) rows are collapsed internally, so whole-day data fit fast.
        """
        self._check_hyper()
        x, tx, t_obs = check_rfm(frequency, recency, T)
        n = len(x)
        if n == 0:
            raise ValueError("frequency: no rows to fit")
        if sample_weight is None:
            w = np.ones(n)
        else:
            w = _as_1d_float("sample_weight", sample_weight)
            if len(w) != n:
                raise ValueError(f"sample_weight: expected {n} values, got {len(w)}")
            _bad("sample_weight", w < 0, "are negative")
            if w.sum() <= 0:
                raise ValueError("sample_weight: weights sum to zero")
        scale = float(self.time_scale_days)
        xs, txs, ts, ws = _aggregate(x, tx / scale, t_obs / scale, w)
        objective = _Objective(xs, txs, ts, ws, float(self.penalizer))

        # Start: r = 1 and alpha matching the mean purchase rate mean(x)/mean(T); a = 1, b = 3 (E[p] = .25).
        mean_rate = max(float(ws @ xs) / max(float(ws @ ts), 1e-12), 1e-6)
        theta0 = np.log([1.0, 1.0 / mean_rate, 1.0, 3.0])
        theta0 = np.clip(theta0, _LOG_BOUNDS[0] + 1, _LOG_BOUNDS[1] - 1)
        res = optimize.minimize(
            objective,
            theta0,
            jac=True,
            method="L-BFGS-B",
            bounds=[_LOG_BOUNDS] * 4,
            options={"maxiter": int(self.max_iter), "ftol": 1e-13, "gtol": 1e-9, "maxcor": 20},
        )
        _, grad = objective(res.x)
        # L-BFGS-B often ends with a line-search "failure" once it is at machine precision; accept that
        # when the gradient (of a mean log-likelihood, in log-parameters) is small.
        self.converged_ = bool(res.success or np.max(np.abs(grad)) < 1e-5)
        self.n_iter_ = int(res.nit)
        if not self.converged_:
            warnings.warn(
                f"BG/NBD fit did not converge: {res.message} (max |grad| = {np.max(np.abs(grad)):.2e})",
                ConvergenceWarning,
                stacklevel=2,
            )
        at_bound = np.isclose(res.x, _LOG_BOUNDS[0]) | np.isclose(res.x, _LOG_BOUNDS[1])
        if at_bound.any():
            names = [nm for nm, hit in zip(PARAM_NAMES, at_bound, strict=True) if hit]
            warnings.warn(
                f"BG/NBD parameters {names} hit their bounds; the data do not identify them",
                ConvergenceWarning,
                stacklevel=2,
            )
        self._set_params(*np.exp(res.x))
        self.log_likelihood_ = float(w @ self.log_likelihood(x, tx, t_obs))
        return self

    # ---- per-customer quantities (inputs in days) ------------------------------------------------------

    def _days(self) -> tuple[float, float, float, float]:
        if not hasattr(self, "params_days_"):  # check_is_fitted's answer, without its cost per call
            check_is_fitted(self, "params_days_")
        p = self.params_days_
        return p["r"], p["alpha"], p["a"], p["b"]

    def log_likelihood(self, frequency: Any, recency: Any, T: Any) -> np.ndarray:
        """Per-customer log-likelihood of (x, t_x, T), as a density w.r.t. t_x in days."""
        params = self._days()
        x, tx, t_obs = check_rfm(frequency, recency, T)
        return bgnbd_log_likelihood(x, tx, t_obs, *params)

    def p_alive(self, frequency: Any, recency: Any, T: Any) -> np.ndarray:
        """P(alive at T | x, t_x, T) = 1 / (1 + [x > 0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x))."""
        params = self._days()
        x, tx, t_obs = check_rfm(frequency, recency, T)
        return _p_alive(x, tx, t_obs, *params)

    def p_no_purchase(self, t_days: Any, frequency: Any, recency: Any, T: Any) -> np.ndarray:
        """P(no purchase in (T, T + t] | x, t_x, T), t in days (scalar or one per customer).

        Derivation. A BG/NBD customer can only drop out right after a purchase, so a customer alive at T
        stays alive until its next purchase and makes no purchase in (T, T+t] iff its Poisson process has
        no event there: probability ``e^{-lambda t}``. A dead customer never purchases. Given the history
        and being alive, the likelihood's alive branch is ``(1-p)^x lambda^x e^{-lambda T}``, so the
        posterior of lambda is Gamma(r + x, rate alpha + T) (independent of p), and
        ``E[e^{-lambda t}] = ((alpha+T)/(alpha+T+t))^(r+x)``. Hence

            P = (1 - P_alive) + P_alive ((alpha+T)/(alpha+T+t))^(r+x)
              = 1 - P_alive (1 - ((alpha+T)/(alpha+T+t))^(r+x)),

        evaluated with expm1/log1p. Equivalently P = L(x, t_x, T+t) / L(x, t_x, T).
        """
        r, alpha, a, b = self._days()
        x, tx, t_obs = check_rfm(frequency, recency, T)
        t = _check_t(t_days, len(x))
        pa = _p_alive(x, tx, t_obs, r, alpha, a, b)
        p_buy_if_alive = -np.expm1(-(r + x) * np.log1p(t / (alpha + t_obs)))
        return 1.0 - pa * p_buy_if_alive

    def churn_logit(self, t_days: Any, frequency: Any, recency: Any, T: Any, eps: float = 1e-6) -> np.ndarray:
        """logit of p_no_purchase (clipped to [eps, 1-eps]); e.g. a LightGBM ``init_score`` for
        "no purchase in the next t days"."""
        p = np.clip(self.p_no_purchase(t_days, frequency, recency, T), eps, 1.0 - eps)
        return np.log(p) - np.log1p(-p)

    def expected_purchases(self, t_days: Any, frequency: Any, recency: Any, T: Any) -> np.ndarray:
        """E[X(T, T+t) | x, t_x, T]: expected repeat purchases in the next t days (FHL 2005, eq. 10)

            P_alive * (a+b+x-1)/(a-1) * [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; t/(alpha+T+t))]

        i.e. P_alive * E[(1 - e^{-lambda p t})/p] under the alive-posterior lambda ~ Gamma(r+x, alpha+T),
        p ~ Beta(a, b+x). Near a == 1 (removable singularity), for a+b+x-1 <= 0.05 or when 2F1 fails, the
        p-integral is done by Gauss-Jacobi quadrature instead.
        """
        r, alpha, a, b = self._days()
        x, tx, t_obs = check_rfm(frequency, recency, T)
        t = _check_t(t_days, len(x))
        pa = _p_alive(x, tx, t_obs, r, alpha, a, b)
        return pa * _alive_count(t, r + x, alpha + t_obs, a, b + x)

    def horizon_outputs(self, t_days: Any, frequency: Any, recency: Any, T: Any, *, checked: bool = False
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(:meth:`p_alive`, :meth:`expected_purchases`, :meth:`p_no_purchase`) for a window of ``t_days``,
        with one validation and one P(alive): the same numbers as the three calls, for the service's
        one-customer requests where the checks cost more than the arithmetic.

        ``checked=True``: the caller guarantees what :func:`check_rfm` would check (float64 1-D arrays of
        one length, finite, non-negative, integer ``frequency``, ``recency <= T``, ``recency == 0`` when
        ``frequency == 0``; as :func:`training.customer_base.bgnbd_input_arrays` returns them) and a
        finite non-negative scalar ``t_days``, so the checks are skipped."""
        r, alpha, a, b = self._days()
        if checked:
            x, tx, t_obs, t = frequency, recency, T, np.float64(t_days)
        else:
            x, tx, t_obs = check_rfm(frequency, recency, T)
            t = _check_t(t_days, len(x))
        pa = _p_alive(x, tx, t_obs, r, alpha, a, b)
        expected = pa * _alive_count(t, r + x, alpha + t_obs, a, b + x)
        p_buy_if_alive = -np.expm1(-(r + x) * np.log1p(t / (alpha + t_obs)))
        return pa, expected, 1.0 - pa * p_buy_if_alive

    def expected_purchases_unconditional(self, t_days: Any) -> np.ndarray:
        """E[X(t)] for a customer just after the first purchase, t in days (FHL 2005, eq. 9):
        (a+b-1)/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b; a+b-1; t/(alpha+t))]."""
        r, alpha, a, b = self._days()
        t = _check_t(t_days)
        out = _alive_count(np.atleast_1d(t), r, alpha, a, b)
        return out.reshape(t.shape)

    def sample(self, n: int, T_days: Any, random_state: int | np.random.Generator | None = None) -> pd.DataFrame:
        """Simulate ``n`` customers each observed ``T_days`` from the fitted parameters (days)."""
        r, alpha, a, b = self._days()
        return simulate_bgnbd(r, alpha, a, b, T_days, n, rng=random_state)
