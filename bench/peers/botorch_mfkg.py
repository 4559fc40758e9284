"""BoTorch's multi-fidelity knowledge gradient with a cost model, over both fidelities (steps and size)."""

from __future__ import annotations

from typing import Any

import numpy as np

from bench.peers.mf_gp import MultiFidelityGPPeer
from schedulers.problem import Problem


class BotorchMfkg(MultiFidelityGPPeer):
    """``qMultiFidelityKnowledgeGradient`` on a ``SingleTaskMultiFidelityGP`` (steps as its iteration
    fidelity, model size as its data fidelity, BoTorch's default ``LinearTruncatedFidelityKernel``), weighted
    by ``InverseCostWeightedUtility`` with an ``AffineFidelityCostModel`` and projected to the target
    fidelity, as in BoTorch's multi-fidelity KG tutorial.

    Two fidelities, normalised to [0, 1] (see :mod:`bench.peers.mf_gp`). The affine cost model is fitted by
    non-negative least squares to the problem's cost model over the ladder's (size, step option) grid, in
    units of one target run (BoTorch's cost model is affine; real cost is about steps x size). The
    candidate's fidelity is snapped to the nearest ladder size and step option; the trial trains from
    scratch to those steps.

    Kept affordable (measured on this machine: 46 s per candidate at n = 50 with 64 fantasies; 5.1 s with
    8 fantasies, 2 restarts, 64 raw samples and 50 L-BFGS steps; 1.4 s with the defaults now):
    ``num_fantasies`` 4, ``num_restarts`` 1, ``raw_samples`` 32, at most ``maxiter`` = 20 L-BFGS iterations, and
    the GP sees at most ``max_points`` = 60 points. KG picks cheap fidelities, so a run has hundreds of trials.
    """

    name = "botorch_mfkg"

    def __init__(self, problem: Problem, seed: int = 0, num_fantasies: int = 4, num_restarts: int = 1,
                 raw_samples: int = 32, maxiter: int = 20, max_points: int = 60, **options: Any) -> None:
        super().__init__(problem, seed, max_points=max_points, **options)
        self.num_fantasies = num_fantasies
        self.num_restarts = num_restarts
        self.raw_samples = raw_samples
        self.maxiter = maxiter
        self._cost_weights = self._fit_affine_cost()

    def _fit_affine_cost(self) -> tuple[float, float, float]:
        """(fixed cost, weight of s, weight of m) >= 0 approximating the cost in target-run units."""
        from scipy.optimize import nnls

        rows, costs = [], []
        for z in self.ladder.sizes:
            for steps in self.ladder.report_steps:
                rows.append([1.0, self.s_norm(steps), self.m_norm(z.name)])
                costs.append(self.fidelity_cost(steps, z.name))
        coef, _ = nnls(np.asarray(rows), np.asarray(costs))
        return max(float(coef[0]), 1e-3), float(coef[1]), float(coef[2])

    def _make_model(self, X: Any, Y: Any) -> Any:
        from botorch.models import SingleTaskMultiFidelityGP

        d = self.space.dim
        return SingleTaskMultiFidelityGP(X, Y, iteration_fidelity=d, data_fidelities=[d + 1],
                                         outcome_transform=None)

    def _select(self, model: Any, best_f: float, iteration: int) -> tuple[np.ndarray, str, int]:
        import torch
        from botorch.acquisition import PosteriorMean
        from botorch.acquisition.cost_aware import InverseCostWeightedUtility
        from botorch.acquisition.fixed_feature import FixedFeatureAcquisitionFunction
        from botorch.acquisition.knowledge_gradient import qMultiFidelityKnowledgeGradient
        from botorch.acquisition.objective import ScalarizedPosteriorTransform
        from botorch.acquisition.utils import project_to_target_fidelity
        from botorch.models.cost import AffineFidelityCostModel
        from botorch.optim import optimize_acqf

        d = self.space.dim
        s_t, m_t = self.target_fidelity
        target = {d: s_t, d + 1: m_t}
        # BoTorch maximises; our values are minimised: negate the posterior
        negate = ScalarizedPosteriorTransform(weights=torch.tensor([-1.0], dtype=torch.float64))
        opts = {"batch_limit": 4, "maxiter": self.maxiter}
        current = FixedFeatureAcquisitionFunction(PosteriorMean(model, posterior_transform=negate), d=d + 2,
                                                  columns=[d, d + 1], values=[s_t, m_t])
        unit = torch.stack([torch.zeros(d, dtype=torch.float64), torch.ones(d, dtype=torch.float64)])
        _, current_value = optimize_acqf(current, bounds=unit, q=1, num_restarts=self.num_restarts,
                                         raw_samples=self.raw_samples, options=opts)
        fixed, w_s, w_m = self._cost_weights
        cost = AffineFidelityCostModel(fidelity_weights={d: w_s, d + 1: w_m}, fixed_cost=fixed)
        acqf = qMultiFidelityKnowledgeGradient(
            model, num_fantasies=self.num_fantasies, current_value=current_value,
            cost_aware_utility=InverseCostWeightedUtility(cost_model=cost), posterior_transform=negate,
            project=lambda X: project_to_target_fidelity(X=X, target_fidelities=target, d=d + 2))
        lo = min(self.s_norm(s) for s in self.step_options())
        bounds = torch.stack([torch.tensor([0.0] * d + [lo, 0.0], dtype=torch.float64),
                              torch.tensor([1.0] * d + [s_t, 1.0], dtype=torch.float64)])
        cand, _ = optimize_acqf(acqf, bounds=bounds, q=1, num_restarts=self.num_restarts,
                                raw_samples=self.raw_samples, options=opts)
        c = cand[0].detach().numpy()
        steps = min(self.step_options(), key=lambda s: abs(self.s_norm(s) - c[d]))
        return c[:d], self.nearest_size(float(c[d + 1])), steps
