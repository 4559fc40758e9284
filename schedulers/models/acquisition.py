"""Acquisition maximisation over candidate sets, and batches of distinct points for asynchronous workers.

:func:`maximize_on_candidates` scores a candidate set (see :mod:`schedulers.models.candidates`), then
refines around the best few with local perturbations and scores again: a cheap two-stage search that
respects integer, categorical and simplex structure. :func:`select_batch` picks ``q`` points one at a time,
conditioning the surrogate on each chosen point with the kriging believer before choosing the next, so the
batch (and points already pending on workers) are never proposed twice.

Acquisition functions are BoTorch ``AcquisitionFunction`` objects evaluated on ``b x 1 x d`` inputs
(``b`` candidates, one point each), returning ``b`` values; larger is better.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from botorch.acquisition import AcquisitionFunction

from schedulers.models.candidates import perturb, unique_rows
from schedulers.models.gp import DTYPE, GPSurrogate
from schedulers.space import SearchSpace

#: Builds the acquisition function to maximise from the current (possibly believer-conditioned) surrogate.
AcquisitionFactory = Callable[[GPSurrogate], AcquisitionFunction]


def evaluate(acqf: AcquisitionFunction, X: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """Acquisition values (``n``) of the ``n x d`` points ``X``, scored in chunks of ``chunk x 1 x d``."""
    out = []
    with torch.no_grad():
        for i in range(0, X.shape[0], chunk):
            xb = torch.as_tensor(X[i:i + chunk], dtype=DTYPE).unsqueeze(-2)
            out.append(acqf(xb).reshape(-1).numpy())
    return np.concatenate(out) if out else np.zeros(0)


def _row_keys(X: np.ndarray) -> list[bytes]:
    """Hashable keys of snapped rows (rounded so that float noise in an encoding does not matter)."""
    return [r.tobytes() for r in np.round(X, 9) + 0.0]   # + 0.0 turns -0.0 into 0.0


def _mask_excluded(X: np.ndarray, exclude: np.ndarray | None) -> np.ndarray:
    """Boolean ``n``: rows of ``X`` (``n x d``, snapped) that equal no row of ``exclude`` (``m x d``)."""
    if exclude is None or exclude.shape[0] == 0 or X.shape[0] == 0:
        return np.ones(X.shape[0], dtype=bool)
    seen = set(_row_keys(exclude))
    return np.array([k not in seen for k in _row_keys(X)], dtype=bool)


def maximize_on_candidates(acqf: AcquisitionFunction, space: SearchSpace, candidates: np.ndarray,
                           rng: np.random.Generator, *, exclude: np.ndarray | None = None,
                           refine_top: int = 8, n_refine: int = 32, scale: float = 0.05
                           ) -> tuple[np.ndarray, float] | None:
    """The best candidate (``d``) and its acquisition value, never a row of ``exclude`` (``m x d``).

    Scores ``candidates`` (``n x d``, snapped), perturbs the ``refine_top`` best ``n_refine`` times each with
    step ``scale`` and scores those too. Returns ``None`` when every candidate is excluded.
    """
    X = candidates[_mask_excluded(candidates, exclude)]
    if X.shape[0] == 0:
        return None
    values = evaluate(acqf, X)
    if refine_top > 0 and n_refine > 0:
        top = X[np.argsort(-values, kind="stable")[:refine_top]]
        local = unique_rows(perturb(space, top, n_refine, rng, scale))
        local = local[_mask_excluded(local, exclude)]
        if local.shape[0]:
            X = np.concatenate([X, local])
            values = np.concatenate([values, evaluate(acqf, local)])
    values = np.where(np.isfinite(values), values, -np.inf)
    best = int(np.argmax(values))
    return X[best].copy(), float(values[best])


def select_batch(surrogate: GPSurrogate, q: int, acqf_factory: AcquisitionFactory, space: SearchSpace,
                 candidates: np.ndarray, rng: np.random.Generator, *, exclude: np.ndarray | None = None
                 ) -> np.ndarray:
    """Up to ``q`` distinct points (``q' x d``, ``q' <= q``) by sequential kriging-believer selection.

    ``exclude`` (``m x d``) holds points that must not be proposed again (evaluated or pending ones); it
    does not condition the surrogate - pass pending points through :meth:`GPSurrogate.believe` first.
    Fewer than ``q`` rows come back only when the candidate set runs out of unexcluded points.
    """
    d = space.dim
    excluded = np.zeros((0, d)) if exclude is None else np.asarray(exclude, dtype=float).reshape(-1, d)
    chosen: list[np.ndarray] = []
    model = surrogate
    for j in range(q):
        best = maximize_on_candidates(acqf_factory(model), space, candidates, rng, exclude=excluded)
        if best is None:
            break
        x, _ = best
        chosen.append(x)
        excluded = np.concatenate([excluded, x[None, :]])
        if j + 1 < q:
            model = model.believe(x[None, :])
    return np.array(chosen).reshape(-1, d)
