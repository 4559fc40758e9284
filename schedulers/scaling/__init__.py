"""Scaling laws: fit them, extrapolate with bootstrap intervals, and hand them to schedulers as priors.

- :mod:`~schedulers.scaling.forms`: loss-law forms in log space (``E + A/N^alpha + B/D^beta``, ``E + A x^-alpha``)
- :mod:`~schedulers.scaling.loss_law`: the Hoffmann et al. fit (Huber on log residuals, multi-start L-BFGS)
- :mod:`~schedulers.scaling.compute_optimal`: N_opt(C), D_opt(C) for C ~ 6ND
- :mod:`~schedulers.scaling.hyperparameter_law`: Step Law fits of the optimal lr / batch size vs (N, D)
- :mod:`~schedulers.scaling.report`: all of the above for a study's trials or posted points
- :mod:`~schedulers.scaling.plot_data`, :mod:`~schedulers.scaling.plot`: log-log panels with bands, PNG
- :mod:`~schedulers.scaling.steplaw_check`: the paper's procedure on the released Step Law table

Pure numpy / scipy (matplotlib only inside :mod:`~schedulers.scaling.plot`).
"""

from schedulers.scaling.compute_optimal import ComputeOptimum, compute_optimal
from schedulers.scaling.errors import InvalidScalingDataError, ScalingFitError
from schedulers.scaling.estimates import Estimate
from schedulers.scaling.forms import LossLawForm, SumOfPowerLaws, chinchilla_form, one_variable_form
from schedulers.scaling.hyperparameter_law import (STEP_LAW_TOLERANCE, HyperparameterLaw, HyperparameterPrediction,
                                                   LogLinearLaw, fit_hyperparameter_law)
from schedulers.scaling.loss_law import (HuberFitOptions, LossLawFit, LossPrediction, fit_chinchilla, fit_loss_law,
                                         fit_one_variable)
from schedulers.scaling.report import LawKind, ScalingReport, ScalingRun, fit_scaling, runs_from_dicts

__all__ = [
    "ComputeOptimum", "Estimate", "HuberFitOptions", "HyperparameterLaw", "HyperparameterPrediction",
    "InvalidScalingDataError", "LawKind", "LogLinearLaw", "LossLawFit", "LossLawForm", "LossPrediction",
    "STEP_LAW_TOLERANCE", "ScalingFitError", "ScalingReport", "ScalingRun", "SumOfPowerLaws", "chinchilla_form",
    "compute_optimal", "fit_chinchilla", "fit_hyperparameter_law", "fit_loss_law", "fit_one_variable",
    "fit_scaling", "one_variable_form", "runs_from_dicts",
]
