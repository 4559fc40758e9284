"""The Ray Tune function trainable that runs one trial segment of a study, and its per-size resources.

``run_trial(config)`` loads the study's workload (built-in name or ``module:function``, if the
``workload_modules`` of the config, the deployment's :class:`workers.workloads.WorkloadPolicy`, allow it),
resumes from ``ray.tune.get_checkpoint()`` (Tune's own: a PAUSEd trial or a worker that died) or, failing
that, from ``config["restore_from"]`` (a checkpoint directory recorded in the database before the control
plane restarted, refused unless it lies under the study's own prefix), trains to ``config["steps"]`` and
reports every measurement with ``ray.tune.report``.

Checkpoints are attached only at steps where the scheduler may pause or promote (the segment's end and the
geometric rungs ``min_steps * eta^k``) and every ``checkpoint_every`` steps for crash recovery, not on
every report: each checkpoint makes Tune snapshot its experiment state, 3-7x slower when done per step.
A checkpoint is a directory with ``state.pt`` (what the workload offered) under
``<checkpoint_prefix>/trial-<id>/step-<step>``, where the prefix is the study's own,
:func:`checkpoint_prefix` (``<storage>/checkpoints/tenant-<tenant>/study-<id>``), chosen by the study's
runner; its path is reported as ``checkpoint_dir`` so the service can record it. Only the last few
directories per trial are kept.

An adaptive study's trial (``config["adaptive"]`` names the study's :class:`workers.adaptation.MixtureBoard`)
starts from the mixture the board holds for its start step (so a trial Tune restarts from a checkpoint
continues with the mixture it had then), reports the workload's per-domain values with each result
(``domains``) and, once ``tune.report`` returns, hands the runner's answer (the new mixture, which the
runner posts to the board) back to the workload as the reporter's return value.

Config keys are :class:`schedulers.ray_adapter.TrialKeys` plus ``workload``, ``workload_modules``, ``args``,
``checkpoint_prefix``, ``checkpoint_every``, ``min_steps`` and ``checkpoint_etas``.
"""

from __future__ import annotations

import math
import os
import pickle
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import quote

import ray
import torch
from ray import tune
from ray.tune.execution.placement_groups import PlacementGroupFactory
from ray.tune.trainable.function_trainable import wrap_function

from schedulers.problem import Problem
from schedulers.ray_adapter import TrialKeys
from workers.adaptation import DEFAULT_WAIT_SECONDS, get_board
from workers.errors import UnsafeCheckpointError
from workers.workloads import WorkloadPolicy, load_workload

STATE_FILE = "state.pt"
KEEP_CHECKPOINTS = 3


def is_checkpoint_step(step: int, steps: int, min_steps: int, etas: tuple[int, ...], every: int | None) -> bool:
    """Whether a report at ``step`` of a segment ending at ``steps`` should carry a checkpoint."""
    if step >= steps:
        return True
    if every and step % every == 0:
        return True
    for eta in etas:
        rung = min_steps
        while eta > 1 and rung < step:
            rung *= eta
        if rung == step:
            return True
    return False


def checkpoint_prefix(root: str | os.PathLike, tenant: str, study_id: int | str) -> Path:
    """The one directory under which a study's checkpoints live: ``<root>/tenant-<tenant>/study-<id>``.

    The server side (the study's runner) chooses it, never a client, and a checkpoint path outside it is
    neither recorded nor restored from (:func:`is_within`): a path in a report could otherwise name another
    tenant's checkpoint. The tenant is percent-encoded so that no tenant name can leave its directory."""
    return Path(root).resolve() / f"tenant-{quote(tenant, safe='')}" / f"study-{study_id}"


def is_within(path: str | os.PathLike, prefix: str | os.PathLike) -> bool:
    """Whether ``path`` lies under ``prefix`` once both are resolved (``..`` and symlinks followed)."""
    try:
        return Path(path).resolve().is_relative_to(Path(prefix).resolve())
    except (OSError, ValueError):
        return False


def load_checkpoint_state(directory: str | os.PathLike) -> dict[str, Any] | None:
    """The ``checkpoint_state`` saved in ``directory`` (``None`` if it holds none), loaded with
    ``weights_only=True``: a checkpoint file is written by a tenant's workload, and an unrestricted
    unpickle would run whatever code the file names. Built-in workloads save only state dicts and ints, which this
    loads; anything else raises :class:`UnsafeCheckpointError`."""
    path = Path(directory) / STATE_FILE
    if not path.exists():
        return None
    try:
        return torch.load(path, weights_only=True)
    except pickle.UnpicklingError as e:
        raise UnsafeCheckpointError(f"checkpoint {path} holds more than tensors and plain data; refused: "
                                    f"{str(e).splitlines()[0]}") from None


def _prune(trial_dir: Path, keep: int) -> None:
    dirs = sorted((d for d in trial_dir.glob("step-*") if d.is_dir()), key=lambda d: int(d.name.split("-")[1]))
    for d in dirs[:-keep]:
        shutil.rmtree(d, ignore_errors=True)


def run_trial(config: dict[str, Any]) -> None:
    """Tune function trainable: one segment of one trial (see the module docstring)."""
    # checked here again, not only when the study was created: the worker is where the code would run
    workload = load_workload(str(config["workload"]), WorkloadPolicy(tuple(config.get("workload_modules") or ())))
    prefix = Path(config.get("checkpoint_prefix") or checkpoint_prefix(
        Path(tempfile.gettempdir()) / "scaleladder-checkpoints", "local", config.get(TrialKeys.STUDY_ID, "local")))
    state = None
    tune_ckpt = tune.get_checkpoint()
    if tune_ckpt is not None:
        with tune_ckpt.as_directory() as d:
            state = load_checkpoint_state(d)
    elif config.get(TrialKeys.RESTORE_FROM):
        restore = config[TrialKeys.RESTORE_FROM]
        if not is_within(restore, prefix):  # the runner filters these out; this is the worker's own check
            raise UnsafeCheckpointError(f"checkpoint {restore} is outside the study's checkpoint prefix {prefix}; "
                                        "refused")
        state = load_checkpoint_state(restore)
    steps = int(config[TrialKeys.STEPS])
    start_step = min(int(state["step"]), steps) if state else 0
    trial_dir = prefix / f"trial-{config[TrialKeys.TRIAL_ID]}"
    min_steps = int(config.get("min_steps") or config.get(TrialKeys.REPORT_EVERY) or 1)
    etas = tuple(int(e) for e in config.get("checkpoint_etas", (2, 3)))
    every = config.get("checkpoint_every")
    ids = {TrialKeys.STUDY_ID: config.get(TrialKeys.STUDY_ID), TrialKeys.TRIAL_ID: config[TrialKeys.TRIAL_ID]}
    adaptive = config.get(TrialKeys.ADAPTIVE) or None
    board = get_board(adaptive["board"], adaptive.get("namespace")) if adaptive else None
    trial_id = int(config[TrialKeys.TRIAL_ID])
    adapted = ray.get(board.at.remote(trial_id, start_step)) if board is not None else None

    def answer(step: int, domains: Mapping[str, float] | None) -> Mapping[str, float] | None:
        if board is None or not domains:
            return None
        return ray.get(board.wait.remote(trial_id, int(step), float(adaptive.get("wait", DEFAULT_WAIT_SECONDS))))

    def reporter(step: int, value: float, checkpoint_state: dict[str, Any] | None = None, *,
                 domains: Mapping[str, float] | None = None,
                 metrics: Mapping[str, float] | None = None) -> Mapping[str, float] | None:
        named = metrics
        metrics: dict[str, Any] = {**ids, TrialKeys.STEP: int(step), TrialKeys.VALUE: float(value)}
        if domains:
            metrics[TrialKeys.DOMAINS] = {k: float(v) for k, v in domains.items()}
        if named:
            metrics[TrialKeys.METRICS] = {k: float(v) for k, v in named.items()}
        if checkpoint_state is None or not math.isfinite(value) or \
                not is_checkpoint_step(int(step), steps, min_steps, etas, int(every) if every else None):
            tune.report(metrics)
            return answer(step, domains)
        directory = trial_dir / f"step-{int(step)}"
        directory.mkdir(parents=True, exist_ok=True)
        torch.save(checkpoint_state, directory / STATE_FILE)
        metrics[TrialKeys.CHECKPOINT_DIR] = str(directory)
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(str(directory)))
        _prune(trial_dir, KEEP_CHECKPOINTS)
        return answer(step, domains)

    workload({TrialKeys.PARAMS: dict(config.get(TrialKeys.PARAMS) or {}), TrialKeys.SIZE: config[TrialKeys.SIZE],
              TrialKeys.SIZE_PARAMS: float(config.get(TrialKeys.SIZE_PARAMS, 1.0)),
              TrialKeys.SIZE_EXTRA: dict(config.get(TrialKeys.SIZE_EXTRA) or {}), TrialKeys.STEPS: steps,
              TrialKeys.START_STEP: start_step, TrialKeys.REPORT_EVERY: int(config.get(TrialKeys.REPORT_EVERY, 10)),
              TrialKeys.SEED: int(config.get(TrialKeys.SEED, 0)), "args": dict(config.get("args") or {}),
              "checkpoint": state, TrialKeys.ADAPTED: adapted}, reporter)


def resources_by_size(problem: Problem) -> Callable[[Mapping[str, Any]], PlacementGroupFactory]:
    """``fn(config) -> PlacementGroupFactory`` asking for what the cost model says a trial of
    ``config["size"]`` needs (by default the ladder's declared CPUs/GPUs)."""

    def resources(config: Mapping[str, Any]) -> PlacementGroupFactory:
        need = problem.cost_model.resources(problem.ladder.size(str(config[TrialKeys.SIZE])))
        bundle = {"CPU": float(need.get("cpu", 1.0))}
        if float(need.get("gpu", 0.0)) > 0:
            bundle["GPU"] = float(need["gpu"])
        return PlacementGroupFactory([bundle])

    return resources


def trial_label(config: Mapping[str, Any]) -> str:
    """What a trial actor is called in the Ray dashboard: ``study-3/trial-12 w128 300 steps``."""
    return (f"study-{config.get(TrialKeys.STUDY_ID, 'local')}/trial-{config.get(TrialKeys.TRIAL_ID, '?')} "
            f"{config.get(TrialKeys.SIZE, '?')} {config.get(TrialKeys.STEPS, '?')} steps")


def make_trainable(problem: Problem, name: str) -> type:
    """The trainable class of one experiment, ready for ``tune.Tuner``: :func:`run_trial` asking for the
    per-size resources of ``problem``'s ladder, registered by Tune under ``name``.

    Each experiment gets a class of its own, because what Tune keys a trainable by would be shared
    otherwise: ``tune.with_resources(run_trial, ...)`` stores the resource function as an attribute of the
    one ``run_trial`` function, and Tune registers the trainable (in the cluster's key-value store, per Ray
    job) under its name. Every study runner of one control plane belongs to the same job, so with one
    shared ``run_trial`` the last study to start sized every study's trials with its ladder. ``name`` must
    therefore be unique among the experiments running at once on the job (the study runner uses its
    experiment name, ``study-<id>-<time>``).

    In the Ray dashboard the trial actors' class is ``name`` and an actor's repr is :func:`trial_label` of
    the trial it was created for (Tune reuses actors, so later trials of the same actor keep that repr).
    """
    resources = resources_by_size(problem)

    class Trial(wrap_function(run_trial, name=name)):
        @classmethod
        def default_resource_request(cls, config: dict[str, Any]) -> PlacementGroupFactory:
            return resources(config)

        def __repr__(self) -> str:
            return trial_label(getattr(self, "config", None) or {})

    Trial.__name__ = Trial.__qualname__ = name
    Trial.__doc__ = run_trial.__doc__
    return Trial
