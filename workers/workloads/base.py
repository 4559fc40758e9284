"""The workload contract: ``fn(config, reporter)``.

A workload trains one trial segment: from ``config["start_step"]`` (resuming from ``config["checkpoint"]``
when given) to ``config["steps"]``, calling ``reporter(step, value)`` every ``config["report_every"]``
steps and at the last step. ``value`` is the objective in the study's direction (built-ins report a
validation loss). The config keys are those of :class:`WorkloadConfig`; a user workload receives the same
plain ``dict`` so it needs nothing from this package.

Contracts every workload keeps:

- Reports have strictly increasing steps, all in ``(start_step, steps]``; the last report is at ``steps``.
- Divergence is data, not an error: a NaN/inf loss is reported as a non-finite ``value`` and the workload
  returns (the scheduler records the trial as diverged and the study goes on).
- ``checkpoint_state`` passed to the reporter is a ``torch.save``-able dict holding everything needed to
  continue from that step (model, optimizer, step), made of tensors, numbers, strings and containers of
  them only: it is loaded back with ``torch.load(weights_only=True)``
  (:func:`workers.trainable.load_checkpoint_state`), which refuses anything else. The reporter decides whether to persist it, so
  passing it is cheap (references, no copies). ``config["checkpoint"]`` is such a dict, loaded back.
- Determinism: given the same config (and seed), a resumed run reports what an uninterrupted run reports,
  so batches are drawn from a generator seeded by (seed, step), never from a stream that a restart resets.
- A reporter may raise :class:`workers.errors.TrialStopped` to end the run early; workloads let it pass.
- Adaptive parameters (an adaptive study's mixture group, issue 17): a workload may pass ``domains``, the
  objective per data domain (e.g. validation loss per mixture component), and the reporter then returns
  the adaptive parameters' new values (``{component: weight}``, or ``None`` for no change), which the
  workload trains on from the next step on. ``config["adapted"]``, when given, holds the values in effect
  at ``start_step`` and overrides ``params`` (a resumed trial continues with the mixture it had); a
  workload also keeps them in ``checkpoint_state["adapted"]`` for a resume without a control plane.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol

from workers.errors import InvalidWorkloadConfigError


class Reporter(Protocol):
    """Receives one measurement. ``checkpoint_state`` is offered, not required to be stored. With ``domains``
    it may return the adaptive parameters' new values (see the module docstring). ``metrics`` are other
    named values (a multi-objective study's other objectives and constrained metrics)."""

    def __call__(self, step: int, value: float, checkpoint_state: dict[str, Any] | None = None, *,
                 domains: Mapping[str, float] | None = None,
                 metrics: Mapping[str, float] | None = None) -> Mapping[str, float] | None: ...


#: A workload: ``fn(config: dict, reporter: Reporter) -> None``.
Workload = Callable[[dict[str, Any], Reporter], None]


@dataclass(frozen=True)
class WorkloadConfig:
    """The typed view of the config dict a workload receives.

    ``params`` are the trial's hyperparameters (mixture components appear as one key each);
    ``size``/``size_params``/``size_extra`` describe the model-size rung (``size_extra`` is the ladder's free
    ``extra`` mapping, e.g. ``{"width": 128}``); ``args`` are the study's fixed workload arguments.
    """

    params: Mapping[str, Any]
    size: str
    size_params: float
    steps: int
    start_step: int = 0
    report_every: int = 10
    seed: int = 0
    size_extra: Mapping[str, Any] = field(default_factory=dict)
    args: Mapping[str, Any] = field(default_factory=dict)
    checkpoint: Mapping[str, Any] | None = None
    #: the adaptive parameters' values in effect at ``start_step`` (an adaptive study's trial), else ``None``
    adapted: Mapping[str, float] | None = None

    @property
    def current_params(self) -> dict[str, Any]:
        """``params`` with the adaptive values in effect at ``start_step`` in place: ``adapted``, else those
        the checkpoint kept, else the trial's own."""
        kept = (self.checkpoint or {}).get("adapted") if self.adapted is None else None
        return {**self.params, **dict(self.adapted or kept or {})}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> "WorkloadConfig":
        try:
            cfg = cls(params=dict(raw.get("params") or {}), size=str(raw["size"]),
                      size_params=float(raw.get("size_params", 1.0)), steps=int(raw["steps"]),
                      start_step=int(raw.get("start_step", 0)), report_every=int(raw.get("report_every", 10)),
                      seed=int(raw.get("seed", 0)), size_extra=dict(raw.get("size_extra") or {}),
                      args=dict(raw.get("args") or {}), checkpoint=raw.get("checkpoint"),
                      adapted=dict(raw["adapted"]) if raw.get("adapted") else None)
        except KeyError as e:
            raise InvalidWorkloadConfigError(f"workload config lacks {e.args[0]!r}", field=e.args[0]) from None
        if cfg.report_every < 1 or cfg.steps < 1 or not 0 <= cfg.start_step <= cfg.steps:
            raise InvalidWorkloadConfigError(
                f"need report_every >= 1 and 0 <= start_step ({cfg.start_step}) <= steps ({cfg.steps})",
                field="steps")
        return cfg

    def to_dict(self) -> dict[str, Any]:
        return {"params": dict(self.params), "size": self.size, "size_params": self.size_params,
                "steps": self.steps, "start_step": self.start_step, "report_every": self.report_every,
                "seed": self.seed, "size_extra": dict(self.size_extra), "args": dict(self.args),
                "checkpoint": self.checkpoint, "adapted": None if self.adapted is None else dict(self.adapted)}

    def report_steps(self) -> list[int]:
        """Steps in ``(start_step, steps]`` to report at: multiples of ``report_every`` and ``steps``."""
        first = (self.start_step // self.report_every + 1) * self.report_every
        out = list(range(first, self.steps + 1, self.report_every))
        if self.steps > self.start_step and (not out or out[-1] != self.steps):
            out.append(self.steps)
        return out

    def width(self, default_depth: int, multiple: int = 1) -> int:
        """The hidden width of this size: ``size_extra["width"]``, else ``args["widths"][size]``, else from
        the parameter count of a transformer-like stack (about ``12 * depth * width^2``)."""
        if "width" in self.size_extra:
            width = int(self.size_extra["width"])
        elif self.size in (self.args.get("widths") or {}):
            width = int(self.args["widths"][self.size])
        else:
            width = int(round(math.sqrt(self.size_params / (12.0 * default_depth))))
        width = max(multiple, int(round(width / multiple)) * multiple)
        return width
