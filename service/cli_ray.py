"""``scaleladder demo``: a real study on a local Ray with the muP transformer, in a few minutes on 2 cores.

Starts a local Ray (2 CPUs unless told otherwise) and the service in-process with the Ray executor and a
temporary SQLite database, creates a study of the ``mup_transformer`` workload at three widths (32, 64,
128) and step budgets 50..300, tuning the learning rate and the training data mixture, shows a progress bar
while the trials train on Ray, and prints the recommendation at the target (width 128, 300 steps).

Also the persisted variant of the Ray overhead benchmark (``workers.overhead``): ``python -m service.cli_ray
overhead [--studies N] ...`` and ``python -m service.cli_ray overhead-table`` (bench/README.md's table).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from api.client import Client
from api.schemas import Recommendation
from schedulers.registry import scheduler_names
from service.demo import print_result
from workers.overhead import (OverheadStudy, benchmark, in_memory_studies, overhead_problem, run_benchmark,
                              sleeper_config)

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
                context = ray.init(address="local", num_cpus=num_cpus, include_dashboard=dashboard, log_to_driver=False,
                                   configure_logging=False, namespace="scaleladder")
            except Exception as e:  # the dashboard's packages (ray[default]) missing or broken: run without
                if not dashboard:
                    raise
                console.print(f"[yellow]the Ray dashboard cannot start ({type(e).__name__}: {e}); running without it[/]")
                ray.shutdown()
                context = ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=False,
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


# -- Ray overhead benchmark (bench/README.md, "Ray overhead") -----------------------------------------------
# The in-memory variant is workers.overhead; the persisted one lives here so workers/ never imports service/.


@dataclass(frozen=True)
class PersistedStudy(OverheadStudy):
    """A study of the Ray overhead benchmark whose every scheduler decision goes through the service's
    ``StudyRuntime`` into the database (as under ``scaleladder serve``); built in its driver's Ray task."""

    database_url: str = ""
    study_id: int = 0

    def bridge(self) -> Any:
        from schedulers import Problem, make_scheduler
        from service.db import make_engine, make_session_factory
        from service.ray_runner import DatabaseBridge
        from service.settings import Settings

        factory = make_session_factory(make_engine(Settings(database_url=self.database_url)))
        sched = make_scheduler("random", Problem.from_dict(overhead_problem(self.reports)))
        return DatabaseBridge(sched, session_factory=factory, study_id=self.study_id, tenant="bench",
                              base_config=sleeper_config(self.work, self.busy_log), max_concurrent=self.slots)


def persisted_studies(n: int, trials: int, reports: int, work: float, slots: int,
                      folder: Path) -> list[PersistedStudy]:
    """``n`` started studies in one SQLite database (one per control plane, as ``serve`` keeps them)."""
    from api.schemas import StudySpec
    from service.db import make_engine, make_session_factory, transaction
    from service.executors import ExternalExecutor
    from service.lifecycle import StudyAction, apply_action
    from service.migrate import upgrade
    from service.repositories import StudyRepository
    from service.scheduling import SchedulerCache, StudyRuntime
    from service.settings import Settings

    settings = Settings(database_url=f"sqlite:///{folder / 'bench.db'}")
    engine = make_engine(settings)
    upgrade(engine)
    factory = make_session_factory(engine)
    spec = StudySpec.model_validate({"name": "overhead", **overhead_problem(reports),
                                     "budget": {"max_trials": trials}, "scheduler": {"name": "random"}})
    ids = []
    for _ in range(n):
        with transaction(factory) as session:
            row = StudyRepository(session).add("bench", spec)
            apply_action(StudyRuntime(session, row, SchedulerCache(0)), StudyAction.START, ExternalExecutor(settings))
            ids.append(row.id)
    engine.dispose()
    return [PersistedStudy(i, trials, reports, work, slots, str(folder), database_url=settings.database_url,
                           study_id=study_id) for i, study_id in enumerate(ids)]


class Persistence(Enum):
    """Where the benchmark's scheduler decisions go (the table's "persistence" column)."""

    NONE = "none (scheduler in memory)"
    SQLITE = "SQLite via `StudyRuntime`"

    @property
    def make_studies(self):
        return in_memory_studies if self is Persistence.NONE else persisted_studies


#: bench/README.md's rows: (persistence, studies at once, trials per study, seconds of work per report), 10
#: reports per trial, 2 slots. The several-study rows keep each single-study row's total trials (100 or 40)
#: split over 4 studies, so their reports/s compare directly.
OVERHEAD_ROWS = (
    (Persistence.NONE, 1, 100, 0.02), (Persistence.NONE, 4, 25, 0.02),
    (Persistence.SQLITE, 1, 100, 0.02), (Persistence.SQLITE, 4, 25, 0.02),
    (Persistence.NONE, 1, 40, 0.10), (Persistence.NONE, 4, 10, 0.10),
)


def overhead_table(rows=OVERHEAD_ROWS, reports: int = 10, slots: int = 2, say=print) -> list[str]:
    """Measure each row once, on a fresh local Ray each; the markdown table of bench/README.md."""
    lines = ["| studies at once | trials x reports (per study) | work per report | persistence | wall (s) | "
             "reports/s | worker busy | slowest study (s) |", "|---|---|---|---|---|---|---|---|"]
    load = [os.getloadavg()[0]]
    for persistence, studies, trials, work in rows:
        out = benchmark(persistence.make_studies, studies=studies, trials=trials, reports=reports, work=work,
                        slots=slots)
        say(json.dumps({"persistence": persistence.name, **out}))
        lines.append(f"| {studies} | {trials} x {reports} | {work:.2f} s | {persistence.value} | {out['wall_s']:.1f} | "
                     f"{out['reports_per_s']:.1f} | {out['worker_busy']:.2f} | {out['slowest_study_s']:.1f} |")
        load.append(os.getloadavg()[0])
    lines.append("")
    lines.append(f"Load average (1 min) before and after each row: {', '.join(f'{x:.1f}' for x in load)}.")
    return lines


if __name__ == "__main__":
    import sys

    # the module's own names, not __main__'s: the studies are pickled to Ray tasks by reference
    from service.cli_ray import overhead_table, persisted_studies

    command, argv = sys.argv[1:2], sys.argv[2:]
    if command == ["overhead"]:
        # same arguments as python -m workers.overhead, every decision persisted into SQLite
        raise SystemExit(run_benchmark(persisted_studies, argv))
    if command == ["overhead-table"]:
        table = overhead_table(say=lambda line: print(line, file=sys.stderr, flush=True))
        print("\n".join(table))
        raise SystemExit(0)
    raise SystemExit("usage: python -m service.cli_ray overhead [--studies N] [--trials T] [--reports R] [--work W] "
                     "[--slots S]\n       python -m service.cli_ray overhead-table")
