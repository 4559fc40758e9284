"""Surrogate-model building blocks shared by the model-based schedulers (BoTorch / GPyTorch).

One job per module:

- :mod:`schedulers.models.gp` fits a Gaussian process on ``(X, y)`` with outcome standardisation and a
  fallback when hyperparameter fitting fails, predicts in the caller's units and conditions on pending
  points (kriging believer).
- :mod:`schedulers.models.candidates` generates candidate sets in the unit-cube encoding of a mixed
  :class:`~schedulers.space.SearchSpace` (quasi-random global points plus local perturbations), every row
  a valid encoding.
- :mod:`schedulers.models.acquisition` maximises an acquisition function over such candidate sets and picks
  a batch of distinct points for asynchronous workers.

Conventions: every model here *minimises* ``y``; tensors are float64; shapes are written ``n x d``
(``n`` points, ``d`` encoded dimensions) and ``b x q x d`` for acquisition inputs, as in BoTorch.
"""

from schedulers.models.acquisition import maximize_on_candidates, select_batch
from schedulers.models.candidates import candidate_set, perturb, snap_to_space, sobol_points
from schedulers.models.gp import GPSurrogate, fit_gp

__all__ = ["GPSurrogate", "candidate_set", "fit_gp", "maximize_on_candidates", "perturb", "select_batch",
           "snap_to_space", "sobol_points"]
