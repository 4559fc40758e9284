"""Ray overhead benchmark: ``python -m workers.overhead [--trials 100] [--reports 10] [--work 0.02]``.

Runs random search over a one-parameter space on a local Ray through the real adapters and trainable
(:func:`workers.experiment.build_tuner`), with a workload that only sleeps ``--work`` seconds per report
(no training), and prints what the execution layer costs: trial reports per second through Tune and the
scheduler, and worker busy time (seconds spent inside the workload / (wall time x concurrent slots)).
With ``--database`` every decision also goes through the service's ``StudyRuntime`` into a SQLite file,
as ``scaleladder serve`` does.
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


def measure(trials: int, reports: int, work: float, slots: int, database: bool, folder: Path) -> dict[str, float]:
    from schedulers import Problem, make_scheduler
    from schedulers.ray_adapter import SchedulerBridge, StudyBudget
    from workers.experiment import build_tuner, experiment_config

    log = folder / "busy.jsonl"
    base = experiment_config("workers.overhead:sleeper", {"work": work, "log": str(log)})
    if database:
        from api.schemas import StudySpec
        from service.db import make_engine, make_session_factory, transaction
        from service.executors import ExternalExecutor
        from service.lifecycle import StudyAction, apply_action
        from service.migrate import upgrade
        from service.ray_runner import DatabaseBridge
        from service.repositories import StudyRepository
        from service.scheduling import SchedulerCache, StudyRuntime
        from service.settings import Settings

        settings = Settings(database_url=f"sqlite:///{folder / 'bench.db'}")
        engine = make_engine(settings)
        upgrade(engine)
        factory = make_session_factory(engine)
        spec = StudySpec.model_validate({"name": "overhead", **_problem_dict(reports),
                                         "budget": {"max_trials": trials}, "scheduler": {"name": "random"}})
        with transaction(factory) as session:
            row = StudyRepository(session).add("bench", spec)
            apply_action(StudyRuntime(session, row, SchedulerCache(0)), StudyAction.START, ExternalExecutor(settings))
            study_id = row.id
        sched = make_scheduler("random", Problem.from_dict(spec.problem_dict()))
        bridge: SchedulerBridge = DatabaseBridge(sched, session_factory=factory, study_id=study_id, tenant="bench",
                                                 base_config=base, max_concurrent=slots)
    else:
        sched = make_scheduler("random", Problem.from_dict(_problem_dict(reports)))
        bridge = SchedulerBridge(sched, base_config=base, budget=StudyBudget(max_trials=trials),
                                 max_concurrent=slots)
    t0 = time.perf_counter()
    build_tuner(bridge, name="overhead", storage_path=folder / "ray").fit()
    wall = time.perf_counter() - t0
    n_reports = sum(len(t.curve) for t in bridge.scheduler.trials.values())
    busy = sum(json.loads(x)["busy"] for x in log.read_text().splitlines())
    return {"trials": len(bridge.scheduler.trials), "reports": n_reports, "wall_s": round(wall, 2),
            "reports_per_s": round(n_reports / wall, 1), "worker_busy": round(busy / (wall * slots), 3)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trials", type=int, default=100)
    p.add_argument("--reports", type=int, default=10)
    p.add_argument("--work", type=float, default=0.02, help="seconds of (sleeping) work per report")
    p.add_argument("--slots", type=int, default=2, help="concurrent trials (= CPUs of the local Ray)")
    p.add_argument("--database", action="store_true", help="persist through StudyRuntime into SQLite")
    a = p.parse_args(argv)
    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=a.slots, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        with tempfile.TemporaryDirectory(prefix="scaleladder-overhead-") as tmp:
            out = measure(a.trials, a.reports, a.work, a.slots, a.database, Path(tmp))
    finally:
        ray.shutdown()
    print(json.dumps({**vars(a), **out}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
