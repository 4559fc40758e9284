"""The multi-scale GP: hyperparameter fitting (rare, bounded) and exact conditioning (cheap, frequent).

Two objects, two costs:

- :func:`fit_surrogate` maximises the exact marginal likelihood of a GPyTorch ``ExactGP`` with the
  covariance and mean of :mod:`schedulers.multiscale.kernels`, warm-started from the previous
  hyperparameters, with L-BFGS-B capped at ``max_iter`` iterations and on at most a few hundred points.
  It never uses a wall-clock timeout or random restarts, so a fit is a pure function of its inputs (the
  scheduler's replay relies on that). It returns a :class:`Surrogate`: frozen hyperparameters plus the
  outcome standardisation in force for them.
- :meth:`Surrogate.condition` builds a :class:`Posterior` on any training set with those hyperparameters:
  one Cholesky factorisation (``O(n^3)``, ``n`` capped by the caller), after which predictions cost
  ``O(n^2)`` per point and adding points (new reports, kriging-believer fantasies) is a block update of the
  factor (``O(n^2 k)``), not a refit.

Units: every value here is in the *minimisation* units of the caller (``y``), not standardised, seen through
the surrogate's output warp (:mod:`schedulers.multiscale.warping`): observations go in in the caller's
units; predictions, covariances and the noise come out on the warped scale, which *is* the caller's units at
and below the warp's fence (everywhere good configs live). :meth:`Posterior.observed` maps an observation to
that scale and :meth:`Posterior.in_caller_units` maps a prediction back.
Shapes: inputs are ``n x D`` with ``D = d + 2`` (see :mod:`schedulers.multiscale.features`); outputs ``n``
vectors and ``n x n`` covariances. Fitting runs in torch (float64); conditioning and prediction run in
numpy on the extracted :class:`Hyperparameters`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import torch
from scipy.linalg import cho_solve, solve_triangular
from botorch.exceptions.warnings import OptimizationWarning
from botorch.models.gpytorch import GPyTorchModel
from botorch.optim.fit import fit_gpytorch_mll_scipy
from gpytorch.constraints import GreaterThan
from gpytorch.distributions import MultivariateNormal
from gpytorch.kernels import AdditiveKernel, ScaleKernel
from gpytorch.likelihoods import GaussianLikelihood
from gpytorch.mlls import ExactMarginalLogLikelihood
from gpytorch.models import ExactGP
from gpytorch.priors import LogNormalPrior

from schedulers.errors import ModelFittingError
from schedulers.multiscale.kernels import DriftMode, MeanKind, ShiftedConfigKernel, make_mean, multiscale_kernel
from schedulers.multiscale.warping import OutputWarp

DTYPE = torch.float64
_JITTER = 1e-8
_SQRT5 = 5.0 ** 0.5


class MultiScaleGP(ExactGP, GPyTorchModel):
    """Exact GP over ``[x, u_m, u_s]`` with the multi-scale kernel; trained on standardised outcomes.
    A BoTorch model, so its ``posterior`` works with BoTorch acquisition functions too."""

    _num_outputs = 1

    def __init__(self, train_X: torch.Tensor, train_y: torch.Tensor, mean_kind: MeanKind,
                 interaction: bool = False, drift: bool = False, common: bool = False) -> None:
        likelihood = GaussianLikelihood(noise_prior=LogNormalPrior(-4.0, 1.0),
                                        noise_constraint=GreaterThan(1e-6))
        super().__init__(train_X, train_y, likelihood)
        dim = train_X.shape[-1] - 2
        self.mean_module = make_mean(mean_kind, dim)
        self._terms = ("shared",) + (("interaction",) if interaction else ()) + (("common",) if common else ())
        self.covar_module = multiscale_kernel(dim, interaction, drift, common)
        self._initialise()
        self.to(DTYPE)

    def _initialise(self) -> None:
        # start from the priors' typical values rather than the constraints' midpoints
        self.likelihood.noise = 1e-2
        shared, interaction, common = self.kernel_terms()
        shared.outputscale = 1.0
        for decay in shared.base_kernel.kernels[1:]:
            decay.lengthscale = 0.5
            decay.power = 1.5
            decay.offset = 1.0
        if interaction is not None:
            interaction.outputscale = 0.2
            interaction.base_kernel.kernels[1].lengthscale = 0.5
        if common is not None:
            common.outputscale = 0.5
            common.base_kernel.lengthscale = 0.5

    def kernel_terms(self) -> tuple[ScaleKernel, ScaleKernel | None, ScaleKernel | None]:
        """(the shared product term, the config-by-fidelity interaction term or None, the common fidelity
        term or None)."""
        kernels = (self.covar_module.kernels if isinstance(self.covar_module, AdditiveKernel)
                   else [self.covar_module])
        terms = dict(zip(self._terms, kernels))
        return terms["shared"], terms.get("interaction"), terms.get("common")

    def forward(self, X: torch.Tensor) -> MultivariateNormal:
        return MultivariateNormal(self.mean_module(X), self.covar_module(X))


def _matern52(A: np.ndarray, B: np.ndarray, lengthscales: np.ndarray) -> np.ndarray:
    """Matern-5/2 correlation ``a x b`` of ``a x d`` and ``b x d`` configs with ARD lengthscales ``d``."""
    a, b = A / lengthscales, B / lengthscales
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    r = np.sqrt(np.clip(sq, 1e-30, None)) * _SQRT5
    return (1.0 + r + r * r / 3.0) * np.exp(-r)


def _rbf(A: np.ndarray, B: np.ndarray, lengthscales: np.ndarray) -> np.ndarray:
    """RBF correlation ``a x b`` of ``a x k`` and ``b x k`` fidelity columns with ARD lengthscales ``k``."""
    a, b = A / lengthscales, B / lengthscales
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.exp(-0.5 * np.clip(sq, 0.0, None))


@dataclass(frozen=True)
class Hyperparameters:
    """The fitted GP as plain arrays, evaluated in numpy (GPyTorch's lazy kernels cost milliseconds per call
    in bookkeeping alone, which the per-report decisions cannot afford). Standardised units."""

    outputscale: float
    lengthscales: np.ndarray        # d, Matern-5/2 over the config columns
    decay: tuple[tuple[float, float, float], tuple[float, float, float]]  # (beta, alpha, w) for u_m, u_s
    noise: float
    mean_kind: MeanKind
    mean: tuple[float, ...]         # constant | (c, a_m, a_s, r_m, r_s)
    #: (outputscale, d Matern lengthscales over x, 2 RBF lengthscales over (u_m, u_s)) or None
    interaction: tuple[float, np.ndarray, np.ndarray] | None = None
    #: ``2 x d`` learnt shift of the config frame (rows u_m, u_s; see kernels.OptimumDrift) or None
    drift: np.ndarray | None = None
    #: (outputscale, 2 RBF lengthscales over (u_m, u_s)) of the common fidelity term, or None
    common: tuple[float, np.ndarray] | None = None

    @classmethod
    def of(cls, model: "MultiScaleGP", mean_kind: MeanKind) -> "Hyperparameters":
        scale, inter, common_term = model.kernel_terms()
        matern, decay_m, decay_s = scale.base_kernel.kernels
        drift = None
        if isinstance(matern, ShiftedConfigKernel):
            drift = matern.drift_module.drift.detach().numpy().copy()
            matern = matern.base
        decay = tuple((float(k.lengthscale.item()), float(k.power.item()), float(k.offset.item()))
                      for k in (decay_m, decay_s))
        mean_module = model.mean_module
        if mean_kind is MeanKind.SCALING_LAW:
            mean = (float(mean_module.constant.item()), *map(float, mean_module.amplitude.detach()),
                    *map(float, mean_module.rate.detach()))
        else:
            mean = (float(mean_module.constant.item()),)
        common = None
        if common_term is not None:
            common = (float(common_term.outputscale.item()),
                      common_term.base_kernel.lengthscale.detach().numpy().reshape(-1).copy())
        interaction = None
        if inter is not None:
            matern_i, rbf = inter.base_kernel.kernels
            if isinstance(matern_i, ShiftedConfigKernel):
                matern_i = matern_i.base
            interaction = (float(inter.outputscale.item()), matern_i.lengthscale.detach().numpy().reshape(-1).copy(),
                           rbf.lengthscale.detach().numpy().reshape(-1).copy())
        return cls(float(scale.outputscale.item()), matern.lengthscale.detach().numpy().reshape(-1).copy(),
                   decay, float(model.likelihood.noise.item()), mean_kind, mean,  # type: ignore[arg-type]
                   interaction, drift, common)

    def covariance(self, A: np.ndarray, B: np.ndarray) -> np.ndarray:
        """Prior covariance ``a x b`` of inputs ``a x D`` and ``b x D``."""
        d = self.lengthscales.shape[0]
        za, zb = self.configs(A), self.configs(B)
        k = _matern52(za, zb, self.lengthscales)
        for col, (beta, alpha, w) in zip((d, d + 1), self.decay):
            k = k * (w + (1.0 + (A[:, col][:, None] + B[:, col][None, :]) / beta) ** -alpha)
        k = self.outputscale * k
        if self.interaction is not None:
            scale, lengthscales, fid_lengthscales = self.interaction
            k = k + scale * _matern52(za, zb, lengthscales) * _rbf(A[:, d: d + 2], B[:, d: d + 2], fid_lengthscales)
        if self.common is not None:
            scale, fid_lengthscales = self.common
            k = k + scale * _rbf(A[:, d: d + 2], B[:, d: d + 2], fid_lengthscales)
        return k

    def configs(self, A: np.ndarray) -> np.ndarray:
        """The ``a x d`` configs of ``a x D`` inputs in the frame the config kernels compare them in: shifted
        by the learnt drift, which is zero at the target."""
        d = self.lengthscales.shape[0]
        if self.drift is None:
            return A[:, :d]
        return A[:, :d] - (1.0 - A[:, d: d + 2]) @ self.drift

    def variance(self, A: np.ndarray) -> np.ndarray:
        """Prior variance ``a`` (the diagonal of :meth:`covariance`)."""
        d = self.lengthscales.shape[0]
        k = np.full(A.shape[0], self.outputscale)
        for col, (beta, alpha, w) in zip((d, d + 1), self.decay):
            k = k * (w + (1.0 + 2.0 * A[:, col] / beta) ** -alpha)
        if self.interaction is not None:
            k = k + self.interaction[0]
        if self.common is not None:
            k = k + self.common[0]
        return k

    def prior_mean(self, A: np.ndarray) -> np.ndarray:
        if self.mean_kind is MeanKind.SCALING_LAW:
            c, a_m, a_s, r_m, r_s = self.mean
            d = self.lengthscales.shape[0]
            return c + a_m * np.exp(-r_m * A[:, d]) + a_s * np.exp(-r_s * A[:, d + 1])
        return np.full(A.shape[0], self.mean[0])


@dataclass
class Surrogate:
    """Frozen GP hyperparameters plus the outcome transform they were fitted in: the output warp, then the
    standardisation ``(warp(y) - y_mean) / y_std``."""

    model: MultiScaleGP
    hyper: Hyperparameters
    y_mean: float
    y_std: float
    fitted: bool = True
    fit_error: str | None = None
    #: log marginal likelihood of the standardised training outcomes under these hyperparameters (nats,
    #: priors excluded): what :func:`fit_surrogate` callers compare kernels by
    log_likelihood: float = float("nan")
    warp: OutputWarp = OutputWarp()

    @property
    def noise(self) -> float:
        """Observation-noise variance on the warped scale (the caller's units below the fence)."""
        return self.hyper.noise * self.y_std ** 2

    def state(self) -> dict[str, Any]:
        """Hyperparameters for a warm start of the next fit."""
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()
                if not k.startswith("train_")}

    def condition(self, X: np.ndarray, y: np.ndarray) -> "Posterior":
        """The exact posterior given ``n x D`` inputs and ``n`` outcomes, with these hyperparameters."""
        return Posterior.build(self, np.asarray(X, dtype=float), np.asarray(y, dtype=float))


def fit_surrogate(X: np.ndarray, y: np.ndarray, *, mean_kind: MeanKind = MeanKind.SCALING_LAW,
                  warm_start: dict[str, Any] | None = None, max_iter: int = 60,
                  interaction: bool = False, drift: bool = False, common: bool = False,
                  warp: OutputWarp = OutputWarp()) -> Surrogate:
    """Fit hyperparameters on ``n x D`` inputs and ``n`` outcomes (minimisation units) seen through
    ``warp`` (:class:`~schedulers.multiscale.warping.OutputWarp`; the identity by default), which the
    returned surrogate keeps.

    On an optimiser failure or non-finite result the warm-start (or prior-centred) hyperparameters are
    kept and the returned surrogate has ``fitted=False``; the caller keeps working.
    """
    Xt = torch.as_tensor(X, dtype=DTYPE)
    yt = torch.as_tensor(y, dtype=DTYPE)
    if Xt.ndim != 2 or yt.shape != (Xt.shape[0],) or Xt.shape[0] < 2:
        raise ModelFittingError(f"need n >= 2 points as n x D inputs and n outcomes, got {tuple(Xt.shape)}"
                                f" and {tuple(yt.shape)}")
    yt = torch.as_tensor(warp(np.asarray(y, dtype=float)), dtype=DTYPE)
    y_mean = float(yt.mean())
    y_std = float(yt.std()) if float(yt.std()) > 1e-12 else 1.0
    model = MultiScaleGP(Xt, (yt - y_mean) / y_std, mean_kind, interaction, drift, common)
    if warm_start is not None:
        model.load_state_dict(warm_start, strict=False)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    error = None
    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    model.train()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizationWarning)
            fit_gpytorch_mll_scipy(mll, options={"maxiter": int(max_iter)})
        if not all(torch.isfinite(p).all() for p in model.parameters()):
            raise ModelFittingError("non-finite hyperparameters after fitting")
    except Exception as exc:  # the optimiser raises assorted numerical errors; keep the previous fit
        error = f"{type(exc).__name__}: {exc}"
        model.load_state_dict(start)
    model.eval()
    with torch.no_grad():
        # the exact marginal likelihood in eval mode is the prior predictive density of the training set
        log_likelihood = float(model.likelihood(model.forward(Xt)).log_prob((yt - y_mean) / y_std))
    return Surrogate(model, Hyperparameters.of(model, mean_kind), y_mean, y_std,
                     fitted=error is None, fit_error=error, log_likelihood=log_likelihood, warp=warp)


def fit_drift_selected(X: np.ndarray, y: np.ndarray, mode: DriftMode, warm: Mapping[bool, Surrogate], *,
                       mean_kind: MeanKind = MeanKind.SCALING_LAW, max_iter: int = 60,
                       interaction: bool = False, common: bool = False,
                       warp: OutputWarp = OutputWarp()) -> tuple[Surrogate, dict[bool, Surrogate]]:
    """Fit the fixed frame, the drifting frame, or both (``mode``), each warm-started from ``warm[drift]``;
    returns (the surrogate to use, the fits by frame for the next warm start).

    With :attr:`DriftMode.SELECTED` the drifting frame is kept only when its log marginal likelihood beats
    the fixed frame's by more than its ``2 d`` extra parameters (Akaike's penalty, one nat per
    parameter) and, where curves at the largest sizes exist (:func:`extrapolation_blocks`), it predicts
    each of them at least as well from the rest of the data (:meth:`Posterior.held_out_log_density`):
    the likelihood is dominated by the many small runs, while what matters is the extrapolation to larger
    sizes. Measured (10 seeds each of datamix, steplaw, synthetic_sp, budget 10): the check overruled the
    likelihood in 1 of 30 runs (steplaw seed 7, final regret 0.345% -> 0.125%); where the drift was kept
    on steplaw it predicted the large-size curves better by 12-16 nats (bench/README.md, "Flagship
    tuning", third round). Always drifting cost ``hartmann``, whose optimum does not move, 4x in regret after one
    target run, while it halved datamix's cost to 0.25% (bench/README.md, "Flagship tuning")."""
    frames = {DriftMode.OFF: (False,), DriftMode.ON: (True,), DriftMode.SELECTED: (False, True)}[mode]
    fits = dict(warm)
    for drift in frames:
        previous = warm.get(drift)
        fits[drift] = fit_surrogate(X, y, mean_kind=mean_kind, warm_start=previous.state() if previous else None,
                                    max_iter=max_iter, interaction=interaction, drift=drift, common=common,
                                    warp=warp)
    if len(frames) == 1:
        return fits[frames[0]], fits
    extra = 2 * (np.asarray(X).shape[1] - 2)
    gain = fits[True].log_likelihood - fits[False].log_likelihood
    if gain <= extra:
        return fits[False], fits
    blocks = extrapolation_blocks(X)
    if blocks:
        try:
            held = {d: fits[d].condition(X, y).held_out_log_density(blocks) for d in (False, True)}
        except ModelFittingError:
            return fits[False], fits
        if held[True] < held[False]:
            return fits[False], fits
    return fits[True], fits


def extrapolation_blocks(X: np.ndarray) -> list[np.ndarray]:
    """Row indices of each curve (one config at one size) run at the two largest sizes of ``n x D``
    inputs (config columns, then log size and log steps), when smaller sizes were run too: the curves a
    model must extrapolate to from smaller sizes, as it does to the target."""
    X = np.asarray(X, dtype=float)
    sizes = np.unique(np.round(X[:, -2], 9))
    if len(sizes) < 2:
        return []
    large = set(sizes[-2:].tolist()) if len(sizes) > 2 else {sizes[-1]}
    keys = [row.tobytes() for row in np.round(X[:, :-1], 9)]
    groups: dict[bytes, list[int]] = {}
    for i, key in enumerate(keys):
        if round(float(X[i, -2]), 9) in large:
            groups.setdefault(key, []).append(i)
    return [np.asarray(rows) for rows in groups.values()]


class Posterior:
    """Exact GP posterior on a fixed training set with a cached Cholesky factor ``L L^T = K + noise I``."""

    def __init__(self, surrogate: Surrogate, X: np.ndarray, r: np.ndarray, L: np.ndarray) -> None:
        self.surrogate = surrogate
        self.hyper = surrogate.hyper
        self.X = X          # n x D
        self._r = r         # n: standardised outcomes minus the prior mean
        self._L = L         # n x n lower triangular
        self._alpha = cho_solve((L, True), r) if len(r) else r

    @classmethod
    def build(cls, surrogate: Surrogate, X: np.ndarray, y: np.ndarray) -> "Posterior":
        hyper = surrogate.hyper
        r = (surrogate.warp(y) - surrogate.y_mean) / surrogate.y_std - hyper.prior_mean(X)
        K = hyper.covariance(X, X)
        K[np.diag_indices_from(K)] += hyper.noise + _JITTER
        jitter = 0.0
        while True:
            try:
                L = np.linalg.cholesky(K + jitter * np.eye(len(X)) if jitter else K)
                break
            except np.linalg.LinAlgError:
                jitter = 1e-6 if jitter == 0.0 else jitter * 10.0
                if jitter > 1.0:
                    raise ModelFittingError("kernel matrix is not positive definite") from None
        return cls(surrogate, X, r, L)

    @property
    def n(self) -> int:
        return self.X.shape[0]

    @property
    def noise(self) -> float:
        """Observation-noise variance on the warped scale."""
        return self.surrogate.noise

    def observed(self, y: np.ndarray | float) -> np.ndarray:
        """Observations in the caller's units on the warped scale that predictions use."""
        return self.surrogate.warp(np.atleast_1d(np.asarray(y, dtype=float)))

    def in_caller_units(self, mean: np.ndarray, var: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Predicted (mean, variance) back in the caller's units: the inverse warp of the mean (the
        median of the warped prediction) and the first-order variance; the identity below the fence."""
        warp = self.surrogate.warp
        slope = warp.inverse_slope(mean)
        return warp.inverse(mean), np.asarray(var, dtype=float) * slope * slope

    def held_out_log_density(self, blocks: list[np.ndarray]) -> float:
        """Sum over index blocks ``B`` of ``log p(y_B | every other observation)`` (standardised units).

        Leaving a block out of an exact GP has a closed form (Rasmussen and Williams 2006, eq. 5.12, by
        blocks): with ``A = (K + noise I)^-1`` and ``alpha = A r``, the held-out residual is
        ``A_BB^-1 alpha_B`` with covariance ``A_BB^-1``, so no refit or re-factorisation is needed."""
        A = cho_solve((self._L, True), np.eye(self.n))
        total = 0.0
        for B in blocks:
            c = np.linalg.cholesky(A[np.ix_(B, B)])
            w = solve_triangular(c, self._alpha[B], lower=True)
            total += float(-0.5 * w @ w + np.log(np.diag(c)).sum() - 0.5 * len(B) * np.log(2.0 * np.pi))
        return total

    def _solve(self, Q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(standardised posterior mean ``q``, ``V = L^-1 K(X, Q)`` ``n x q``)."""
        Kxq = self.hyper.covariance(self.X, Q)
        mean = self.hyper.prior_mean(Q) + Kxq.T @ self._alpha
        V = solve_triangular(self._L, Kxq, lower=True, check_finite=False)
        return mean, V

    def predict(self, Q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and variance of the latent ``f`` at ``q x D`` points (warped scale)."""
        Q = np.asarray(Q, dtype=float)
        mean, V = self._solve(Q)
        var = np.clip(self.hyper.variance(Q) - (V * V).sum(0), 1e-12, None)
        s = self.surrogate.y_std
        return mean * s + self.surrogate.y_mean, var * s * s

    def joint(self, Q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean ``q`` and covariance ``q x q`` of the latent ``f`` (warped scale)."""
        Q = np.asarray(Q, dtype=float)
        mean, V = self._solve(Q)
        cov = self.hyper.covariance(Q, Q) - V.T @ V
        s = self.surrogate.y_std
        return mean * s + self.surrogate.y_mean, cov * s * s

    def cross(self, A: np.ndarray, B: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Posterior (mean ``a``, variance ``a``, cross-covariance ``a x b``, variance ``b``) of the latent
        ``f`` at ``a x D`` points ``A`` and ``b x D`` points ``B`` (warped scale), without the ``b x b``
        block that :meth:`joint` would build: what a value-of-information over many observations needs."""
        A, B = np.asarray(A, dtype=float), np.asarray(B, dtype=float)
        mean_a, Va = self._solve(A)
        Kxb = self.hyper.covariance(self.X, B)
        Vb = solve_triangular(self._L, Kxb, lower=True, check_finite=False)
        s2 = self.surrogate.y_std ** 2
        var_a = np.clip(self.hyper.variance(A) - (Va * Va).sum(0), 1e-12, None)
        var_b = np.clip(self.hyper.variance(B) - (Vb * Vb).sum(0), 1e-12, None)
        cov_ab = self.hyper.covariance(A, B) - Va.T @ Vb
        return mean_a * self.surrogate.y_std + self.surrogate.y_mean, var_a * s2, cov_ab * s2, var_b * s2

    def condition(self, Xn: np.ndarray, yn: np.ndarray) -> "Posterior":
        """This posterior with ``k`` more observations (caller's units): a block update of the Cholesky
        factor."""
        yn = np.asarray(yn, dtype=float).reshape(-1)
        return self._extend(Xn, self.surrogate.warp(yn))

    def _extend(self, Xn: np.ndarray, wn: np.ndarray) -> "Posterior":
        """:meth:`condition` with ``k`` outcomes already on the warped scale."""
        Xn = np.asarray(Xn, dtype=float).reshape(-1, self.X.shape[1])
        wn = np.asarray(wn, dtype=float).reshape(-1)
        if len(wn) == 0:
            return self
        hyper = self.hyper
        yn = self.surrogate.warp.inverse(wn)
        rn = (wn - self.surrogate.y_mean) / self.surrogate.y_std - hyper.prior_mean(Xn)
        K12 = hyper.covariance(self.X, Xn)
        K22 = hyper.covariance(Xn, Xn) + (hyper.noise + _JITTER) * np.eye(len(yn))
        L12 = solve_triangular(self._L, K12, lower=True, check_finite=False)
        try:
            L22 = np.linalg.cholesky(K22 - L12.T @ L12 + 1e-9 * np.eye(len(yn)))
        except np.linalg.LinAlgError:  # numerically a duplicate: refactorise with jitter
            return Posterior.build(self.surrogate, np.vstack([self.X, Xn]), np.concatenate([self.y, yn]))
        n, k = self.n, len(yn)
        L = np.zeros((n + k, n + k))
        L[:n, :n] = self._L
        L[n:, :n] = L12.T
        L[n:, n:] = L22
        return Posterior(self.surrogate, np.vstack([self.X, Xn]), np.concatenate([self._r, rn]), L)

    @property
    def y(self) -> np.ndarray:
        """Training outcomes in the caller's units."""
        warped = (self._r + self.hyper.prior_mean(self.X)) * self.surrogate.y_std + self.surrogate.y_mean
        return self.surrogate.warp.inverse(warped)

    def believe(self, Xn: np.ndarray) -> "Posterior":
        """Kriging believer: condition on ``k`` pending points ``k x D`` at their posterior mean."""
        if len(Xn) == 0:
            return self
        mean, _ = self.predict(Xn)
        return self._extend(Xn, mean)
