"""A synthetic multi-scale study for the dashboard's tests: learning curves whose loss falls with model size
and steps and whose best learning rate drifts with size (as without muP), so every chart has something
to show. Trials are run through the SDK, as an external ask/tell worker would."""

from __future__ import annotations

import math
from typing import Any

from api import Client, Decision

SPEC: dict[str, Any] = {
    "name": "dashboard-lm",
    "objective": {"metric": "loss", "direction": "minimize"},
    "space": [
        {"name": "lr", "type": "float", "low": 1e-4, "high": 1e-1, "log": True, "role": "scientific"},
        {"name": "warmup", "type": "float", "low": 0.0, "high": 0.2},
    ],
    "fidelity": {"steps": {"min": 100, "max": 400, "report_every": 100},
                 "sizes": [{"name": "s", "params": 1e6}, {"name": "m", "params": 4e6}, {"name": "l", "params": 1.6e7}]},
    "target": {"steps": 400, "size": "l"},
    "cost": {"kind": "analytic"},
    "budget": {"max_cost": 6},
    "scheduler": {"name": "multiscale_bo", "seed": 0},
}

_PARAMS = {s["name"]: s["params"] for s in SPEC["fidelity"]["sizes"]}


def loss(params: dict[str, Any], size: str, step: int) -> float:
    n = _PARAMS[size]
    best_log_lr = -2.0 - 0.25 * math.log10(n / 1e6)  # the optimum moves to smaller lr as the model grows
    lr_penalty = 0.35 * (math.log10(params["lr"]) - best_log_lr) ** 2
    return 1.8 + 40 / n ** 0.3 + 6 / step ** 0.5 + lr_penalty + 0.5 * (params["warmup"] - 0.05) ** 2


def run_trials(client: Client, study_id: int, count: int) -> int:
    """Ask for and run up to ``count`` trials to the end of their segments; returns how many ran."""
    study = client.get_study(study_id)
    ran = 0
    while ran < count and (trial := study.ask(client_id="dashboard-worker", wait=False)) is not None:
        for step in trial.report_steps():
            if trial.report(step, loss(trial.params, trial.size, step)) is not Decision.CONTINUE:
                break
        trial.complete()
        ran += 1
    return ran
