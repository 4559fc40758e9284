"""``steplaw:strict`` (bench/problems/steplaw.py): only measured runs, each report a fresh run; the default
``steplaw`` unchanged."""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import Any, Sequence

import pytest

from bench.harness import SimulatedCluster
from bench.problems import ProblemError, data_root, make_problem
from bench.problems.steplaw import FreshRunCost, Mode, StepLaw
from schedulers.base import Decision, Scheduler, Trial, TrialState
from schedulers.cost import AnalyticCost

pytestmark = pytest.mark.skipif(not (data_root() / "steplaw" / "dense_lr_bs_loss.csv").is_file(),
                                reason="benchmark data missing (set SCALELADDER_BENCHDATA)")


@pytest.fixture(scope="module")
def strict() -> StepLaw:
    return make_problem("steplaw:strict")


@pytest.fixture(scope="module")
def filled() -> StepLaw:
    return make_problem("steplaw")


def _params(sl: StepLaw, point: tuple[int, int]) -> dict[str, Any]:
    return {"lr": sl.lrs[point[0]], "bs": sl.bss[point[1]]}


def _measured_point(sl: StepLaw, cells: Sequence[tuple[float, int]]) -> tuple[int, int]:
    """A point every cell in ``cells`` measured."""
    common = set.intersection(*(set(sl.measured[c]) for c in cells))
    return min(common)


def _unmeasured_point(sl: StepLaw, cell: tuple[float, int]) -> tuple[int, int]:
    return next((i, j) for i in range(len(sl.lrs)) for j in range(len(sl.bss)) if (i, j) not in sl.measured[cell])


class Script(Scheduler):
    """Runs the given (params, size, steps) trials one after another; PAUSEs each at ``pause_at`` once and
    resumes it to its steps; recommends ``recommendation`` when given."""

    name = "script"

    def __init__(self, problem, seed=0, runs=(), pause_at=None, recommendation=None):
        super().__init__(problem, seed)
        self.runs, self.pause_at, self.recommendation = list(runs), pause_at, recommendation
        self.resumed: set[int] = set()

    def _propose(self, n: int):
        return [self.runs[len(self.trials)]] if len(self.trials) < len(self.runs) else []

    def _on_report(self, trial: Trial, step: int, y: float) -> Decision:
        if step == self.pause_at and trial.trial_id not in self.resumed:
            return Decision.PAUSE
        return Decision.CONTINUE

    def _choose_resume(self):
        for t in self.trials.values():
            if t.state is TrialState.PAUSED and t.trial_id not in self.resumed:
                return t.trial_id, self.runs[t.trial_id - min(self.trials)][2]
        return None

    def _on_resume(self, trial: Trial) -> None:
        self.resumed.add(trial.trial_id)

    def recommend(self):
        rec = super().recommend()
        if self.recommendation is not None:
            rec = dataclasses.replace(rec, params=dict(self.recommendation))
        return rec


def _run(sl: StepLaw, budget: float = 50.0, **kwargs):
    sched = Script(copy.deepcopy(sl.problem), **kwargs)
    result = SimulatedCluster(sl, sched, workers=1, budget=budget, seed=0).run()
    assert result.error is None, result.error
    return sched, result


def test_strict_mode_is_a_problem_spec_and_a_bad_mode_is_an_error(strict, filled) -> None:
    assert strict.mode is Mode.STRICT and strict.name == "steplaw:strict"
    assert filled.mode is Mode.FILLED and filled.name == "steplaw"
    assert isinstance(strict.problem.cost_model, FreshRunCost)
    # still the analytic 6 N D cost with D in tokens, which the lr/bs law baselines read
    assert strict.problem.cost_model.tokens_per_step == filled.problem.cost_model.tokens_per_step == 1e8
    assert strict.best_target_value == filled.best_target_value
    with pytest.raises(ProblemError, match="steplaw mode"):
        make_problem("steplaw:lenient")


def test_strict_cost_charges_each_report_as_a_fresh_run_and_its_pieces_add_up(strict) -> None:
    cm, size = strict.problem.cost_model, strict.problem.ladder.size("N215M")
    cells = strict.report_steps("N215M")  # [40, 114, 200, 1000]
    assert cells == [40, 114, 200, 1000]
    # a continuation past a cell is a fresh run: the whole run's cost, not the increment
    assert cm.segment_cost(40, 114, size) == pytest.approx(cm.cost(114, size))
    assert cm.segment_cost(0, 40, size) == pytest.approx(cm.cost(40, size))
    # a segment through several cells pays each cell's run, and its pieces add up to it
    seg = cm.segment_cost(0, 200, size)
    assert seg == pytest.approx(sum(cm.cost(c, size) for c in (40, 114, 200)))
    pieces = [cm.piece_cost(0, a, b, size) for a, b in zip([0, 40, 114], [40, 114, 200])]
    assert pieces == pytest.approx([cm.cost(c, size) for c in (40, 114, 200)])
    assert sum(pieces) == pytest.approx(seg)
    assert cm.segment_cost(200, 200, size) == 0.0


def test_strict_harness_bills_a_resumed_trial_the_whole_run(strict, filled) -> None:
    n = strict.sizes[0]
    point = _measured_point(strict, [(n, 40), (n, 114)])
    runs = [(_params(strict, point), "N215M", 114)]
    unit = strict.problem.target_cost
    cost = AnalyticCost(tokens_per_step=1e8)
    size = strict.problem.ladder.size("N215M")
    sched, r = _run(strict, runs=runs, pause_at=40)
    assert r.exhausted and r.n_segments == 2
    t = next(iter(sched.trials.values()))
    assert [s for s, _ in t.curve] == [40, 114]
    assert t.curve[1][1] == pytest.approx(strict.measured[(n, 114)][point][0])
    # the bill: a run to 40, then a fresh run to 114 (strict) vs the increment (default)
    assert r.spent == pytest.approx((cost.cost(40, size) + cost.cost(114, size)) / unit)
    assert sched.cost_spent == pytest.approx(r.spent * unit)  # the scheduler's own accounting agrees
    _, r_filled = _run(filled, runs=runs, pause_at=40)
    assert r_filled.spent == pytest.approx(cost.cost(114, size) / unit)


def test_strict_unmeasured_point_or_step_is_a_failed_run(strict) -> None:
    n, target = strict.sizes[0], (strict.target_n, strict.target_step)
    missing = _unmeasured_point(strict, (n, 40))
    assert math.isnan(strict.evaluate(_params(strict, missing), "N215M", 40, seed=0))
    measured = _measured_point(strict, [(n, 40)])
    assert strict.evaluate(_params(strict, measured), "N215M", 40, seed=0) == strict.measured[(n, 40)][measured][0]
    assert math.isnan(strict.evaluate(_params(strict, measured), "N215M", 57, seed=0))   # no cell at step 57
    assert math.isnan(strict.evaluate(_params(strict, measured), "N215M", 569, seed=0))  # nor at 569 for N215M
    # through the harness: the trial fails (a divergence), the run goes on
    sched, r = _run(strict, runs=[(_params(strict, missing), "N215M", 40),
                                  (_params(strict, measured), "N215M", 40)])
    states = [t.state for t in sched.trials.values()]
    assert states == [TrialState.FAILED, TrialState.COMPLETED] and r.n_failed_trials == 1
    # the target value is the measured smooth loss, NaN at a point the target cell did not measure
    good = _measured_point(strict, [target])
    assert strict.target_value(_params(strict, good)) == strict.measured[target][good][1]
    bad = _params(strict, _unmeasured_point(strict, target))
    assert math.isnan(strict.target_value(bad)) and strict.regret(strict.target_value(bad)) == math.inf


def test_strict_recommendation_at_an_unmeasured_target_point_is_infinite_regret(strict) -> None:
    n = strict.sizes[0]
    point = _measured_point(strict, [(n, 40)])
    bad = _params(strict, _unmeasured_point(strict, (strict.target_n, strict.target_step)))
    _, r = _run(strict, runs=[(_params(strict, point), "N215M", 40)], recommendation=bad)
    assert r.final_regret == math.inf and all(math.isinf(x) for x in r.regret)


def test_default_mode_is_unchanged(filled) -> None:
    cm, size = filled.problem.cost_model, filled.problem.ladder.size("N215M")
    assert type(cm) is AnalyticCost  # not FreshRunCost
    assert cm.segment_cost(40, 114, size) == pytest.approx(cm.cost(114, size) - cm.cost(40, size))
    n = filled.sizes[0]
    missing = _unmeasured_point(filled, (n, 40))
    value = filled.evaluate(_params(filled, missing), "N215M", 40, seed=0)
    assert math.isfinite(value) and value in {v[0] for v in filled.measured[(n, 40)].values()}  # nearest run
    point = _measured_point(filled, [(n, 40), (n, 114)])
    lo, hi = (filled.measured[(n, s)][point][0] for s in (40, 114))
    mid = filled.evaluate(_params(filled, point), "N215M", 57, seed=0)
    w = (math.log(57) - math.log(40)) / (math.log(114) - math.log(40))
    assert mid == pytest.approx(lo + w * (hi - lo))
