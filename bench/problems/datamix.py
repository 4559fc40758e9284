"""``datamix``: the data-mixture simulator of Yen et al. (arXiv:2503.21023), multi-fidelity and multi-scale.

The simulator is an MLP trained on 472 language-model pre-training runs on SlimPajama; its weights live in
``$DATA/datamix`` (see that folder's README). It maps (five mixture proportions, model size, steps) to
eleven evaluation metrics; the forward pass is plain numpy, ``n x 9`` raw features -> ``n x 11`` metrics.

As a tuning problem: x = the five proportions as one mixture group (on the simplex); sizes 20M..1B; steps
100..19,600 (the simulator is trusted at multiples of 100, so steps are rounded to them), reported every
700; cost = the FLOPs table (linear in steps per size, so its per-step slope also covers 19,600); target 1B
at 19,600 steps; objective: metric index 4 (StackExchange cross-entropy) by default.

The simulator is deterministic, so observations are noiseless unless ``noise_std`` > 0 (Gaussian, absolute).
The best known target value is found by 20,000 Dirichlet samples followed by SLSQP on the simplex from the
best 16 of them.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from scipy.optimize import minimize

from bench.problems.base import BenchmarkProblem, data_root, require_files
from schedulers.cost import TableCost
from schedulers.problem import Direction, FidelityLadder, ModelSize, Problem, Target
from schedulers.space import SearchSpace

#: mixture components in the simulator's input order (RedPajama subsets)
COMPONENTS = ("wikipedia", "stackexchange", "github", "arxiv", "book")
#: (name, millions of parameters, d_model, attention heads)
SIZES = (("20M", 20, 256, 8), ("60M", 60, 512, 8), ("150M", 150, 768, 12), ("300M", 300, 1024, 16),
         ("500M", 500, 1280, 16), ("700M", 700, 1536, 16), ("1B", 1000, 2048, 16))
#: the simulator's eleven outputs, in order; the first eight are cross-entropies (lower is better)
METRICS = ("train_ce", "commoncrawl_ce", "c4_ce", "wikipedia_ce", "stackexchange_ce", "github_ce", "arxiv_ce",
           "book_ce", "hellaswag_acc", "piqa_acc", "arc_easy_acc")
MIN_STEPS, MAX_STEPS, REPORT_EVERY = 100, 19_600, 700
FILES = ("simulator_weights.npz", "feature_mask.json", "flops_dataset.csv")


class DataMixSimulator:
    """The simulator's MLP. ``predict(raw)``: ``n x 9`` raw features -> ``n x 11`` metrics."""

    def __init__(self, folder: Path) -> None:
        w = np.load(folder / "simulator_weights.npz")
        self.layers = [(w[f"layers_{i}_weight"].astype(float), w[f"layers_{i}_bias"].astype(float))
                       for i in (0, 3, 6, 9)]
        self.x_mean = w["norm_X_mean"].astype(float)
        std = w["norm_X_std"].astype(float)
        self.x_std = np.where(std == 0, 1e-8, std)
        self.y_mean = w["norm_y_mean"].astype(float)
        self.y_std = w["norm_y_std"].astype(float)
        mask = json.loads((folder / "feature_mask.json").read_text())["feature_mask"]
        self.mask = np.asarray(mask, dtype=bool)

    def predict(self, raw: np.ndarray) -> np.ndarray:
        h = ((np.atleast_2d(raw) - self.x_mean) / self.x_std)[:, self.mask]
        for i, (weight, bias) in enumerate(self.layers):
            h = h @ weight.T + bias
            if i < len(self.layers) - 1:
                h = np.maximum(h, 0.0)
        return h * self.y_std + self.y_mean


def _flops_per_step(path: Path) -> dict[str, float]:
    """Per-step FLOPs of each size: the FLOPs table is linear in steps, so the slope at its last row."""
    last: dict[str, tuple[float, float]] = {}
    with path.open() as f:
        for row in csv.DictReader(f):
            step, flops = float(row["step"]), float(row["flops"])
            if step > last.get(row["model_size"], (0.0, 0.0))[0]:
                last[row["model_size"]] = (step, flops)
    return {size: flops / step for size, (step, flops) in last.items()}


class DataMix(BenchmarkProblem):
    """The data-mixture simulator as a multi-scale tuning problem (see the module docstring)."""

    name = "datamix"

    def __init__(self, data_dir: str | Path | None = None, objective: int = 4, noise_std: float = 0.0) -> None:
        super().__init__()
        self.folder = require_files(data_root(data_dir) / "datamix", FILES, self.name)
        if not 0 <= objective < len(METRICS):
            raise ValueError(f"datamix objective index must be in 0..{len(METRICS) - 1}, got {objective}")
        self.objective = int(objective)
        self.noise_std = float(noise_std)
        self.simulator = DataMixSimulator(self.folder)
        if self.objective != 4:
            self.name = f"datamix:{METRICS[self.objective]}"

    def _build(self) -> Problem:
        per_step = _flops_per_step(self.folder / "flops_dataset.csv")
        ladder = FidelityLadder(MIN_STEPS, MAX_STEPS, REPORT_EVERY,
                                tuple(ModelSize(name, mparams * 1e6) for name, mparams, _, _ in SIZES))
        space = SearchSpace.from_dicts([{"name": "mix", "type": "mixture", "components": list(COMPONENTS)}])
        direction = Direction.MINIMIZE if self.objective < 8 else Direction.MAXIMIZE
        return Problem(space, ladder, Target(MAX_STEPS, "1B"), TableCost(per_step), direction)

    # ---------------------------------------------------------------- simulator access
    def metrics(self, mixtures: np.ndarray, size: str, step: float) -> np.ndarray:
        """All eleven metrics for ``n x 5`` mixtures at (size, step): ``n x 11``."""
        mixtures = np.atleast_2d(np.asarray(mixtures, dtype=float))
        _, mparams, d_model, heads = next(s for s in SIZES if s[0] == size)
        step = float(min(max(round(step / 100.0) * 100.0, MIN_STEPS), MAX_STEPS))
        raw = np.column_stack([mixtures, np.tile([mparams, d_model, heads, step], (len(mixtures), 1))])
        return self.simulator.predict(raw)

    def _mixture(self, params: Mapping[str, Any]) -> np.ndarray:
        return np.array([[float(params[c]) for c in COMPONENTS]])

    def evaluate(self, params: Mapping[str, Any], size: str, step: int, seed: int) -> float:
        value = float(self.metrics(self._mixture(params), size, step)[0, self.objective])
        if self.noise_std > 0:
            value += self.noise_std * float(np.random.default_rng([seed, int(step)]).standard_normal())
        return value

    def target_value(self, params: Mapping[str, Any]) -> float:
        return float(self.metrics(self._mixture(params), "1B", MAX_STEPS)[0, self.objective])

    def cache_key(self) -> tuple[Any, ...]:
        return (*super().cache_key(), str(self.folder.resolve()), self.objective)

    def _compute_best_target_value(self) -> float:
        sign = 1.0 if self.objective < 8 else -1.0  # minimise sign * metric

        def f(w: np.ndarray) -> np.ndarray:
            w = np.clip(np.atleast_2d(w), 0.0, None)
            w = w / np.clip(w.sum(axis=1, keepdims=True), 1e-12, None)
            return sign * self.metrics(w, "1B", MAX_STEPS)[:, self.objective]

        rng = np.random.default_rng(20250321)
        starts = np.vstack([rng.dirichlet(np.ones(5), 20_000), np.eye(5), np.full((1, 5), 0.2)])
        values = f(starts)
        best = float(values.min())
        for w0 in starts[np.argsort(values)[:16]]:
            res = minimize(lambda w: float(f(w)[0]), w0, method="SLSQP", bounds=[(0.0, 1.0)] * 5,
                           constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0}],
                           options={"ftol": 1e-12, "maxiter": 300})
            best = min(best, float(f(res.x)[0]))
        return sign * best
