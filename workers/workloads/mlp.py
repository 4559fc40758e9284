"""The ``mlp`` workload: a small MLP regressing a fixed random teacher network, for quick studies.

A teacher MLP (fixed by ``args["task_seed"]``) labels Gaussian inputs, plus label noise; the student is a
two-hidden-layer MLP of the size's width trained with AdamW on fresh batches (seeded by (seed, step)) and
evaluated by mean squared error on a fixed held-out set. Shapes: inputs ``batch x d_in``, targets
``batch x 1``.

Hyperparameters (``config["params"]``, all optional): ``lr`` (1e-3), ``weight_decay`` (0), ``beta1`` (0.9),
``batch_size`` (64). Arguments (``config["args"]``): ``d_in`` (16), ``teacher_width`` (32), ``noise`` (0.1),
``task_seed`` (0), ``n_eval`` (512), ``depth`` (2). Width: ``size_extra["width"]``, ``args["widths"][size]``
or from the parameter count.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from workers.workloads.base import Reporter, WorkloadConfig

_DEFAULT_ARGS: dict[str, Any] = {"d_in": 16, "teacher_width": 32, "noise": 0.1, "task_seed": 0, "n_eval": 512,
                                 "depth": 2}


class TeacherTask:
    """A fixed random ``tanh`` teacher network; ``sample(rng, n)`` -> (``n x d_in`` inputs, ``n x 1`` targets)."""

    def __init__(self, d_in: int, width: int, noise: float, seed: int) -> None:
        g = np.random.default_rng(seed)
        self.w1 = g.normal(0.0, 1.0 / math.sqrt(d_in), size=(d_in, width))
        self.w2 = g.normal(0.0, 1.0 / math.sqrt(width), size=(width, 1))
        self.d_in = d_in
        self.noise = noise

    def sample(self, rng: np.random.Generator, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = rng.normal(size=(n, self.d_in))
        y = np.tanh(x @ self.w1) @ self.w2 + self.noise * rng.normal(size=(n, 1))
        return torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.float32)


def build_mlp(d_in: int, width: int, depth: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(d_in if i == 0 else width, width), nn.ReLU()]
    layers.append(nn.Linear(width, 1))
    return nn.Sequential(*layers)


def _param_norm(model: nn.Module) -> float:
    """The L2 norm of the weights: a second objective that trades off against the loss through weight decay
    and the learning rate (examples/multi_objective.yaml)."""
    with torch.no_grad():
        return float(torch.sqrt(sum((p.detach() ** 2).sum() for p in model.parameters())))


def mlp(config: Mapping[str, Any], reporter: Reporter) -> None:
    """Train the student MLP for one segment and report validation MSE every ``report_every`` steps."""
    cfg = WorkloadConfig.from_dict(config)
    a = {**_DEFAULT_ARGS, **dict(cfg.args)}
    depth = int(a["depth"])
    width = cfg.width(default_depth=1) if ("width" in cfg.size_extra or "widths" in cfg.args) else \
        max(4, int(round(math.sqrt(cfg.size_params / max(depth - 1, 1)))))
    task = TeacherTask(int(a["d_in"]), int(a["teacher_width"]), float(a["noise"]), int(a["task_seed"]))
    x_eval, y_eval = task.sample(np.random.default_rng([int(a["task_seed"]), 1]), int(a["n_eval"]))
    torch.manual_seed(cfg.seed)
    model = build_mlp(task.d_in, width, depth)
    p = cfg.params
    opt = torch.optim.AdamW(model.parameters(), lr=float(p.get("lr", 1e-3)),
                            weight_decay=float(p.get("weight_decay", 0.0)), betas=(float(p.get("beta1", 0.9)), 0.999))
    if cfg.checkpoint is not None:
        model.load_state_dict(cfg.checkpoint["model"])
        opt.load_state_dict(cfg.checkpoint["optimizer"])
    batch_size = int(p.get("batch_size", 64))
    report_at = set(cfg.report_steps())
    for step in range(cfg.start_step + 1, cfg.steps + 1):
        x, y = task.sample(np.random.default_rng([cfg.seed, step]), batch_size)
        loss = nn.functional.mse_loss(model(x), y)
        if not torch.isfinite(loss):
            reporter(step, float("nan"))
            return
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step in report_at:
            with torch.no_grad():
                value = float(nn.functional.mse_loss(model(x_eval), y_eval))
            if not math.isfinite(value):
                reporter(step, value)
                return
            reporter(step, value, {"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step},
                     metrics={"param_norm": _param_norm(model)})
