"""The flagship scheduler: multi-fidelity, multi-scale, cost-aware Bayesian optimisation.

One job per module:

- :mod:`~schedulers.multiscale.features`: GP inputs ``[x, u_m, u_s]``, the step grid, the optional
  size-dependent optimum shift (scaling-law warm start).
- :mod:`~schedulers.multiscale.observations`: the capped training set (subsampled curves, imputed failures).
- :mod:`~schedulers.multiscale.kernels`: Matern x exponential-decay kernels, scaling-law mean.
- :mod:`~schedulers.multiscale.surrogate`: bounded hyperparameter fits and cheap exact conditioning.
- :mod:`~schedulers.multiscale.acquisition`: target EI times fidelity information per unit cost.
- :mod:`~schedulers.multiscale.scheduler`: :class:`MultiScaleCostAwareBO`, the ask/tell scheduler.
- :mod:`~schedulers.multiscale.synthetic`: a multi-scale test function with a known optimum.
"""

from schedulers.multiscale.scheduler import MultiScaleCostAwareBO

__all__ = ["MultiScaleCostAwareBO"]
