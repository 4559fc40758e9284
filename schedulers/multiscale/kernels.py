"""Covariance and mean functions of the multi-scale surrogate over inputs ``[x, u_m, u_s]`` (``d + 2``).

Covariance (MFMS-GP, Yen et al. 2025; freeze-thaw, Swersky et al. 2014)::

    k((x, m, s), (x', m', s')) = sigma^2 * Matern52_ARD(x, x') * k_decay(u_m, u_m') * k_decay(u_s, u_s')
    k_decay(u, u') = w + (1 + (u + u') / beta) ** -alpha        (BoTorch's ExponentialDecayKernel)

The decay factor is non-stationary on purpose: a constant part ``w`` shared by every fidelity (what the
config does at convergence) plus a transient whose variance shrinks as the run gets longer or the model
larger, so that short runs of small models inform the target without being trusted as equal to it.

In the product alone, the only config effect that small and large fidelities do not share is the
transient, whose variance shrinks towards the target: the target looks the best-known fidelity. On the
data-mixture simulator the ranking of configs changes with size and steps (rank correlation 0.65-0.85
between 20M..700M and the target), and the product fitted there predicted the target value of its
recommendation 0.14 too high with a posterior std of 0.015. So an optional *interaction* term is added::

    + sigma_i^2 * Matern52_ARD'(x, x') * RBF_ARD((u_m, u_s), (u_m', u_s'))

a config-by-fidelity effect that nearby fidelities share and distant ones do not: the correlation of
config differences across sizes and steps falls below one by an amount the marginal likelihood learns
from the rungs the scheduler has run, and the target's uncertainty stays honest until sizes near it
were run.

Optionally (``drift``), both config factors compare configs in a frame that moves with scale::

    z(x, u_m, u_s) = x - b_m (1 - u_m) - b_s (1 - u_s)          (zero shift at the target, u = 1)

with the ``d``-vectors ``b_m``, ``b_s`` learnt by the marginal likelihood (:class:`ShiftedConfigKernel`). A
hyperparameter whose optimum moves as a power of model size or training length (Step Law:
``lr_opt ~ N^-0.713 D^0.307``, ``bs_opt ~ D^0.571``; standard-parameterisation learning rates; muP's
near-zero shift is the special case ``b = 0``) moves linearly in these log coordinates, so a run at a
small size informs the target about the config it corresponds to rather than the one it used. This is
:class:`~schedulers.multiscale.features.OptimumShift` learnt from the data instead of given.

Mean: either a constant, or a scaling-law mean in the normalised log coordinates,
``mu(u_m, u_s) = c + a_m * exp(-r_m * u_m) + a_s * exp(-r_s * u_s)`` (the ``E + A / m^a + B / s^b`` law of
Hoffmann et al. 2022 with ``m^-a = exp(-a log m)``), whose amplitudes and rates the marginal likelihood
fits. The mean carries the shared learning-curve and size trends, leaving the GP the config effects.
"""

from __future__ import annotations

import enum

import torch
from botorch.models.kernels.exponential_decay import ExponentialDecayKernel
from botorch.models.utils.gpytorch_modules import get_covar_module_with_dim_scaled_prior
from gpytorch.constraints import Interval, Positive
from gpytorch.kernels import AdditiveKernel, Kernel, RBFKernel, ScaleKernel
from gpytorch.means import ConstantMean, Mean
from gpytorch.priors import GammaPrior, NormalPrior


class DriftMode(str, enum.Enum):
    """Whether the kernel learns how the optimum moves with scale (:class:`OptimumDrift`)."""

    OFF = "off"            #: configs compared as they are at every fidelity
    ON = "on"              #: always the drifting frame
    SELECTED = "selected"  #: per fit, the drifting frame only where the marginal likelihood supports it


class MeanKind(str, enum.Enum):
    CONSTANT = "constant"
    SCALING_LAW = "scaling_law"


def decay_kernel(column: int) -> ExponentialDecayKernel:
    """Freeze-thaw decay kernel on one fidelity column (``u`` in [0, 1], target at 1)."""
    # BoTorch 0.18 registers the offset's constraint for the power as well (power_constraint is ignored),
    # so both get the same interval here, wide enough for either
    bounds = Interval(1e-3, 20.0)
    return ExponentialDecayKernel(
        active_dims=[column],
        lengthscale_prior=GammaPrior(3.0, 6.0),          # beta around 0.5: transient decays over the range
        lengthscale_constraint=Interval(0.02, 10.0),
        power_prior=GammaPrior(3.0, 2.0),                # alpha around 1.5
        power_constraint=bounds,
        offset_prior=GammaPrior(2.0, 2.0),               # w around 1: a shared asymptote
        offset_constraint=bounds,
    )


DRIFT_PRIOR_SD = 0.25


class OptimumDrift(torch.nn.Module):
    """The learnt shift of the config frame, ``b`` as a ``2 x d`` parameter (rows: ``u_m``, ``u_s``), shared by
    every config factor of the kernel. A Normal(0, 0.25) prior per entry: a shift of a quarter of a
    parameter's range between the smallest rung and the target is typical, a whole range is not."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.register_parameter("drift", torch.nn.Parameter(torch.zeros(2, dim)))

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """``... x (d + 2)`` inputs -> ``... x d`` configs in the target's frame."""
        return X[..., : self.dim] - (1.0 - X[..., self.dim: self.dim + 2]) @ self.drift


class ShiftedConfigKernel(Kernel):
    """A config kernel evaluated on :class:`OptimumDrift`-shifted configs (module docstring); its inputs are
    the whole ``n x (d + 2)`` rows, since the shift depends on the fidelity columns."""

    def __init__(self, base: Kernel, drift: OptimumDrift) -> None:
        super().__init__()
        self.base = base
        self.drift_module = drift
        self.register_prior("drift_prior", NormalPrior(0.0, DRIFT_PRIOR_SD), lambda m: m.drift_module.drift)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, diag: bool = False, **params) -> torch.Tensor:
        return self.base.forward(self.drift_module(x1), self.drift_module(x2), diag=diag, **params)


def _config_kernel(dim: int, drift: OptimumDrift | None) -> Kernel:
    if drift is None:
        return get_covar_module_with_dim_scaled_prior(
            ard_num_dims=dim, use_rbf_kernel=False, active_dims=list(range(dim)))
    return ShiftedConfigKernel(get_covar_module_with_dim_scaled_prior(ard_num_dims=dim, use_rbf_kernel=False),
                               drift)


def multiscale_kernel(dim: int, interaction: bool = False, drift: bool = False,
                      common: bool = False) -> Kernel:
    """``sigma^2 * Matern52_ARD(x) * k_decay(u_m) * k_decay(u_s)`` over ``n x (dim + 2)`` inputs, plus
    :func:`interaction_kernel` when ``interaction`` and :func:`common_fidelity_kernel` when ``common``
    (in that order in the ``AdditiveKernel``); with ``drift`` the config factors see the shifted configs
    ``z`` (module docstring), one shift for both terms."""
    shift = OptimumDrift(dim) if drift else None
    product = _config_kernel(dim, shift) * decay_kernel(dim) * decay_kernel(dim + 1)
    terms = [ScaleKernel(product, outputscale_prior=GammaPrior(2.0, 2.0))]
    if interaction:
        terms.append(interaction_kernel(dim, shift))
    if common:
        terms.append(common_fidelity_kernel(dim))
    return AdditiveKernel(*terms) if len(terms) > 1 else terms[0]


def common_fidelity_kernel(dim: int) -> Kernel:
    """``sigma_c^2 * RBF_ARD(u_m, u_s)``: an effect of the fidelity that every config shares.

    Why: the parametric mean is an additive law in ``u_m`` and ``u_s``; where real curves depart from it
    (larger models gaining more from longer runs, a schedule's end), the residual is the same for every
    config at that fidelity. Without this term only config-dependent terms can absorb it, so whichever
    config was run where the law is too pessimistic looks good at the target: on datamix (seed 1, budget
    10) a config 7.2% from the optimum, run to 8,400 steps at 700M, was recommended from 0.2 to 0.7 target
    runs over configs at 0.04% measured only at 700 steps. At the target the term adds the same value to
    every config, so it moves no ranking there; it moves where evidence is attributed."""
    return ScaleKernel(RBFKernel(ard_num_dims=2, active_dims=[dim, dim + 1],
                                 lengthscale_prior=GammaPrior(3.0, 6.0),
                                 lengthscale_constraint=Interval(0.05, 10.0)),
                       outputscale_prior=GammaPrior(2.0, 4.0))    # mean 0.5 in standardised units


def interaction_kernel(dim: int, drift: OptimumDrift | None = None) -> Kernel:
    """``sigma_i^2 * Matern52_ARD'(x) * RBF_ARD(u_m, u_s)``: the config-by-fidelity effect (module docstring)."""
    config_kernel = _config_kernel(dim, drift)
    fidelity_kernel = RBFKernel(ard_num_dims=2, active_dims=[dim, dim + 1],
                                lengthscale_prior=GammaPrior(3.0, 6.0),   # around 0.5 of the log range
                                lengthscale_constraint=Interval(0.05, 10.0))
    # a fraction of the shared effect a priori (mean 0.2 in standardised units)
    return ScaleKernel(config_kernel * fidelity_kernel, outputscale_prior=GammaPrior(2.0, 10.0))


class ScalingLawMean(Mean):
    """``c + a_m exp(-r_m u_m) + a_s exp(-r_s u_s)`` on inputs ``batch x n x (dim + 2)`` -> ``batch x n``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self._m, self._s = dim, dim + 1
        self.register_parameter("constant", torch.nn.Parameter(torch.zeros(1)))
        self.register_parameter("amplitude", torch.nn.Parameter(torch.zeros(2)))
        self.register_parameter("raw_rate", torch.nn.Parameter(torch.zeros(2)))
        self.register_constraint("raw_rate", Positive())
        # standardised outcomes: trends of a few standard deviations at most
        self.register_prior("amplitude_prior", NormalPrior(0.0, 2.0), lambda m: m.amplitude)
        self.register_prior("rate_prior", GammaPrior(2.0, 0.5), lambda m: m.rate)

    @property
    def rate(self) -> torch.Tensor:
        return self.raw_rate_constraint.transform(self.raw_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rate = self.rate
        return (self.constant + self.amplitude[0] * torch.exp(-rate[0] * x[..., self._m])
                + self.amplitude[1] * torch.exp(-rate[1] * x[..., self._s]))


def make_mean(kind: MeanKind, dim: int) -> Mean:
    if kind is MeanKind.SCALING_LAW:
        return ScalingLawMean(dim)
    return ConstantMean()
