"""``lcbench:<task_id>``: LCBench through the YAHPO Gym surrogate, read with onnxruntime directly.

yahpo-gym itself is not used: it pins ConfigSpace 0.6.1, which downgrades numpy and breaks ray here (see
``$DATA/yahpo/README.md``). Its encoding is reproduced instead: ``x_cat`` = the OpenML task id through
``encoding.json`` (int32, ``batch x 1``), ``x_cont`` = the raw values of ``CONT_NAMES`` in that order
(float32, ``batch x 8``); the output is ``batch x 6`` in ``OUTPUTS`` order (val_accuracy in percent).

Epochs 1..52 are the only fidelity (one model size); cost is one unit per epoch; the target is epoch 52, so
a budget in target runs is a budget in full-fidelity runs. Objectives (:class:`Objective`), both minimised:
``val_error`` (default) = 100 - val_accuracy, the validation error in percent, whose regret is reported in
percentage points (the literature reports LCBench on validation accuracy / error; the surrogate outputs
val_accuracy and val_balanced_accuracy, and plain accuracy is the one its other outputs pair with), or
``val_cross_entropy`` (``lcbench:<task>:val_cross_entropy``), reported as relative regret. The
surrogate is deterministic, so observations are noiseless unless ``noise_std`` > 0. The best known target
value comes from 60,000 random configurations (half of them with coordinates pushed onto the space's
bounds, where the surrogate's optimum often lies) plus bounded Powell from the best 8 (in the unit cube,
through the space's decoding so integers are rounded as a strategy's would be).
"""

from __future__ import annotations

import enum
import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from scipy.optimize import minimize

from bench.problems.base import BenchmarkProblem, ProblemError, RegretUnit, data_root, require_files
from schedulers.cost import TableCost
from schedulers.problem import FidelityLadder, ModelSize, Problem, Target
from schedulers.space import SearchSpace

FILES = ("model.onnx", "config_space.json", "encoding.json")
CONT_NAMES = ("epoch", "batch_size", "learning_rate", "momentum", "weight_decay", "num_layers", "max_units",
              "max_dropout")
OUTPUTS = ("time", "val_accuracy", "val_cross_entropy", "val_balanced_accuracy", "test_cross_entropy",
           "test_balanced_accuracy")


class Objective(str, enum.Enum):
    """What an LCBench trial reports (minimised), and the unit its regret is reported in."""

    VAL_ERROR = "val_error"                    # 100 - val_accuracy (%)
    VAL_CROSS_ENTROPY = "val_cross_entropy"

    @property
    def regret_unit(self) -> RegretUnit:
        return RegretUnit.PERCENTAGE_POINTS if self is Objective.VAL_ERROR else RegretUnit.RELATIVE_PERCENT


DEFAULT_OBJECTIVE = Objective.VAL_ERROR
MAX_EPOCH = 52
SIZE = "mlp"
#: the tasks the benchmark suite runs (five or more, as the literature reports LCBench over several tasks)
DEFAULT_TASKS = ("3945", "7593", "34539", "126025", "146212")


@lru_cache(maxsize=4)
def _session(model_path: str):
    import onnxruntime as ort  # the `bench` extra; imported here so the other problems do not need it

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(model_path, sess_options=options, providers=["CPUExecutionProvider"])


class LCBench(BenchmarkProblem):
    """One OpenML task of LCBench (module docstring)."""

    def __init__(self, task_id: str | int = DEFAULT_TASKS[0], objective: str | Objective = DEFAULT_OBJECTIVE,
                 data_dir: str | Path | None = None, noise_std: float = 0.0) -> None:
        super().__init__()
        self.folder = require_files(data_root(data_dir) / "yahpo" / "lcbench", FILES, "lcbench")
        self.task_id = str(task_id)
        encoding = json.loads((self.folder / "encoding.json").read_text())["OpenML_task_id"]
        self.raw_space = json.loads((self.folder / "config_space.json").read_text())["hyperparameters"]
        tasks = next(h["choices"] for h in self.raw_space if h["name"] == "OpenML_task_id")
        if self.task_id not in tasks or self.task_id not in encoding:
            raise ProblemError(f"lcbench has no OpenML task {self.task_id!r}; tasks: {', '.join(tasks)}")
        try:
            self.objective = Objective(objective)
        except ValueError:
            raise ProblemError(f"lcbench objective must be one of {[o.value for o in Objective]}, "
                               f"got {objective!r}") from None
        self.task_code = int(encoding[self.task_id])
        self.regret_unit = self.objective.regret_unit
        self.noise_std = float(noise_std)
        self.name = f"lcbench:{self.task_id}" + ("" if self.objective is DEFAULT_OBJECTIVE
                                                 else f":{self.objective.value}")

    def _build(self) -> Problem:
        params = []
        for h in self.raw_space:
            if h["name"] in ("OpenML_task_id", "epoch"):
                continue
            kind = {"uniform_int": "int", "uniform_float": "float"}[h["type"]]
            params.append({"name": h["name"], "type": kind, "low": h["lower"], "high": h["upper"],
                           "log": bool(h.get("log", False))})
        ladder = FidelityLadder(1, MAX_EPOCH, 1, (ModelSize(SIZE, 1.0),))
        return Problem(SearchSpace.from_dicts(params), ladder, Target(MAX_EPOCH, SIZE), TableCost({SIZE: 1.0}))

    def predict(self, configs: Sequence[Mapping[str, Any]], epochs: Sequence[float]) -> np.ndarray:
        """Surrogate outputs for ``configs`` at ``epochs`` (one each): ``n x 6`` in ``OUTPUTS`` order."""
        x_cont = np.array([[float(e)] + [float(c[k]) for k in CONT_NAMES[1:]] for c, e in zip(configs, epochs)],
                          dtype=np.float32)
        x_cat = np.full((len(x_cont), 1), self.task_code, dtype=np.int32)
        return _session(str(self.folder / "model.onnx")).run(None, {"x_cat": x_cat, "x_cont": x_cont})[0]

    def _objective(self, out: np.ndarray) -> np.ndarray:
        if self.objective is Objective.VAL_CROSS_ENTROPY:
            return out[:, OUTPUTS.index("val_cross_entropy")].astype(float)
        return 100.0 - out[:, OUTPUTS.index("val_accuracy")].astype(float)

    def evaluate(self, params: Mapping[str, Any], size: str, step: int, seed: int) -> float:
        value = float(self._objective(self.predict([params], [min(max(step, 1), MAX_EPOCH)]))[0])
        if self.noise_std > 0:
            value += self.noise_std * float(np.random.default_rng([seed, int(step)]).standard_normal())
        return value

    def target_value(self, params: Mapping[str, Any]) -> float:
        return float(self._objective(self.predict([params], [MAX_EPOCH]))[0])

    def cache_key(self) -> tuple[Any, ...]:
        return (*super().cache_key(), str(self.folder.resolve()), self.task_id, self.objective.value)

    def _compute_best_target_value(self) -> float:
        space = self.problem.space
        rng = np.random.default_rng(3945)
        # the surrogate's optimum often sits on the border of the space (e.g. the largest learning rate),
        # so half the samples put each coordinate on a bound with probability 1/2
        uniform = rng.random((30_000, space.dim))
        border = rng.random((30_000, space.dim))
        on_bound = rng.random(border.shape) < 0.5
        border[on_bound] = rng.integers(0, 2, on_bound.sum())
        cube = np.vstack([uniform, border])

        def f(u: np.ndarray) -> np.ndarray:
            configs = space.decode(np.clip(np.atleast_2d(u), 0.0, 1.0))
            return self._objective(self.predict(configs, [MAX_EPOCH] * len(configs)))

        values = f(cube)
        best = float(values.min())
        for u0 in cube[np.argsort(values)[:8]]:
            res = minimize(lambda u: float(f(u)[0]), u0, method="Powell", bounds=[(0.0, 1.0)] * space.dim,
                           options={"maxfev": 600, "xtol": 1e-4, "ftol": 1e-7})
            best = min(best, float(f(res.x)[0]))
        return best
