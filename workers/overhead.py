"""Ray overhead benchmark: ``python -m workers.overhead [--trials 100] [--reports 10] [--work 0.02] [--studies 1]``.

(``python -m service.cli_ray overhead ...`` runs the same with every decision persisted by the service, and
``python -m service.cli_ray overhead-table`` the rows of bench/README.md's "Ray overhead" table.)

Runs ``--studies`` random searches at once on one local Ray, each over a one-parameter space with
``--trials`` trials, through the real adapters and trainable (:func:`workers.experiment.build_tuner`), with
a workload that only sleeps ``--work`` seconds per report (no training), and prints what the execution
layer costs: trial reports per second through Tune and the scheduler, and worker busy time (seconds spent
inside the workload / (wall time x concurrent slots)). Each study's Tune driver runs in a Ray task of its
own (``num_cpus=0``), as the service runs each study in a runner actor of its own; the studies share the
``--slots`` CPUs.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence


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


def overhead_problem(reports: int) -> dict[str, Any]:
    """The benchmark's problem (wire shape): one float in [0, 1], one size, ``reports`` steps."""
    return {"space": [{"name": "x", "type": "float", "low": 0.0, "high": 1.0}],
            "fidelity": {"steps": {"min": 1, "max": reports, "report_every": 1}, "sizes": [{"name": "s", "params": 1}]},
            "target": {"steps": reports, "size": "s"}}


def sleeper_config(work: float, log: Path) -> dict[str, Any]:
    from workers.experiment import experiment_config

    return experiment_config("workers.overhead:sleeper", {"work": work, "log": str(log)},
                             workload_modules=["workers.overhead"])  # the measurement's own sleeper


@dataclass(frozen=True)
class OverheadStudy:
    """One study of the benchmark, built where its Tune driver runs (a Ray task): picklable, unlike a
    bridge holding a database engine. This one keeps its scheduler in memory and persists nothing: the
    cost of Ray, Tune and the adapters alone."""

    index: int
    trials: int
    reports: int
    work: float
    slots: int
    folder: str

    @property
    def busy_log(self) -> Path:
        return Path(self.folder) / f"busy-{self.index}.jsonl"

    def bridge(self) -> Any:
        from schedulers import Problem, make_scheduler
        from schedulers.ray_adapter import SchedulerBridge, StudyBudget

        sched = make_scheduler("random", Problem.from_dict(overhead_problem(self.reports)))
        return SchedulerBridge(sched, base_config=sleeper_config(self.work, self.busy_log),
                               budget=StudyBudget(max_trials=self.trials), max_concurrent=self.slots)


def run_one(study: OverheadStudy) -> dict[str, float]:
    """Run one study's Tune experiment to its end (in a Ray task); its start and end time and its counts."""
    from workers.experiment import build_tuner

    bridge = study.bridge()
    start = time.time()
    build_tuner(bridge, name=f"overhead-{study.index}", storage_path=Path(study.folder) / "ray").fit()
    end = time.time()
    return {"start": start, "end": end, "trials": len(bridge.scheduler.trials),
            "reports": sum(len(t.curve) for t in bridge.scheduler.trials.values())}


def measure(studies: Sequence[OverheadStudy], slots: int) -> dict[str, float]:
    """Run ``studies`` at once, each driver in a Ray task of its own, and measure reports/s and worker busy
    time over the wall time from the first study's start to the last one's end (worker process start-up
    before the first driver starts is not counted; Ray's own start-up neither)."""
    import ray

    runs = ray.get([ray.remote(num_cpus=0)(run_one).remote(s) for s in studies])
    wall = max(r["end"] for r in runs) - min(r["start"] for r in runs)
    n_reports = sum(r["reports"] for r in runs)
    busy = sum(json.loads(x)["busy"] for s in studies for x in s.busy_log.read_text().splitlines())
    return {"trials": sum(r["trials"] for r in runs), "reports": n_reports, "wall_s": round(wall, 2),
            "reports_per_s": round(n_reports / wall, 1), "worker_busy": round(busy / (wall * slots), 3),
            "slowest_study_s": round(max(r["end"] - r["start"] for r in runs), 2)}


#: ``make_studies(n_studies, trials, reports, work, slots, folder) -> the studies to run at once``
MakeStudies = Callable[[int, int, int, float, int, Path], Sequence[OverheadStudy]]


def in_memory_studies(n: int, trials: int, reports: int, work: float, slots: int, folder: Path) -> list[OverheadStudy]:
    return [OverheadStudy(i, trials, reports, work, slots, str(folder)) for i in range(n)]


def benchmark(make_studies: MakeStudies, *, studies: int = 1, trials: int = 100, reports: int = 10,
              work: float = 0.02, slots: int = 2) -> dict[str, Any]:
    """One measurement on a local Ray of its own (``slots`` CPUs), started and shut down here."""
    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    # address="local": a Ray of our own, never another engineer's that runs on this machine
    ray.init(address="local", num_cpus=slots, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        with tempfile.TemporaryDirectory(prefix="scaleladder-overhead-") as tmp:
            folder = Path(tmp)
            out = measure(make_studies(studies, trials, reports, work, slots, folder), slots)
    finally:
        ray.shutdown()
    return {"studies": studies, "trials_per_study": trials, "reports_per_trial": reports, "work": work,
            "slots": slots, **out}


def parser(description: str | None = __doc__) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--studies", type=int, default=1, help="studies running at once on the one Ray")
    p.add_argument("--trials", type=int, default=100, help="trials per study")
    p.add_argument("--reports", type=int, default=10)
    p.add_argument("--work", type=float, default=0.02, help="seconds of (sleeping) work per report")
    p.add_argument("--slots", type=int, default=2, help="concurrent trials (= CPUs of the local Ray)")
    return p


def run_benchmark(make_studies: MakeStudies, argv: list[str] | None = None) -> int:
    """Parse the benchmark's arguments, measure once, print one JSON line."""
    a = parser().parse_args(argv)
    print(json.dumps(benchmark(make_studies, **vars(a))))
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_benchmark(in_memory_studies, argv)


if __name__ == "__main__":
    raise SystemExit(main())
