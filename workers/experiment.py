"""The Ray Tune experiment of one study: the trainable with per-size resources, the two scheduler adapters
over a :class:`~schedulers.ray_adapter.SchedulerBridge`, and the run configuration.

Settings measured on 2 cores (``/work/shared/notes/ray-tune-2.60.md``): ``reuse_actors=True`` (an actor
start costs about 1.5 s), no automatic logger callbacks (set ``TUNE_DISABLE_AUTO_CALLBACK_LOGGERS=1``
before Tune starts; :func:`quiet_tune_env` does), checkpoints only where the trainable decides, and
``num_samples=-1`` so the searcher's ``FINISHED`` ends the experiment.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from ray import tune

from schedulers.ray_adapter import LadderTrialScheduler, SchedulerBridge, SchedulerSearcher, TrialKeys
from workers.trainable import checkpoint_prefix, make_trainable


def quiet_tune_env() -> None:
    """Environment for fast, quiet Tune runs (must be set before Tune builds its controller)."""
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("TUNE_MAX_PENDING_TRIALS_PG", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")


def trial_dirname(trial: Any) -> str:
    """Trial directories (and names in the dashboard) say which study and scheduler trial they run."""
    cfg = trial.config
    return f"study-{cfg.get(TrialKeys.STUDY_ID, 'local')}-trial-{cfg.get(TrialKeys.TRIAL_ID, trial.trial_id)}"


def build_tuner(bridge: SchedulerBridge, *, name: str, storage_path: str | os.PathLike,
                callbacks: Sequence[tune.Callback] = (), max_failures: int = 2,
                stop: tune.Stopper | None = None, verbose: int = 0) -> tune.Tuner:
    """A ``Tuner`` running the study behind ``bridge``. ``bridge.base_config`` must name the ``workload``
    (and may carry ``args``, ``workload_modules``, ``checkpoint_prefix``, ``checkpoint_every``; without a
    prefix, checkpoints go under ``<storage_path>/checkpoints`` for tenant ``local``). ``name`` names the experiment and
    its trainable: it must be unique among the experiments running at once on one Ray job (see
    :func:`workers.trainable.make_trainable`)."""
    quiet_tune_env()
    problem = bridge.scheduler.problem
    bridge.base_config.setdefault("min_steps", problem.ladder.min_steps)
    bridge.base_config.setdefault("checkpoint_prefix", str(checkpoint_prefix(
        Path(storage_path) / "checkpoints", "local", bridge.base_config.get(TrialKeys.STUDY_ID, "local"))))
    searcher = SchedulerSearcher(bridge)
    return tune.Tuner(
        make_trainable(problem, name),
        tune_config=tune.TuneConfig(search_alg=searcher, scheduler=LadderTrialScheduler(bridge),
                                    num_samples=-1, reuse_actors=True,
                                    trial_name_creator=trial_dirname, trial_dirname_creator=trial_dirname),
        run_config=tune.RunConfig(name=name, storage_path=str(Path(storage_path).resolve()),
                                  callbacks=list(callbacks), verbose=verbose, stop=stop,
                                  failure_config=tune.FailureConfig(max_failures=max_failures),
                                  checkpoint_config=tune.CheckpointConfig(num_to_keep=None)))


def experiment_config(workload: str, args: Mapping[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """The ``base_config`` of a bridge: what every trial of the study shares."""
    return {"workload": workload, "args": dict(args or {}), **extra}
