"""In-trial adaptation: the policy interface that changes a trial's adaptive parameters while it trains.

A trial scheduler (:mod:`schedulers.base`) decides *which* trials run and for how long; an adaptation
policy decides, inside one running trial, how the trial's **mixture group** (a ``mixture`` parameter of the
space: non-negative weights over domains that sum to 1) changes from report to report, from the per-domain
losses the trial reports. Life of a trial, as every caller (the service, the benchmark) drives it::

    policy = make_policy(PolicyKind.EXP3, ["code", "math", "prose"], seed=0)
    w = policy.start(trial_id, initial={"code": .2, "math": .3, "prose": .5}, hyper={"lr": 2.0})
    for each report:                                  # the trial trains on batches drawn from w
        w = policy.observe(trial_id, step, {"code": 1.1, "math": 1.9, "prose": 3.2})

Contracts every policy keeps (``tests/schedulers/adaptive/test_policy_contract.py`` checks them all):

- A mixture is a ``dict`` over exactly the policy's components, every weight >= 0 and summing to 1.
- :meth:`AdaptationPolicy.start` returns the initial mixture (``initial`` normalised; uniform when not
  given) and :meth:`AdaptationPolicy.observe` the mixture in effect from that step on.
- Losses are per-domain values where lower is better, over exactly the policy's components. A non-finite
  loss is not evidence: an observation with one leaves the mixture as it was (it is still recorded), and
  policies ignore it in later updates.
- Steps increase within a trial. A repeated (trial, step) (a retried or re-sent report, e.g. a trial
  restarted from an earlier checkpoint) is not recorded and answers the mixture sent at that step then,
  so a re-run reproduces the mixtures of the first run.
- State is a pure function of the event history: :meth:`AdaptationPolicy.replay` on a fresh instance
  built with the same components, seed and options reproduces :meth:`AdaptationPolicy.snapshot` and every
  mixture a trial was sent (:meth:`AdaptationPolicy.sent`). Randomness comes only from
  :meth:`AdaptationPolicy._rng`, seeded by (seed, trial id, number of observations).
- Trials are independent: a trial's mixtures depend only on its own events, so the service may replay
  one trial's events alone.
- Subclasses implement :meth:`AdaptationPolicy._weights`, the mixture after the first ``n`` observations as
  a pure function of the trial's initial mixture, hyperparameters and those observations. The base class
  computes it lazily and memoises it, so replaying a long history costs nothing until a mixture is asked
  for.
"""

from __future__ import annotations

import abc
import enum
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from schedulers.adaptive.errors import AdaptationReplayError, InvalidAdaptationError, UnknownAdaptiveTrialError

#: a mixture as callers see it: component -> weight
Mixture = dict[str, float]


class PolicyKind(str, enum.Enum):
    """The adaptation policies (``api.schemas.AdaptivePolicyKind`` mirrors these values)."""

    EXP3 = "exp3"                      # Online Data Mixing (Albalak et al. 2024): EXP3 bandit, reward = loss
    LEARNABLE_LOSS = "learnable_loss"  # remaining learnable loss from per-domain scaling-law fits


class AdaptEventKind(str, enum.Enum):
    START = "start"
    OBSERVE = "observe"


@dataclass
class AdaptiveTrial:
    """The policy's view of one trial: its initial weights (in component order), hyperparameters, and the
    observations ``(step, losses)`` with losses an array in component order (NaN where not finite)."""

    trial_id: int
    initial: np.ndarray
    hyper: dict[str, float]
    observations: list[tuple[int, np.ndarray]] = field(default_factory=list)
    #: memo: n -> weights after the first n observations
    _weights: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def last_step(self) -> int:
        return self.observations[-1][0] if self.observations else 0


class AdaptationPolicy(abc.ABC):
    """Base class of every adaptation policy. See the module docstring for the contract.

    ``hyperparameters`` (class attribute) names the per-trial hyperparameters with their defaults; the
    constructor's ``options`` override the defaults for every trial, and :meth:`start`'s ``hyper``
    overrides them for one trial (that is how a study tunes them).
    """

    kind: PolicyKind
    #: per-trial hyperparameter -> default
    hyperparameters: Mapping[str, float] = {}
    #: hyperparameter -> (low, high) it must lie in (inclusive)
    bounds: Mapping[str, tuple[float, float]] = {}

    def __init__(self, components: Sequence[str], seed: int = 0, **options: Any) -> None:
        components = tuple(str(c) for c in components)
        if len(components) < 2 or len(set(components)) != len(components):
            raise InvalidAdaptationError(f"an adaptive mixture needs two or more distinct components, got "
                                         f"{list(components)}", field="adaptive.group")
        self.components = components
        self.seed = int(seed)
        self.defaults = self._check_hyper(options, "adaptive.options")
        self.trials: dict[int, AdaptiveTrial] = {}
        self.events: list[dict[str, Any]] = []

    @property
    def k(self) -> int:
        return len(self.components)

    # ---------------------------------------------------------------- checks
    def _check_hyper(self, raw: Mapping[str, Any], where: str) -> dict[str, float]:
        unknown = sorted(set(raw) - set(self.hyperparameters))
        if unknown:
            raise InvalidAdaptationError(f"policy {self.kind.value!r} has no hyperparameters {unknown}; it has "
                                         f"{sorted(self.hyperparameters)}", field=where)
        out = dict(getattr(self, "defaults", self.hyperparameters))
        for name, value in raw.items():
            try:
                v = float(value)
            except (TypeError, ValueError):
                raise InvalidAdaptationError(f"{name} must be a number, got {value!r}",
                                             field=f"{where}.{name}") from None
            lo, hi = self.bounds.get(name, (-math.inf, math.inf))
            if not (math.isfinite(v) and lo <= v <= hi):
                raise InvalidAdaptationError(f"{name}={value!r} must be finite and in [{lo}, {hi}]",
                                             field=f"{where}.{name}")
            out[name] = v
        return out

    def _vector(self, values: Mapping[str, Any], where: str, *, finite_only: bool) -> np.ndarray:
        missing = [c for c in self.components if c not in values]
        extra = sorted(set(values) - set(self.components))
        if missing or extra:
            raise InvalidAdaptationError(f"expected exactly the components {list(self.components)}"
                                         + (f"; missing {missing}" if missing else "")
                                         + (f"; unknown {extra}" if extra else ""), field=where)
        try:
            v = np.array([float(values[c]) for c in self.components])
        except (TypeError, ValueError):
            raise InvalidAdaptationError(f"{where} values must be numbers", field=where) from None
        if finite_only and not np.isfinite(v).all():
            raise InvalidAdaptationError(f"{where} values must be finite", field=where)
        return v

    def trial(self, trial_id: int) -> AdaptiveTrial:
        try:
            return self.trials[int(trial_id)]
        except KeyError:
            raise UnknownAdaptiveTrialError(f"the adaptation policy was not started for trial {trial_id}",
                                            field="trial_id") from None

    def _as_mixture(self, w: np.ndarray) -> Mixture:
        return {c: float(x) for c, x in zip(self.components, w)}

    # ---------------------------------------------------------------- the calls
    def start(self, trial_id: int, initial: Mapping[str, float] | None = None,
              hyper: Mapping[str, float] | None = None) -> Mixture:
        """Register a trial with its initial mixture (normalised; uniform if ``None``) and hyperparameters;
        returns the initial mixture. Starting a trial already started answers its current mixture."""
        trial_id = int(trial_id)
        if trial_id in self.trials:
            return self.mixture(trial_id)
        if initial is None:
            w0 = np.full(self.k, 1.0 / self.k)
        else:
            w0 = self._vector(initial, "adaptive.initial", finite_only=True)
            if (w0 < 0).any() or w0.sum() <= 0:
                raise InvalidAdaptationError("an initial mixture must be non-negative with a positive sum",
                                             field="adaptive.initial")
            w0 = w0 / w0.sum()
        h = self._check_hyper(dict(hyper or {}), "adaptive.tuned")
        self.events.append({"kind": AdaptEventKind.START.value, "trial_id": trial_id,
                            "initial": self._as_mixture(w0), "hyper": {k: h[k] for k in sorted(h)}})
        self.trials[trial_id] = AdaptiveTrial(trial_id, w0, h)
        return self._as_mixture(w0)

    def observe(self, trial_id: int, step: int, losses: Mapping[str, float]) -> Mixture:
        """Record per-domain ``losses`` at ``step`` and answer the mixture to train on from now on."""
        t = self.trial(trial_id)
        step = int(step)
        if t.observations and step <= t.last_step:
            return self.mixture(t.trial_id, step)  # a retried or re-sent report: what it was answered then
        self._record_observation(t, step, losses)
        return self.mixture(t.trial_id)

    def mixture(self, trial_id: int, step: int | None = None) -> Mixture:
        """The mixture in effect after the trial's report at the largest observed step <= ``step`` (its
        initial mixture before any; the latest when ``step`` is ``None``)."""
        t = self.trial(trial_id)
        n = len(t.observations) if step is None else sum(1 for s, _ in t.observations if s <= step)
        return self._as_mixture(self._memo(t, n))

    def sent(self, trial_id: int) -> list[tuple[int, Mixture]]:
        """Every mixture the trial was sent: ``(0, initial)`` and ``(step, mixture)`` per observation."""
        t = self.trial(trial_id)
        steps = [0] + [s for s, _ in t.observations]
        return [(s, self._as_mixture(self._memo(t, n))) for n, s in enumerate(steps)]

    # ---------------------------------------------------------------- persistence
    def snapshot(self) -> dict[str, Any]:
        """A comparable picture of the state (replay must reproduce it exactly)."""
        return {"trials": {i: (t.initial.tolist(), dict(t.hyper), [(s, v.tolist()) for s, v in t.observations])
                           for i, t in self.trials.items()},
                "n_events": len(self.events)}

    def replay(self, events: Iterable[Mapping[str, Any]]) -> "AdaptationPolicy":
        """Rebuild state from an event history (as recorded in :attr:`events`). Returns ``self``. Nothing is
        computed until a mixture is asked for."""
        if self.trials or self.events:
            raise AdaptationReplayError("replay needs a fresh adaptation policy")
        for ev in events:
            kind = AdaptEventKind(ev["kind"])
            if kind is AdaptEventKind.START:
                self.start(int(ev["trial_id"]), dict(ev["initial"]), dict(ev.get("hyper") or {}))
            else:
                t = self.trial(int(ev["trial_id"]))
                if not t.observations or int(ev["step"]) > t.last_step:
                    self._record_observation(t, int(ev["step"]), ev["losses"])
        return self

    def _record_observation(self, t: AdaptiveTrial, step: int, losses: Mapping[str, Any]) -> None:
        v = self._vector(losses, "domains", finite_only=False)  # float() also reads "nan" of a stored event
        self.events.append({"kind": AdaptEventKind.OBSERVE.value, "trial_id": t.trial_id, "step": step,
                            "losses": {c: float(x) for c, x in zip(self.components, v)}})
        t.observations.append((step, np.where(np.isfinite(v), v, np.nan)))

    # ---------------------------------------------------------------- extension points
    def _rng(self, trial: AdaptiveTrial, n: int, *tag: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, trial.trial_id, n, *tag])

    def _memo(self, t: AdaptiveTrial, n: int) -> np.ndarray:
        if n not in t._weights:
            if n == 0:
                w = t.initial
            elif not np.isfinite(t.observations[n - 1][1]).all():
                w = self._memo(t, n - 1)  # no evidence: the mixture stays
            else:
                w = np.asarray(self._weights(t, n), dtype=float)
                if w.shape != (self.k,) or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
                    raise AssertionError(f"{type(self).__name__}._weights returned {w!r}")
                w = w / w.sum()
            t._weights[n] = w
        return t._weights[n]

    @abc.abstractmethod
    def _weights(self, trial: AdaptiveTrial, n: int) -> np.ndarray:
        """The weights (component order, >= 0) after the first ``n`` >= 1 observations of ``trial``: a pure
        function of ``trial.initial``, ``trial.hyper`` and ``trial.observations[:n]`` (NaN marks a non-finite
        loss). :meth:`_memo` gives earlier ones (``self._memo(trial, n - 1)``)."""


def floor_weights(w: np.ndarray, floor: float) -> np.ndarray:
    """``w`` normalised and mixed with the uniform mixture so that every weight is at least ``floor``."""
    w = np.clip(np.asarray(w, dtype=float), 0.0, None)
    w = w / w.sum() if w.sum() > 0 else np.full(w.size, 1.0 / w.size)
    floor = min(max(floor, 0.0), 1.0 / w.size)
    return (1.0 - w.size * floor) * w + floor
