"""A Gaussian-process surrogate: fit on ``(X, y)`` with standardised outcomes, predict, condition on pending.

:func:`fit_gp` fits a BoTorch ``SingleTaskGP`` (Matern-5/2 ARD, learned homoskedastic noise; BoTorch's
default priors) by maximising the exact marginal log likelihood with ``fit_gpytorch_mll``. The outcome is
standardised here rather than with BoTorch's ``Standardize`` transform, so that the model can later be
conditioned on more points (:meth:`GPSurrogate.believe`) without re-standardising: acquisition functions
built on :attr:`GPSurrogate.model` therefore work in *standardised units* (use :attr:`GPSurrogate.best_f`
and :meth:`GPSurrogate.standardize`), while :meth:`GPSurrogate.predict` answers in the caller's units.

If fitting fails (the optimiser raises, or leaves non-finite hyperparameters), the surrogate falls back to
the model with BoTorch's default (prior-centred) hyperparameters, flags ``fitted=False`` and keeps the
reason in ``fit_error``; a scheduler keeps working and the next fit, with more data, may succeed.

Shapes: ``X`` is ``n x d`` (float64, normally the unit-cube encoding of a search space), ``y`` is ``n``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from botorch.exceptions.warnings import InputDataWarning, OptimizationWarning
from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskGP
from botorch.models.model import Model
from gpytorch.mlls import ExactMarginalLogLikelihood

from schedulers.errors import ModelFittingError

#: Builds an (unfitted) exact GP from ``train_X`` (``n x d``) and standardised ``train_Y`` (``n x 1``).
#: It must not add an outcome transform: :func:`fit_gp` standardises itself.
ModelFactory = Callable[[torch.Tensor, torch.Tensor], Model]

DTYPE = torch.float64


def default_model(train_X: torch.Tensor, train_Y: torch.Tensor) -> Model:
    """BoTorch's ``SingleTaskGP`` without an outcome transform (targets arrive standardised)."""
    return SingleTaskGP(train_X, train_Y, outcome_transform=None)


def as_tensor(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    """float64 tensor view of an array (no copy when already a float64 tensor)."""
    return torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x, dtype=DTYPE)


@dataclass
class GPSurrogate:
    """A fitted GP and the affine map between the caller's outcome units and the model's.

    ``model`` was trained on ``(train_y - y_mean) / y_std``; ``train_X`` is ``n x d``, ``train_y`` is ``n``.
    """

    model: Model
    train_X: torch.Tensor
    train_y: torch.Tensor
    y_mean: float
    y_std: float
    fitted: bool
    fit_error: str | None = None
    #: points added by :meth:`believe` / :meth:`condition_on` (``p x d``), not real observations
    pending_X: torch.Tensor = field(default_factory=lambda: torch.empty(0, 0, dtype=DTYPE))

    @property
    def n(self) -> int:
        return int(self.train_X.shape[0])

    def standardize(self, y: float | np.ndarray | torch.Tensor) -> float | np.ndarray | torch.Tensor:
        """Caller units -> model units."""
        return (y - self.y_mean) / self.y_std

    @property
    def best_f(self) -> float:
        """The best (smallest) real observation, in model units: the incumbent for improvement criteria."""
        return float(self.standardize(float(self.train_y.min())))

    def predict(self, X: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation of the latent function at ``X`` (``n x d``), caller units.

        Returns two arrays of shape ``n``.
        """
        X = as_tensor(X)
        with torch.no_grad():
            post = self.model.posterior(X)
            mean = post.mean.reshape(-1) * self.y_std + self.y_mean
            std = post.variance.clamp_min(0.0).sqrt().reshape(-1) * self.y_std
        return mean.numpy().copy(), std.numpy().copy()

    def condition_on(self, X: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor) -> "GPSurrogate":
        """A surrogate with the same hyperparameters that has also seen ``y`` (caller units) at ``X`` (``p x d``).

        No refit: this is the cheap update used for pending points; the real observations, ``best_f`` and
        the standardisation stay those of ``self``.
        """
        X = as_tensor(X)
        if X.shape[0] == 0:
            return self
        Y = as_tensor(self.standardize(as_tensor(y))).reshape(-1, 1)
        with torch.no_grad():
            self.model.posterior(self.train_X[:1])  # builds the prediction cache conditioning needs
        model = self.model.condition_on_observations(X, Y)
        model.eval()
        pending = X if self.pending_X.numel() == 0 else torch.cat([self.pending_X, X])
        return GPSurrogate(model, self.train_X, self.train_y, self.y_mean, self.y_std, self.fitted,
                           self.fit_error, pending)

    def believe(self, X: np.ndarray | torch.Tensor) -> "GPSurrogate":
        """Kriging believer: condition on the posterior mean at ``X`` (``p x d``), which keeps the mean and
        shrinks the variance there, so an acquisition stops favouring points already being evaluated."""
        X = as_tensor(X)
        if X.shape[0] == 0:
            return self
        mean, _ = self.predict(X)
        return self.condition_on(X, mean)


def fit_gp(X: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor, *, seed: int | None = None,
           model_factory: ModelFactory | None = None) -> GPSurrogate:
    """Fit a GP on ``X`` (``n x d``) and ``y`` (``n``, finite, any units; smaller is better by convention).

    ``seed`` seeds torch inside a forked RNG (BoTorch's fitting retries draw random initial
    hyperparameters), so a fit is a pure function of ``(X, y, seed)`` and the global torch RNG is untouched.
    Raises :class:`~schedulers.errors.ModelFittingError` only for unusable data (no rows, non-finite
    values, mismatched shapes); optimiser failures fall back as described in the module docstring.
    """
    X = as_tensor(X)
    y = as_tensor(y).reshape(-1)
    if X.ndim != 2 or X.shape[0] != y.shape[0]:
        raise ModelFittingError(f"fit_gp needs X as n x d and y as n, got {tuple(X.shape)} and {tuple(y.shape)}")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ModelFittingError(f"fit_gp needs at least one observation and one input, got X {tuple(X.shape)}")
    if not (torch.isfinite(X).all() and torch.isfinite(y).all()):
        raise ModelFittingError("fit_gp needs finite X and y (impute failed trials before fitting)")
    y_mean = float(y.mean())
    y_std = float(y.std()) if y.shape[0] > 1 else 1.0
    if not math.isfinite(y_std) or y_std < 1e-12 * max(1.0, abs(y_mean)):
        y_std = 1.0  # constant outcome: keep the scale rather than divide by ~0
    Y = ((y - y_mean) / y_std).unsqueeze(-1)
    factory = model_factory or default_model
    fitted, error = True, None
    with torch.random.fork_rng(), warnings.catch_warnings():
        # constant outcomes (one point, or all equal) trip BoTorch's standardisation check; that is expected
        warnings.simplefilter("ignore", InputDataWarning)
        warnings.simplefilter("ignore", OptimizationWarning)
        if seed is not None:
            torch.manual_seed(int(seed))
        model = factory(X, Y)
        try:
            fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
            if not all(torch.isfinite(p).all() for p in model.parameters()):
                raise ModelFittingError("fitted hyperparameters are not finite")
        except Exception as exc:  # noqa: BLE001 - any optimiser failure falls back to the prior model
            fitted, error = False, f"{type(exc).__name__}: {exc}"
            model = factory(X, Y)
    model.eval()
    return GPSurrogate(model, X, y, y_mean, y_std, fitted, error, torch.empty(0, X.shape[1], dtype=DTYPE))
