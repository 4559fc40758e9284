"""``scaleladder demo``: a real study on a local Ray with the muP transformer, in a few minutes on 2 cores.

Starts a local Ray (2 CPUs unless told otherwise) and the service in-process with the Ray executor and a
temporary SQLite database, creates a study of the ``mup_transformer`` workload at three widths (32, 64,
128) and step budgets 50..300, tuning the learning rate and the training data mixture, shows a progress bar
while the trials train on Ray, and prints the recommendation at the target (width 128, 300 steps).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from api.client import Client
from api.schemas import Recommendation
from schedulers.registry import scheduler_names
from service.demo import print_result

#: the multi-scale flagship if registered, else ASHA climbing the size ladder
PREFERRED = (("multiscale_bo", {}), ("asha", {"size_rungs": True}), ("hyperband", {}), ("random", {}))

WIDTHS = {"w32": 32, "w64": 64, "w128": 128}


def ray_demo_spec(scheduler: str, options: dict[str, Any] | None = None, *, max_cost: float = 6.0,
                  max_trials: int | None = None, seed: int = 0) -> dict[str, Any]:
    """The demo study: muP transformer LM, widths 32/64/128, 50..300 steps, target (300 steps, width 128)."""
    n_layers = 2
    return {
        "name": "ray-demo",
        "objective": {"metric": "val_loss", "direction": "minimize"},
        "space": [
            {"name": "lr", "type": "float", "low": 1e-3, "high": 3e-1, "log": True, "role": "scientific"},
            {"name": "mix", "type": "mixture", "components": ["code", "math", "prose"]},
        ],
        "fidelity": {"steps": {"min": 50, "max": 300, "report_every": 50},
                     "sizes": [{"name": n, "params": 12 * n_layers * w * w, "extra": {"width": w}}
                               for n, w in WIDTHS.items()]},
        "target": {"steps": 300, "size": "w128"},
        "cost": {"kind": "analytic", "tokens_per_step": 512},
        "budget": {"max_cost": max_cost, "max_trials": max_trials},
        "scheduler": {"name": scheduler, "options": dict(options or {}), "seed": seed},
        "workload": {"name": "mup_transformer", "args": {"n_layers": n_layers, "base_width": 32}},
    }


def pick_scheduler() -> tuple[str, dict[str, Any]]:
    known = set(scheduler_names())
    return next((name, opts) for name, opts in PREFERRED if name in known)


def run_ray_demo(console: Console | None = None, *, scheduler: str | None = None, max_cost: float = 6.0,
                 max_trials: int | None = None, seed: int = 0, num_cpus: int = 2, dashboard: bool = False, workdir: Path | None = None,
                 timeout: float = 900.0) -> Recommendation:
    """Run the demo study on a local Ray; print and return the recommendation."""
    import ray

    from service.app import create_app
    from service.db import transaction
    from service.repositories import TokenRepository
    from service.server import ServerThread
    from service.settings import ExecutorKind, Settings

    console = console or Console()
    name, options = (scheduler, {}) if scheduler else pick_scheduler()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    with tempfile.TemporaryDirectory(prefix="scaleladder-ray-demo-") as tmp:
        folder = Path(workdir or tmp)
        started = not ray.is_initialized()
        if started:
            console.print(f"starting a local Ray ({num_cpus} CPUs{', with its dashboard' if dashboard else ''})...")
            try:
                context = ray.init(num_cpus=num_cpus, include_dashboard=dashboard, log_to_driver=False,
                                   configure_logging=False, namespace="scaleladder")
            except Exception as e:  # the dashboard's packages (ray[default]) missing or broken: run without
                if not dashboard:
                    raise
                console.print(f"[yellow]the Ray dashboard cannot start ({type(e).__name__}: {e}); running without it[/]")
                ray.shutdown()
                context = ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False,
                                   configure_logging=False, namespace="scaleladder")
            url = getattr(context, "dashboard_url", None)
            console.print(f"Ray dashboard: http://{url} (Actors: the study runner and its trials)" if url else
                          "Ray dashboard: not running" + ("" if dashboard else " (--dashboard starts it)")
                          + ("; its packages may be missing: pip install 'ray[default]'" if dashboard else ""))
        else:
            console.print("Ray dashboard: this Ray was started elsewhere; see its own dashboard, if any")
        app = create_app(Settings(database_url=f"sqlite:///{folder / 'demo.db'}", migrate_on_startup=True,
                                  executor=ExecutorKind.RAY, executor_options={"storage_path": str(folder / "ray"),
                                                                    "recover": False}))
        try:
            with transaction(app.state.session_factory) as session:
                token = TokenRepository(session).create("demo", name="demo")
            with ServerThread(app) as server, Client(server.url, token) as client:
                console.print(f"[bold]ScaleLadder demo on Ray[/]: service on {server.url}, scheduler "
                              f"[cyan]{name}[/], muP transformer at widths {list(WIDTHS.values())}")
                study = client.create_study(ray_demo_spec(name, options, max_cost=max_cost,
                                                        max_trials=max_trials, seed=seed))
                console.print(f"study {study.id} runs as Ray actor [cyan]scaleladder-study-{study.id}[/]")
                _watch(console, study, max_cost, timeout)
                progress = study.progress()
                rec = study.best()
                print_result(console, study.refresh(), progress, rec)
                return rec
        finally:
            app.state.executor.close()
            if started and ray.is_initialized():
                ray.shutdown()


def _watch(console: Console, study, max_cost: float, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.percentage:>5.1f}%"),
                  TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task(f"study {study.id}", total=1.0, info="")
        while time.monotonic() < deadline:
            p = study.progress()
            best = "-" if p.best_value is None else f"{p.best_value:.4f}"
            bar.update(task, completed=min(p.fraction_done or 0.0, 1.0),
                       info=f"trials {p.n_trials}  measurements {p.n_measurements}  "
                            f"cost {p.cost_spent:.2f}/{max_cost:g}  best {best}")
            if p.state.is_final:
                bar.update(task, completed=1.0)
                return
            time.sleep(0.5)
    study.cancel()
    console.print(f"[yellow]the demo hit its {timeout:g} s timeout; the study was cancelled[/]")
