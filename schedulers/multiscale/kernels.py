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


def multiscale_kernel(dim: int, interaction: bool = False) -> Kernel:
    """``sigma^2 * Matern52_ARD(x) * k_decay(u_m) * k_decay(u_s)`` over ``n x (dim + 2)`` inputs, plus
    :func:`interaction_kernel` when ``interaction``."""
    config_kernel = get_covar_module_with_dim_scaled_prior(
        ard_num_dims=dim, use_rbf_kernel=False, active_dims=list(range(dim)))
    product = config_kernel * decay_kernel(dim) * decay_kernel(dim + 1)
    shared = ScaleKernel(product, outputscale_prior=GammaPrior(2.0, 2.0))
    return AdditiveKernel(shared, interaction_kernel(dim)) if interaction else shared


def interaction_kernel(dim: int) -> Kernel:
    """``sigma_i^2 * Matern52_ARD'(x) * RBF_ARD(u_m, u_s)``: the config-by-fidelity effect (module docstring)."""
    config_kernel = get_covar_module_with_dim_scaled_prior(
        ard_num_dims=dim, use_rbf_kernel=False, active_dims=list(range(dim)))
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
