"""The control plane's study runner is killed with SIGKILL mid-study and started again: the study
continues from the database with no measurement lost and no trial duplicated."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from api.schemas import StudySpec, StudyState
from service.db import make_engine, make_session_factory, transaction
from service.executors import ExternalExecutor
from service.lifecycle import StudyAction, apply_action
from service.migrate import upgrade
from service.models import MeasurementRow, StudyRow, TrialRow
from service.repositories import EventRepository, StudyRepository
from service.scheduling import SchedulerCache, StudyRuntime, build_problem, build_scheduler, decode_event
from service.settings import Settings

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]

SPEC = {
    "name": "restart",
    "space": [{"name": "lr", "type": "float", "low": 1e-3, "high": 1e-1, "log": True}],
    "fidelity": {"steps": {"min": 10, "max": 90, "report_every": 10}, "sizes": [{"name": "m", "params": 4e3}]},
    "target": {"steps": 90, "size": "m"},
    "budget": {"max_cost": 2},
    "scheduler": {"name": "hyperband", "seed": 2},
}


def _runner(db_url: str, study_id: int, storage: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "SCALELADDER_DATABASE_URL": db_url, "RAY_AUTH_MODE": "disabled",
           "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1",
           "SCALELADDER_WORKLOAD_MODULES": "tests.ray"}
    # its own session, so the runner and the local Ray it starts can be killed together
    return subprocess.Popen([sys.executable, "-m", "service.ray_runner", str(study_id), "--num-cpus", "2",
                             "--max-concurrent", "2", "--storage-path", str(storage)],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=open(log, "ab"),
                            start_new_session=True)


def test_runner_killed_mid_study_then_restarted_loses_and_duplicates_nothing(tmp_path):
    db_url = f"sqlite:///{tmp_path / 'study.db'}"
    settings = Settings(database_url=db_url)
    engine = make_engine(settings)
    upgrade(engine)
    factory = make_session_factory(engine)
    spec = dict(SPEC, workload={"entrypoint": "tests.ray.workloads:paced",
                                "args": {"pause": 0.15, "log": str(tmp_path / "work.jsonl")}})
    with transaction(factory) as session:
        study = StudyRepository(session).add("alice", StudySpec.model_validate(spec))
        apply_action(StudyRuntime(session, study, SchedulerCache(0)), StudyAction.START,
                     ExternalExecutor(settings))
        study_id = study.id

    def n_measurements() -> int:
        with transaction(factory) as session:
            return len(session.scalars(select(MeasurementRow.step)).all())

    first = _runner(db_url, study_id, tmp_path / "ray", tmp_path / "runner.log")
    try:
        deadline = time.time() + 90
        while n_measurements() < 8 and time.time() < deadline and first.poll() is None:
            time.sleep(0.2)
        assert first.poll() is None, "the study must still be running when it is killed"
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(30)
    before = n_measurements()
    with transaction(factory) as session:
        assert session.get(StudyRow, study_id).state is StudyState.RUNNING

    second = _runner(db_url, study_id, tmp_path / "ray", tmp_path / "runner.log")
    try:
        out, _ = second.communicate(timeout=180)
    finally:
        if second.poll() is None:
            os.killpg(second.pid, signal.SIGKILL)
    assert second.returncode == 0, (tmp_path / "runner.log").read_text()[-3000:]
    assert out.decode().strip().splitlines()[-1] == "completed"

    with transaction(factory) as session:
        study = session.get(StudyRow, study_id)
        assert study.state is StudyState.COMPLETED
        rows = session.scalars(select(TrialRow).where(TrialRow.study_id == study_id).order_by(TrialRow.number)).all()
        events = [decode_event(p) for p in EventRepository(session).load(study_id)]
        sched = build_scheduler(StudySpec.model_validate(study.spec),
                                build_problem(StudySpec.model_validate(study.spec))).replay(events)
        # no duplicate trial: one row per scheduler trial, numbered 0..n-1
        assert [r.number for r in rows] == list(range(len(sched.trials)))
        total = 0
        for r in rows:
            steps = list(session.scalars(select(MeasurementRow.step).where(MeasurementRow.trial_id == r.id)
                                         .order_by(MeasurementRow.step)))
            # no lost measurement: every report the scheduler took is stored, without gaps
            assert steps == [s for s, _ in sched.trials[r.number].curve]
            assert steps == list(range(10, (r.last_step or 0) + 1, 10))
            total += len(steps)
    assert total > before
    # the second runner continued the trials that were live, from their checkpoints, not from zero
    starts = [x for x in map(json.loads, (tmp_path / "work.jsonl").read_text().splitlines())
              if x["event"] == "start" and x["resumed"]]
    assert starts
    # the runner's log follows the study, not only its errors
    text = (tmp_path / "runner.log").read_text()
    for line in (" trial 0 started: m, steps 0..", " trial 0 reported ", " at step 10", ": continue", ": paused",
                 " resumed: m, steps "):
        assert line in text, (line, text[-2000:])
    engine.dispose()
    create_engine(db_url).dispose()
