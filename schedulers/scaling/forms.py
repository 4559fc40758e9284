"""Parametric loss-law forms, written in log space so they can be fitted the way Hoffmann et al. did.

A form maps scale variables ``x`` (``n x k``, all > 0, e.g. model size N and data D) to a predicted
log loss through unconstrained fitting parameters ``theta`` (``p``). The fitter
(:mod:`schedulers.scaling.loss_law`) only talks to :class:`LossLawForm`, so another law (a broken power
law, a data-constrained law...) is a new subclass, not a new fitter.

The one form shipped is the sum of power laws with an irreducible term::

    L(x) = E + sum_j A_j / x_j^alpha_j
    log L = LSE(e, a_1 - alpha_1 log x_1, ..., a_k - alpha_k log x_k),   E = exp(e), A_j = exp(a_j)

which is ``L(x) = E + A x^-alpha`` for ``k = 1`` and Chinchilla's ``L(N, D) = E + A/N^alpha + B/D^beta``
for ``k = 2``. The log-sum-exp form keeps E, A, B positive without constraints and makes the fit
scale-free in the loss.
"""

from __future__ import annotations

import abc
import itertools
from typing import Sequence

import numpy as np

from schedulers.scaling.errors import InvalidScalingDataError


class LossLawForm(abc.ABC):
    """A loss law ``log L = f(theta, log x)``.

    Contract:

    - :attr:`variables` names the ``k`` columns of ``x`` (e.g. ``("N", "D")``); every value is > 0.
    - :attr:`theta_names` names the ``p`` fitting parameters; any real ``theta`` is a valid law.
    - :meth:`log_predict` is vectorised over a batch of parameter vectors: ``theta`` is ``b x p``,
      ``log_x`` is ``n x k``; it returns ``b x n`` log losses and, when asked, their Jacobian ``b x n x p``.
    - :meth:`initial_grid` returns the ``m x p`` starting points of the multi-start optimiser.
    - :meth:`coefficients` turns one ``theta`` into the law's natural coefficients (``E``, ``A``, ``alpha``...).
    - :meth:`bounds` gives L-BFGS-B box bounds per parameter (``None`` for unbounded sides).
    """

    #: short name used on the wire ("chinchilla", "one_variable")
    name: str = "form"

    def __init__(self, variables: Sequence[str]) -> None:
        self.variables = tuple(variables)

    @property
    @abc.abstractmethod
    def theta_names(self) -> tuple[str, ...]:
        """Names of the fitting parameters, in ``theta`` order."""

    @property
    @abc.abstractmethod
    def coefficient_names(self) -> tuple[str, ...]:
        """Names of the natural coefficients returned by :meth:`coefficients`."""

    @abc.abstractmethod
    def log_predict(self, theta: np.ndarray, log_x: np.ndarray,
                    with_jacobian: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """Log loss ``b x n`` (and Jacobian ``b x n x p`` if asked) for ``theta`` ``b x p``, ``log_x`` ``n x k``."""

    @abc.abstractmethod
    def initial_grid(self) -> np.ndarray:
        """Starting points ``m x p`` for the multi-start optimiser."""

    @abc.abstractmethod
    def coefficients(self, theta: np.ndarray) -> np.ndarray:
        """Natural coefficients for ``theta`` ``b x p``: ``b x len(coefficient_names)``."""

    def bounds(self) -> list[tuple[float | None, float | None]]:
        return [(None, None)] * len(self.theta_names)

    @property
    def n_params(self) -> int:
        return len(self.theta_names)

    def to_dict(self) -> dict:
        return {"name": self.name, "variables": list(self.variables)}


# Names of (amplitude, exponent) per term, as in the papers: L = E + A/N^alpha + B/D^beta.
_TERM_NAMES = (("A", "alpha"), ("B", "beta"))

# Hoffmann et al. (2022), appendix D.2: the initialisation grid of the L-BFGS fits.
_GRID_E = (-1.0, -0.5, 0.0, 0.5, 1.0)
_GRID_AMPLITUDE = (0.0, 5.0, 10.0, 15.0, 20.0, 25.0)
_GRID_EXPONENT = (0.0, 0.5, 1.0, 1.5, 2.0)
# Exponents are kept in [0, _MAX_EXPONENT]: a negative exponent would make loss grow with scale, and
# huge ones only appear when a bootstrap resample has lost a variable's spread.
_MAX_EXPONENT = 5.0


class SumOfPowerLaws(LossLawForm):
    """``L(x) = E + sum_j A_j x_j^-alpha_j`` for one or two variables (see the module docstring).

    ``theta = (e, a_1, alpha_1[, a_2, alpha_2])``; coefficients ``(E, A, alpha[, B, beta])``.
    """

    def __init__(self, variables: Sequence[str] = ("N", "D")) -> None:
        super().__init__(variables)
        if len(self.variables) not in (1, 2):
            raise InvalidScalingDataError(
                f"a sum of power laws takes one or two scale variables, got {list(self.variables)}",
                field="variables")
        if len(set(self.variables)) != len(self.variables):
            raise InvalidScalingDataError(f"duplicate scale variables {list(self.variables)}", field="variables")
        self.name = "chinchilla" if len(self.variables) == 2 else "one_variable"

    @property
    def k(self) -> int:
        return len(self.variables)

    @property
    def theta_names(self) -> tuple[str, ...]:
        names = ["e"]
        for amp, exp in _TERM_NAMES[: self.k]:
            names += [amp.lower(), exp]
        return tuple(names)

    @property
    def coefficient_names(self) -> tuple[str, ...]:
        names = ["E"]
        for amp, exp in _TERM_NAMES[: self.k]:
            names += [amp, exp]
        return tuple(names)

    def log_predict(self, theta: np.ndarray, log_x: np.ndarray,
                    with_jacobian: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        theta = np.atleast_2d(np.asarray(theta, dtype=float))          # b x p
        log_x = np.asarray(log_x, dtype=float).reshape(-1, self.k)     # n x k
        b, n = theta.shape[0], log_x.shape[0]
        # terms: b x n x (1 + k); term 0 is the irreducible loss e, term j is a_j - alpha_j log x_j
        terms = np.empty((b, n, 1 + self.k))
        terms[:, :, 0] = theta[:, [0]]
        for j in range(self.k):
            a, alpha = theta[:, 1 + 2 * j], theta[:, 2 + 2 * j]
            terms[:, :, 1 + j] = a[:, None] - alpha[:, None] * log_x[None, :, j]
        top = terms.max(axis=2, keepdims=True)
        weights = np.exp(terms - top)
        total = weights.sum(axis=2, keepdims=True)
        log_loss = (top + np.log(total))[:, :, 0]
        if not with_jacobian:
            return log_loss, None
        weights /= total                                               # softmax: d LSE / d term
        jac = np.empty((b, n, self.n_params))
        jac[:, :, 0] = weights[:, :, 0]
        for j in range(self.k):
            jac[:, :, 1 + 2 * j] = weights[:, :, 1 + j]
            jac[:, :, 2 + 2 * j] = -weights[:, :, 1 + j] * log_x[None, :, j]
        return log_loss, jac

    def initial_grid(self) -> np.ndarray:
        axes = [_GRID_E] + [_GRID_AMPLITUDE, _GRID_EXPONENT] * self.k
        return np.array(list(itertools.product(*axes)), dtype=float)

    def coefficients(self, theta: np.ndarray) -> np.ndarray:
        theta = np.atleast_2d(np.asarray(theta, dtype=float))
        out = theta.copy()
        out[:, 0] = np.exp(theta[:, 0])
        for j in range(self.k):
            out[:, 1 + 2 * j] = np.exp(theta[:, 1 + 2 * j])
        return out

    def bounds(self) -> list[tuple[float | None, float | None]]:
        out: list[tuple[float | None, float | None]] = [(None, None)]
        for _ in range(self.k):
            out += [(None, None), (0.0, _MAX_EXPONENT)]
        return out


def chinchilla_form(variables: Sequence[str] = ("N", "D")) -> SumOfPowerLaws:
    """``L(N, D) = E + A/N^alpha + B/D^beta``."""
    return SumOfPowerLaws(variables)


def one_variable_form(variable: str = "N") -> SumOfPowerLaws:
    """``L(x) = E + A x^-alpha``."""
    return SumOfPowerLaws((variable,))
