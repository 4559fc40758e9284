"""``scaleladder demo --external``: a real ask/tell study, end to end, on a laptop, without Ray.

Starts the service in-process (uvicorn in a thread, a temporary SQLite database), makes a token, creates a
study, and drives ask -> report -> complete through the SDK against :func:`synthetic_loss`, a built-in
objective with the two effects a multi-scale tuner must handle: the optimal learning rate shrinks as the
model grows (so small-model evidence must be *transferred*, not copied), and too large a learning rate
diverges (NaN), which the service records as a diverged trial.

The trial runner is a parameter (:data:`TrialRunner`); the default ``scaleladder demo`` runs the study on a
local Ray instead (``service/cli_ray.py``).
"""

from __future__ import annotations

import hashlib
import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from api.client import Client, StudyHandle
from api.schemas import Decision, Recommendation
from schedulers.registry import scheduler_names
from service.app import create_app
from service.db import transaction
from service.repositories import TokenRepository
from service.server import ServerThread
from service.settings import ExecutorKind, Settings

#: preferred schedulers for the demo, best first; the first one registered is used
PREFERRED_SCHEDULERS = ("multiscale_bo", "hyperband", "asha", "random")

SIZES = {"s": 1e6, "m": 4e6, "l": 1.6e7}


def demo_spec(scheduler: str, *, max_cost: float = 8.0, max_trials: int | None = None, seed: int = 0,
              name: str = "demo") -> dict[str, Any]:
    """A three-size ladder (1M, 4M, 16M parameters), 100..1000 steps, target (1000 steps, 16M)."""
    budget: dict[str, Any] = {"max_cost": max_cost}
    if max_trials is not None:
        budget["max_trials"] = max_trials
    return {
        "name": name,
        "objective": {"metric": "loss", "direction": "minimize"},
        "space": [
            {"name": "lr", "type": "float", "low": 1e-4, "high": 1.0, "log": True, "role": "scientific"},
            {"name": "warmup", "type": "float", "low": 0.0, "high": 0.3},
            {"name": "optimizer", "type": "categorical", "choices": ["adam", "sgd"]},
            {"name": "momentum", "type": "float", "low": 0.8, "high": 0.99,
             "condition": {"parent": "optimizer", "values": ["sgd"]}},
            {"name": "batch_size", "type": "ordinal", "values": [16, 32, 64, 128]},
        ],
        "fidelity": {"steps": {"min": 100, "max": 1000, "report_every": 100},
                     "sizes": [{"name": n, "params": p} for n, p in SIZES.items()]},
        "target": {"steps": 1000, "size": "l"},
        "cost": {"kind": "analytic", "tokens_per_step": 1.0},
        "budget": budget,
        "scheduler": {"name": scheduler, "seed": seed},
        "workload": {"entrypoint": "service.demo:synthetic_loss"},
    }


def pick_scheduler() -> str:
    known = set(scheduler_names())
    return next(name for name in PREFERRED_SCHEDULERS if name in known)


def synthetic_loss(params: dict[str, Any], model_params: float, step: int) -> float:
    """Loss after ``step`` steps of a ``model_params``-parameter model trained with ``params``.

    ``E + A / N^0.3 + B / step^0.5`` (a Chinchilla-like law) times a learning-rate penalty around an optimum
    that scales like ``N^-0.5``; learning rates far above the optimum diverge (NaN) after a few hundred
    steps. Deterministic per configuration, with a little seed-like noise so ties are rare.
    """
    n = model_params / 1e6
    lr_opt = 0.08 * n ** -0.5 * (0.25 if params["optimizer"] == "sgd" else 1.0)
    ratio = math.log(params["lr"] / lr_opt)
    if ratio > math.log(6.0) and step >= 300:
        return float("nan")
    penalty = 1.0 + 0.15 * ratio ** 2 + 0.2 * (params["warmup"] - 0.1) ** 2
    if params["optimizer"] == "sgd":
        penalty *= 1.0 + 2.0 * (params.get("momentum", 0.9) - 0.95) ** 2
    penalty *= 1.0 + 0.01 * abs(math.log2(params["batch_size"] / 64))
    digest = hashlib.sha256(repr(sorted(params.items())).encode()).digest()
    noise = (int.from_bytes(digest[:4], "big") / 2 ** 32 - 0.5) * 0.004
    return (1.7 + 1.2 / n ** 0.3 + 6.0 / step ** 0.5) * penalty + noise


#: runs the trials of a started study until it is over; returns how many trial segments it ran
TrialRunner = Callable[[StudyHandle, Callable[[], None]], int]


def run_ask_tell_worker(study: StudyHandle, on_segment: Callable[[], None]) -> int:
    """One external worker: ask, report every step until told otherwise, complete; until the study ends."""
    segments = 0
    while (trial := study.ask(poll_interval=0.05)) is not None:
        model_params = SIZES[trial.size]
        for step in trial.report_steps():
            if trial.report(step, synthetic_loss(trial.params, model_params, step)) is not Decision.CONTINUE:
                break
        if trial.last_result is None or not trial.last_result.trial_state.is_final:
            trial.complete(checkpoint=f"memory://demo/trial-{trial.id}/step-{trial.data.last_step}")
        segments += 1
        on_segment()
    return segments


def run_demo(console: Console | None = None, *, scheduler: str | None = None, max_cost: float = 8.0,
             max_trials: int | None = None, seed: int = 0, workdir: Path | None = None,
             runner: TrialRunner = run_ask_tell_worker) -> Recommendation:
    """Serve, create a study, run it to its budget, print and return the recommendation."""
    console = console or Console()
    scheduler = scheduler or pick_scheduler()
    with tempfile.TemporaryDirectory(prefix="scaleladder-demo-") as tmp:
        folder = Path(workdir or tmp)
        # the study names this module as its (external) workload; the demo's own service trusts it
        app = create_app(Settings(database_url=f"sqlite:///{folder / 'demo.db'}", migrate_on_startup=True,
                                  executor=ExecutorKind.EXTERNAL, workload_modules=("service.demo",)))
        with transaction(app.state.session_factory) as session:
            token = TokenRepository(session).create("demo", name="demo")
        with ServerThread(app) as server, Client(server.url, token) as client:
            console.print(f"[bold]ScaleLadder demo[/]: service on {server.url}, scheduler [cyan]{scheduler}[/]")
            study = client.create_study(demo_spec(scheduler, max_cost=max_cost, max_trials=max_trials, seed=seed))
            with Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                          TextColumn("{task.percentage:>5.1f}%"), TextColumn("{task.fields[info]}"),
                          TimeElapsedColumn(), console=console, transient=False) as bar:
                task = bar.add_task(f"study {study.id}", total=1.0, info="")

                def on_segment() -> None:
                    p = study.progress()
                    best = "-" if p.best_value is None else f"{p.best_value:.4f}"
                    bar.update(task, completed=p.fraction_done or 0.0,
                               info=f"trials {p.n_trials}  cost {p.cost_spent:.2f}/{max_cost:g}  best {best}")

                runner(study, on_segment)
                bar.update(task, completed=1.0)
            progress = study.progress()
            rec = study.best()
            print_result(console, study.refresh(), progress, rec,
                         true_value=synthetic_loss(rec.params, SIZES[rec.size], rec.steps))
    return rec


def print_result(console: Console, study: StudyHandle, progress, rec: Recommendation, *,
                 true_value: float | None = None) -> None:
    """Print a finished demo study: its trial counts and cost, and the recommendation at the target
    (with the true objective of the recommended parameters when the demo's objective is known)."""
    counts = ", ".join(f"{n} {s.value}" for s, n in sorted(progress.trials_by_state.items(), key=lambda x: x[0].value))
    console.print(f"study {study.id} [green]{study.state.value}[/]: {progress.n_trials} trials ({counts}), "
                  f"{progress.n_measurements} measurements, cost {progress.cost_spent:.2f} target runs")
    console.print(f"[bold]Recommendation at the target[/] ({rec.size}, {rec.steps} steps):")
    table = Table()
    table.add_column("parameter")
    table.add_column("value", justify="right")
    for k, v in rec.params.items():
        table.add_row(k, f"{v:.5g}" if isinstance(v, float) else str(v))
    console.print(table)
    predicted = "n/a" if rec.predicted is None else f"{rec.predicted:.4f}"
    std = "" if rec.std is None else f" ± {rec.std:.4f}"
    truth = "" if true_value is None else f"; true loss of these parameters {true_value:.4f}"
    console.print(f"predicted loss at the target {predicted}{std}{truth}")
    for w in rec.warnings:
        console.print(f"[yellow]warning:[/] {w}")
