"""Ray overhead benchmark: ``python -m workers.overhead [--trials 100] [--reports 10] [--work 0.02]``.

(``python -m service.cli_ray overhead ...`` runs the same with every decision persisted by the service.)

Runs random search over a one-parameter space on a local Ray through the real adapters and trainable
(:func:`workers.experiment.build_tuner`), with a workload that only sleeps ``--work`` seconds per report
(no training), and prints what the execution layer costs: trial reports per second through Tune and the
scheduler, and worker busy time (seconds spent inside the workload / (wall time x concurrent slots)).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any


def sleeper(config: dict[str, Any], reporter) -> None:
    """Sleeps ``args['work']`` seconds per report; appends its busy seconds to ``args['log']``."""
    work = float(config["args"].get("work", 0.0))
    busy = 0.0
    for step in range(config["start_step"] + 1, config["steps"] + 1):
        if step % config["report_every"] and step != config["steps"]:
            continue
        t0 = time.perf_counter()
        time.sleep(work)
        busy += time.perf_counter() - t0
        reporter(step, 1.0 / step + float(config["params"]["x"]))
    with open(config["args"]["log"], "a") as f:
        f.write(json.dumps({"busy": busy}) + "\n")


def _problem_dict(reports: int) -> dict[str, Any]:
    return {"space": [{"name": "x", "type": "float", "low": 0.0, "high": 1.0}],
            "fidelity": {"steps": {"min": 1, "max": reports, "report_every": 1}, "sizes": [{"name": "s", "params": 1}]},
            "target": {"steps": reports, "size": "s"}}


def overhead_problem(reports: int) -> dict[str, Any]:
    """The benchmark's problem (wire shape): one float in [0, 1], one size, ``reports`` steps."""
    return _problem_dict(reports)


def measure(bridge: Any, folder: Path, slots: int) -> dict[str, float]:
    """Run the study behind ``bridge`` (whose ``base_config`` runs :func:`sleeper` logging to
    ``folder/busy.jsonl``) and measure reports/s and worker busy time."""
    from workers.experiment import build_tuner

    t0 = time.perf_counter()
    build_tuner(bridge, name="overhead", storage_path=folder / "ray").fit()
    wall = time.perf_counter() - t0
    n_reports = sum(len(t.curve) for t in bridge.scheduler.trials.values())
    busy = sum(json.loads(x)["busy"] for x in (folder / "busy.jsonl").read_text().splitlines())
    return {"trials": len(bridge.scheduler.trials), "reports": n_reports, "wall_s": round(wall, 2),
            "reports_per_s": round(n_reports / wall, 1), "worker_busy": round(busy / (wall * slots), 3)}


def sleeper_config(work: float, folder: Path) -> dict[str, Any]:
    from workers.experiment import experiment_config

    return experiment_config("workers.overhead:sleeper", {"work": work, "log": str(folder / "busy.jsonl")},
                             workload_modules=["workers.overhead"])  # the measurement's own sleeper


def in_memory_bridge(trials: int, reports: int, work: float, slots: int, folder: Path) -> Any:
    """The scheduler in memory, nothing persisted: the cost of Ray, Tune and the adapters alone."""
    from schedulers import Problem, make_scheduler
    from schedulers.ray_adapter import SchedulerBridge, StudyBudget

    sched = make_scheduler("random", Problem.from_dict(_problem_dict(reports)))
    return SchedulerBridge(sched, base_config=sleeper_config(work, folder), budget=StudyBudget(max_trials=trials),
                           max_concurrent=slots)


def run_benchmark(make_bridge: Any, argv: list[str] | None = None) -> int:
    """Parse the benchmark's arguments, start a local Ray, build the bridge with
    ``make_bridge(trials, reports, work, slots, folder)``, measure, print one JSON line."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trials", type=int, default=100)
    p.add_argument("--reports", type=int, default=10)
    p.add_argument("--work", type=float, default=0.02, help="seconds of (sleeping) work per report")
    p.add_argument("--slots", type=int, default=2, help="concurrent trials (= CPUs of the local Ray)")
    a = p.parse_args(argv)
    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=a.slots, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        with tempfile.TemporaryDirectory(prefix="scaleladder-overhead-") as tmp:
            folder = Path(tmp)
            out = measure(make_bridge(a.trials, a.reports, a.work, a.slots, folder), folder, a.slots)
    finally:
        ray.shutdown()
    print(json.dumps({**vars(a), **out}))
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_benchmark(in_memory_bridge, argv)


if __name__ == "__main__":
    raise SystemExit(main())
