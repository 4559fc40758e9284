"""Playbook rounds: which value of the scientific parameters is best, with the nuisance parameters tuned
for each (the tuning playbook's round of experiments), as one scheduler.

:class:`PlaybookRound` wraps one inner scheduler per *point* of the scientific parameters (any registered
scheduler, the flagship included), each on the study's problem with the scientific parameters fixed to the
point's values, so it tunes the nuisance parameters there with its own multi-scale machinery:

- points: every value of a categorical, ordinal or int scientific parameter; ``design_points`` values of a
  float one, at the centres of equal cells of its (log, where declared) range, so none lies on a border;
  the cartesian product over scientific parameters, in the space's order (at most :data:`MAX_POINTS`).
  A space without scientific parameters is one point (the round is then tuning plus confirmation);
- search: one shared budget. ``seeds`` x points target runs are set aside for the confirmation, and the
  rest, ``search_budget``, goes to the points in equal shares: each new trial or resume goes to the point
  with the least cost committed (spent, plus what its live trials will spend to the end of their
  segments), and is handed out only while it fits the search budget. Every inner scheduler gets the same
  seed, so model-free ones try the same nuisance configs at every point (common random numbers);
- confirmation: once no new search run fits and no search trial is live, the best config of each point
  (its inner scheduler's recommendation) is re-run at the target with seeds 1..``seeds``
  (:meth:`Scheduler.confirm`, ``replicate`` = the seed), round-robin over points; the replicates are never
  paused or stopped; a replicate abandoned before its first report is handed out again. The search run
  that selected a config is not one of its seeds (selecting it made that value optimistic);
- result (:meth:`round_result`): per point, the confirmed values at the target, their mean and sample std
  (the seed spread), and against the point with the best mean a two-sided Welch t-test
  (:data:`RoundTest.WELCH_T`): a difference is *distinguishable* when p < ``alpha``. No correction for
  multiple comparisons is made, and with few seeds the test has little power: "not distinguishable" means
  the seeds cannot tell the values apart, not that they are equal.

Replay: inner schedulers hold no state of their own; they are driven from this scheduler's hooks (a
suggestion, resume, report, completion, failure or abandonment of a trial is applied to the inner
scheduler of its point, found from its scientific values), identically live and during replay, so the
event log of this scheduler alone rebuilds everything. The phase is derived from the trials (a
confirmation has begun once a replicate exists; the round is :attr:`done` when every point has its seeds
and they all ended).
"""

from __future__ import annotations

import enum
import itertools
import json
import math
from dataclasses import dataclass, replace
from typing import Any, Mapping, Sequence

import numpy as np

from schedulers.base import Decision, Recommendation, Scheduler, Suggestion, Trial, TrialState
from schedulers.errors import InvalidProblemError
from schedulers.problem import Problem
from schedulers.space import ParamRole, ParamType, SearchSpace

#: the most points a round may have (the product of the scientific parameters' values)
MAX_POINTS = 16


class RoundPhase(str, enum.Enum):
    SEARCH = "search"            # tuning the nuisance parameters of every point
    CONFIRMING = "confirming"    # re-running each point's best config with other seeds
    DONE = "done"                # every point's seeds ended


class RoundTest(str, enum.Enum):
    WELCH_T = "welch_t"          # two-sided Welch t-test of a point's seeds against the best point's


@dataclass(frozen=True)
class RoundPoint:
    """One value of the scientific parameters: its best config, the search that found it and its seeds."""

    values: dict[str, Any]
    params: dict[str, Any]
    predicted: float | None          # the inner scheduler's prediction at the target (user's direction)
    predicted_std: float | None
    search_trials: int
    search_cost: float               # in target runs
    confirmations: tuple[float, ...]  # values at the target of the ended seeds (finite ones)
    failed: int                      # seeds that failed or diverged
    pending: int                     # seeds issued and not ended
    mean: float | None
    std: float | None                # sample std of the confirmations (the seed spread)
    best: bool = False
    difference: float | None = None  # mean - the best point's mean (user's direction)
    p_value: float | None = None
    distinguishable: bool | None = None  # from the best point at ``alpha``; None: too few seeds (or the best)
    warnings: tuple[str, ...] = ()   # the search-border warnings of its config's nuisance parameters


@dataclass(frozen=True)
class RoundResult:
    scientific: tuple[str, ...]
    phase: RoundPhase
    seeds: int
    alpha: float
    test: RoundTest
    points: tuple[RoundPoint, ...]
    best: int | None                 # index into ``points``
    search_budget: float             # target runs
    warnings: tuple[str, ...] = ()   # the best value at the edge of a numeric scientific parameter's design


def _key(values: Sequence[Any]) -> str:
    return json.dumps(list(values), sort_keys=True, default=repr)


def design(space: SearchSpace, design_points: int = 3) -> list[dict[str, Any]]:
    """The points of a round: the scientific parameters' values (see the module docstring)."""
    axes: list[tuple[str, list[Any]]] = []
    for p in space.searched:
        if p.role is not ParamRole.SCIENTIFIC:
            continue
        if p.condition is not None:
            raise InvalidProblemError(f"scientific parameter {p.name!r} is conditional; a round needs every "
                                      "scientific parameter in every config", field=f"space.{p.name}.condition")
        if p.type in (ParamType.CATEGORICAL, ParamType.ORDINAL):
            values = list(p.choices)
        elif p.type is ParamType.INT:
            values = list(range(int(p.low), int(p.high) + 1))
        elif p.type is ParamType.FLOAT:
            values = list(dict.fromkeys(p._from_unit((i + 0.5) / design_points) for i in range(design_points)))
        else:
            raise InvalidProblemError(f"scientific parameter {p.name!r} is a {p.type.value}; a round takes "
                                      "categorical, ordinal, int or float ones", field=f"space.{p.name}.role")
        axes.append((p.name, values))
    n = math.prod(len(v) for _, v in axes)
    if n > MAX_POINTS:
        raise InvalidProblemError(f"the scientific parameters {[a for a, _ in axes]} make {n} points; a round "
                                  f"takes at most {MAX_POINTS} (declare fewer values, e.g. as an ordinal)",
                                  field="space")
    return [dict(zip([a for a, _ in axes], combo)) for combo in itertools.product(*(v for _, v in axes))]


def _welch_p(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Two-sided Welch t-test p-value of equal means, or ``None`` with fewer than two values on a side."""
    if len(a) < 2 or len(b) < 2:
        return None
    va, vb = float(np.var(a, ddof=1)), float(np.var(b, ddof=1))
    diff = float(np.mean(a)) - float(np.mean(b))
    if va + vb == 0.0:
        return 1.0 if diff == 0.0 else 0.0
    from scipy import stats

    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


class PlaybookRound(Scheduler):
    """A playbook round over an inner scheduler per point of the scientific parameters (module docstring).

    Options: ``inner`` (a registered scheduler name) and ``inner_options`` (its options), ``seeds`` (k >= 1
    re-runs of each point's best config at the target), ``design_points`` (values per float scientific
    parameter), ``alpha`` (the test's level), ``search_budget`` (target runs for the search; default: the
    problem's budget less ``seeds`` x points). A problem with neither a budget nor ``search_budget`` is an
    error: the round would never know when to confirm.
    """

    name = "playbook"

    def __init__(self, problem: Problem, seed: int = 0, *, inner: str = "multiscale_bo",
                 inner_options: Mapping[str, Any] | None = None, seeds: int = 3, design_points: int = 3,
                 alpha: float = 0.05, search_budget: float | None = None, **options: Any) -> None:
        super().__init__(problem, seed, **options)
        from schedulers.registry import make_scheduler, scheduler_names

        if inner not in scheduler_names():
            raise InvalidProblemError(f"a round's inner scheduler must be one of {scheduler_names()}, got "
                                      f"{inner!r}", field="scheduler.name")
        checks = {"seeds": isinstance(seeds, int) and seeds >= 1,
                  "design_points": isinstance(design_points, int) and 1 <= design_points <= MAX_POINTS,
                  "alpha": 0.0 < alpha < 1.0}
        for option, ok in checks.items():
            if not ok:
                raise InvalidProblemError(f"round: invalid value for {option!r}", field=f"round.{option}")
        self.inner_name, self.seeds, self.alpha = inner, seeds, float(alpha)
        self.points = design(problem.space, design_points)
        self.scientific = tuple(self.points[0])
        self._point_of = {_key(p.values()): i for i, p in enumerate(self.points)}
        if search_budget is None:
            if problem.budget is None:
                raise InvalidProblemError("a round needs a cost budget (budget.max_cost): it confirms when the "
                                          "search budget is spent", field="budget.max_cost")
            search_budget = problem.budget - seeds * len(self.points)
            if search_budget <= 0:
                raise InvalidProblemError(
                    f"a round of {len(self.points)} points with {seeds} seeds sets aside {seeds * len(self.points)} "
                    f"target runs for the confirmation; max_cost {problem.budget:g} leaves nothing to search",
                    field="budget.max_cost")
        self.search_budget = float(search_budget)
        share = self.search_budget / len(self.points)
        self.inners: list[Scheduler] = []
        for point in self.points:
            space = SearchSpace([replace(p, role=ParamRole.FIXED, value=point[p.name]) if p.name in point else p
                                 for p in problem.space.params])
            sub = Problem(space=space, ladder=problem.ladder, target=problem.target, cost_model=problem.cost_model,
                          direction=problem.direction, budget=share)
            self.inners.append(make_scheduler(inner, sub, seed=seed, **dict(inner_options or {})))
        #: outer trial id -> (point, inner trial id); replicates map to their point in ``_replicates``
        self._owner: dict[int, tuple[int, int]] = {}
        self._outer: list[dict[int, int]] = [{} for _ in self.points]
        self._replicates: dict[int, int] = {}
        self._recs: dict[int, tuple[int, Recommendation]] = {}

    # ---------------------------------------------------------------- points and budget
    def point_of(self, params: Mapping[str, Any]) -> int | None:
        """The point a config belongs to (by its scientific values), or ``None``."""
        return self._point_of.get(_key([params.get(name) for name in self.scientific]))

    def _remaining_cost(self, t: Trial) -> float:
        """What a live trial will still spend to the end of its segment (raw cost units)."""
        cm, size = self.problem.cost_model, self._size(t.size)
        return cm.segment_cost(t.segment_start, t.steps, size) - cm.segment_cost(t.segment_start, t.last_step, size)

    def _committed(self, i: int) -> float:
        inner = self.inners[i]
        return inner.cost_spent + sum(self._remaining_cost(t) for t in inner.live_trials())

    def _search_left(self) -> float:
        """Search budget not yet committed, in raw cost units."""
        return self.search_budget * self.problem.target_cost - sum(self._committed(i) for i in range(len(self.points)))

    def _by_commitment(self) -> list[int]:
        return sorted(range(len(self.points)), key=lambda i: (self._committed(i), i))

    @property
    def confirming(self) -> bool:
        return bool(self._replicates)

    def _seeds_of(self, i: int) -> list[Trial]:
        """Point ``i``'s confirmation trials that count (not abandoned before their first report)."""
        return [self.trials[tid] for tid, p in self._replicates.items() if p == i
                and not (self.trials[tid].state is TrialState.STOPPED and not self.trials[tid].curve)]

    @staticmethod
    def _ended(t: Trial) -> bool:
        """A seed ended: final, or it reported its last step (the service may end the study at that report,
        when the round spent ``budget.max_cost`` exactly, before the worker's complete reaches us)."""
        return t.state.is_final or (bool(t.curve) and t.last_step >= t.steps)

    @property
    def done(self) -> bool:
        return self.confirming and all(
            len(seeds) >= self.seeds and all(map(self._ended, seeds))
            for seeds in map(self._seeds_of, range(len(self.points))))

    def _inner_rec(self, i: int) -> Recommendation:
        inner = self.inners[i]
        cached = self._recs.get(i)
        if cached is None or cached[0] != len(inner.events):
            cached = self._recs[i] = (len(inner.events), inner.recommend())
        return cached[1]

    def _confirmed_config(self, i: int) -> dict[str, Any]:
        issued = [self.trials[tid] for tid, p in sorted(self._replicates.items()) if p == i]
        return dict(issued[0].params) if issued else dict(self._inner_rec(i).params)

    # ---------------------------------------------------------------- ask
    def suggest(self, n: int = 1) -> list[Suggestion]:
        out: list[Suggestion] = []
        while len(out) < n:
            got = super().suggest(1) or [s for s in [self._next_confirmation()] if s is not None]
            if not got:
                break
            out += got
        return out

    def _propose(self, n: int) -> Sequence[tuple[dict[str, Any], str, int]]:
        """One search trial, from the point with the least cost committed whose inner scheduler has one,
        while it fits the search budget."""
        if self.confirming or n < 1:
            return []
        left = self._search_left()
        for i in self._by_commitment():
            got = self.inners[i]._propose(1)[:1]
            if not got:
                continue
            params, size, steps = got[0]
            steps = max(self.ladder.min_steps, min(int(steps), self.ladder.max_steps))
            if self.problem.cost_model.cost(steps, self._size(size)) > left + 1e-12:
                return []
            return [(dict(params), size, steps)]
        return []

    def _next_confirmation(self) -> Suggestion | None:
        if not self.confirming and any(t.replicate == 0 for t in self.live_trials()):
            return None  # the search is still running: its configs may still change
        for seed in range(1, self.seeds + 1):
            for i in range(len(self.points)):
                if not any(t.replicate == seed for t in self._seeds_of(i)):
                    return self.confirm(1, params=self._confirmed_config(i), first=seed)[0]
        return None

    def _choose_resume(self) -> tuple[int, int] | None:
        for t in self.trials.values():
            if t.replicate and t.state is TrialState.PAUSED:  # an abandoned seed continues to the target
                return t.trial_id, self.problem.target.steps
        if self.confirming:
            return None
        left = self._search_left()
        cm = self.problem.cost_model
        for i in self._by_commitment():
            choice = self.inners[i]._choose_resume()
            if choice is None:
                continue
            inner_id, steps = choice
            t = self.trials[self._outer[i][inner_id]]
            steps = max(min(int(steps), self.ladder.max_steps), t.last_step)
            if cm.segment_cost(t.last_step, steps, self._size(t.size)) <= left + 1e-12:
                return t.trial_id, steps
        return None

    # ---------------------------------------------------------------- hooks: drive the inner schedulers
    def _on_suggest(self, trial: Trial) -> None:
        i = self.point_of(trial.params)
        if i is None:
            return  # not a config of any point (e.g. a confirmation of an untuned default): the round ignores it
        if trial.replicate:
            self._replicates[trial.trial_id] = i
            return
        inner = self.inners[i]
        s = inner._apply_suggest(len(inner.trials), dict(trial.params), trial.size, trial.steps, 0)
        self._owner[trial.trial_id] = (i, s.trial_id)
        self._outer[i][s.trial_id] = trial.trial_id

    def _on_resume(self, trial: Trial) -> None:
        if trial.trial_id in self._owner:
            i, inner_id = self._owner[trial.trial_id]
            self.inners[i]._apply_resume(inner_id, trial.steps)

    def _on_report(self, trial: Trial, step: int, y: float) -> Decision:
        if trial.trial_id not in self._owner:
            return Decision.CONTINUE  # confirmation seeds run to the target
        i, inner_id = self._owner[trial.trial_id]
        return self.inners[i].report(inner_id, step, self._y(y))

    def _inner_trial(self, t: Trial) -> tuple[Scheduler, Trial] | None:
        if t.trial_id not in self._owner:
            return None
        i, inner_id = self._owner[t.trial_id]
        return self.inners[i], self.inners[i].trials[inner_id]

    def _apply_complete(self, t: Trial) -> None:
        super()._apply_complete(t)
        if (found := self._inner_trial(t)) is not None:
            found[0].complete(found[1].trial_id)

    def _apply_fail(self, t: Trial, reason: str) -> None:
        super()._apply_fail(t, reason)
        if (found := self._inner_trial(t)) is None or found[1].state.is_final:
            return
        inner, it = found
        if t.curve and not math.isfinite(t.curve[-1][1]) and it.last_step < t.last_step:
            inner.report(it.trial_id, t.last_step, t.curve[-1][1])   # a divergence: the inner keeps it as evidence
        else:
            inner.fail(it.trial_id, reason)

    def _apply_abandon(self, t: Trial) -> None:
        super()._apply_abandon(t)
        if (found := self._inner_trial(t)) is not None:
            found[0].abandon(found[1].trial_id)

    def _extra_state(self) -> Any:
        return {"owner": sorted(self._owner.items()), "replicates": sorted(self._replicates.items()),
                "inners": [inner.snapshot() for inner in self.inners]}

    # ---------------------------------------------------------------- results
    def _point_results(self) -> list[RoundPoint]:
        target, out = self.problem.target, []
        for i, values in enumerate(self.points):
            rec, inner = self._inner_rec(i), self.inners[i]
            seeds = self._seeds_of(i)
            ended = [t for t in seeds if self._ended(t)]
            good = [t.last_value for t in ended if t.state is not TrialState.FAILED and t.last_value is not None
                    and math.isfinite(t.last_value) and t.last_step >= target.steps]
            params = self._confirmed_config(i)
            out.append(RoundPoint(
                values=dict(values), params=params, predicted=rec.predicted, predicted_std=rec.std,
                search_trials=len(inner.trials), search_cost=inner.cost_spent / self.problem.target_cost,
                confirmations=tuple(good), failed=len(ended) - len(good), pending=len(seeds) - len(ended),
                mean=float(np.mean(good)) if good else None,
                std=float(np.std(good, ddof=1)) if len(good) >= 2 else None,
                warnings=tuple(inner.space.border_warnings(params))))
        return out

    def _best_point(self, points: Sequence[RoundPoint]) -> int | None:
        """The point with the best confirmed mean; before any seed ended, the best predicted one."""
        for attr in ("mean", "predicted"):
            ranked = [(self._y(getattr(p, attr)), i) for i, p in enumerate(points) if getattr(p, attr) is not None]
            if ranked:
                return min(ranked)[1]
        return None

    def round_result(self) -> RoundResult:
        """The round's answer so far (see the module docstring); only reads."""
        points = self._point_results()
        best = self._best_point(points)
        phase = RoundPhase.DONE if self.done else RoundPhase.CONFIRMING if self.confirming else RoundPhase.SEARCH
        warnings: list[str] = []
        if best is not None:
            ref = points[best]
            for j, p in enumerate(points):
                if j == best:
                    points[j] = replace(p, best=True)
                elif p.mean is not None and ref.mean is not None:
                    pv = _welch_p(p.confirmations, ref.confirmations)
                    points[j] = replace(p, difference=p.mean - ref.mean, p_value=pv,
                                        distinguishable=None if pv is None else pv < self.alpha)
            for name in self.scientific:
                param = next(q for q in self.space.params if q.name == name)
                studied = sorted({v[name] for v in self.points})
                if param.type in (ParamType.FLOAT, ParamType.INT) and len(studied) > 1 \
                        and ref.values[name] in (studied[0], studied[-1]):
                    side = "lowest" if ref.values[name] == studied[0] else "highest"
                    warnings.append(f"scientific parameter {name}: the best value {ref.values[name]:.6g} is the "
                                    f"{side} one studied; the optimum may lie beyond it, consider extending the range")
        return RoundResult(self.scientific, phase, self.seeds, self.alpha, RoundTest.WELCH_T, tuple(points), best,
                           self.search_budget, tuple(warnings))

    def recommend(self) -> Recommendation:
        """The best point's config: with its seeds' mean and spread once any ended, else its inner
        scheduler's prediction; before any point has a prediction, the base rule over every trial."""
        points = self._point_results()
        best = self._best_point(points)
        if best is None:
            return super().recommend()
        target, p = self.problem.target, points[best]
        if p.mean is not None:
            trial_id = min(tid for tid, i in self._replicates.items() if i == best)
            return Recommendation(dict(p.params), p.mean, p.std, target.size, target.steps, trial_id,
                                  tuple(self.space.border_warnings(p.params)))
        rec = self._inner_rec(best)
        trial_id = None if rec.trial_id is None else self._outer[best].get(rec.trial_id)
        return Recommendation(dict(rec.params), rec.predicted, rec.std, target.size, target.steps, trial_id,
                              tuple(self.space.border_warnings(rec.params)))
