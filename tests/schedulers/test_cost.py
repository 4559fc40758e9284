"""schedulers.cost: analytic, table, formula and learned cost models, and their wire shapes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from schedulers import AnalyticCost, FormulaCost, InvalidProblemError, LearnedCost, TableCost, make_cost_model
from schedulers.problem import ModelSize

SMALL, LARGE = ModelSize("small", 1e6), ModelSize("large", 8e6)


def test_analytic_cost_is_six_n_d_plus_overhead_and_segments_pay_only_new_steps():
    cm = AnalyticCost(tokens_per_step=2048, overhead=5.0)
    assert cm.cost(100, SMALL) == pytest.approx(6 * 1e6 * 2048 * 100 + 5.0)
    assert cm.cost(100, LARGE) > cm.cost(100, SMALL) > cm.cost(10, SMALL)
    # continuing from a checkpoint: the new steps plus the start-up overhead again
    assert cm.segment_cost(50, 100, SMALL) == pytest.approx(6 * 1e6 * 2048 * 50 + 5.0)
    assert cm.segment_cost(0, 100, SMALL) == cm.cost(100, SMALL)
    assert cm.segment_cost(100, 100, SMALL) == 0.0
    assert cm.resources(ModelSize("gpu", 1e9, cpus=4, gpus=2)) == {"cpu": 4, "gpu": 2}
    with pytest.raises(InvalidProblemError):
        AnalyticCost(tokens_per_step=0)


@pytest.mark.parametrize("start", [0, 50])
def test_the_pieces_of_a_segment_add_up_to_its_cost_and_the_overhead_is_paid_once(start):
    cm = AnalyticCost(tokens_per_step=2048, overhead=5.0)
    reports = [start, start + 10, start + 30, start + 60]
    pieces = [cm.piece_cost(start, a, b, SMALL) for a, b in zip(reports, reports[1:])]
    assert sum(pieces) == pytest.approx(cm.segment_cost(start, reports[-1], SMALL))
    # only the first piece carries the (re)start overhead
    assert pieces[1] == pytest.approx(6 * 1e6 * 2048 * 20)
    assert pieces[0] == pytest.approx(6 * 1e6 * 2048 * 10 + 5.0)


def test_table_cost_needs_an_entry_per_size():
    cm = TableCost({"small": 0.5, "large": 4.0}, overhead=1.0)
    assert cm.cost(10, LARGE) == pytest.approx(41.0)
    with pytest.raises(InvalidProblemError) as e:
        cm.cost(10, ModelSize("huge", 1e9))
    assert e.value.field == "cost.table"
    with pytest.raises(InvalidProblemError):
        TableCost({"small": -1.0})


def test_formula_cost_evaluates_without_eval():
    cm = FormulaCost("6 * params * steps * 2048 + max(1, sqrt(steps))")
    assert cm.cost(100, SMALL) == pytest.approx(6 * 1e6 * 100 * 2048 + 10.0)


@pytest.mark.parametrize("formula", ["6 * params * tokens", "flops(steps)", "steps * n_layers"])
def test_formula_cost_rejects_unknown_names(formula):
    with pytest.raises(InvalidProblemError) as e:
        FormulaCost(formula)
    assert e.value.field == "cost.formula"


@pytest.mark.parametrize("formula", ["__import__('os').system('true')", "params.real", "steps if 1 else 2",
                                     "steps *", "[steps]"])
def test_formula_cost_rejects_anything_but_arithmetic(formula):
    with pytest.raises(InvalidProblemError) as e:
        FormulaCost(formula)
    assert e.value.field == "cost.formula"


def test_formula_cost_must_be_positive_where_it_is_used():
    cm = FormulaCost("steps - 50")
    assert cm.cost(60, SMALL) == pytest.approx(10.0)
    with pytest.raises(InvalidProblemError):
        cm.cost(10, SMALL)


def test_learned_cost_recovers_a_power_law_and_reports_its_error():
    prior = AnalyticCost()
    cm = LearnedCost(prior=prior, min_points=4)
    assert cm.prediction_error is None and cm.cost(10, SMALL) == prior.cost(10, SMALL)

    def truth(steps, size):                              # c = 3e-4 * steps^0.9 * params^0.7
        return 3e-4 * steps ** 0.9 * size.params ** 0.7

    sizes = [ModelSize(f"m{i}", p) for i, p in enumerate([1e5, 1e6, 1e7])]
    rng = np.random.default_rng(0)
    for steps in [10, 30, 100, 300]:
        for size in sizes:
            cm.observe(steps, size, truth(steps, size) * math.exp(0.02 * rng.standard_normal()))
    unseen = ModelSize("big", 1e8)                       # extrapolates to a larger model and longer run
    assert cm.cost(1000, unseen) == pytest.approx(truth(1000, unseen), rel=0.1)
    assert 0.005 < cm.prediction_error < 0.05            # about the 2% noise put in


def test_learned_cost_exact_data_has_no_error_and_bad_measurements_are_ignored():
    cm = LearnedCost(min_points=4)
    for steps, size in [(10, SMALL), (20, SMALL), (10, LARGE), (40, LARGE)]:
        cm.observe(steps, size, 2.0 * steps * size.params)
    cm.observe(10, SMALL, float("nan"))
    cm.observe(10, SMALL, -1.0)
    cm.observe(0, SMALL, 3.0)
    assert cm.prediction_error == pytest.approx(0.0, abs=1e-9)
    assert cm.cost(80, LARGE) == pytest.approx(2.0 * 80 * 8e6, rel=1e-9)


def test_wire_shapes_build_each_model():
    assert isinstance(make_cost_model({}), AnalyticCost)
    assert isinstance(make_cost_model({"kind": "table", "per_step": {"small": 1.0}}), TableCost)
    assert isinstance(make_cost_model({"kind": "formula", "formula": "steps * params"}), FormulaCost)
    learned = make_cost_model({"kind": "learned", "prior": {"kind": "formula", "formula": "steps"}})
    assert isinstance(learned, LearnedCost) and learned.cost(7, SMALL) == 7.0
    with pytest.raises(InvalidProblemError) as e:
        make_cost_model({"kind": "magic"})
    assert e.value.field == "cost.kind"
    with pytest.raises(InvalidProblemError) as e:
        make_cost_model({"kind": "analytic", "flops_per_token": 6})
    assert e.value.field == "cost"


def test_learned_cost_in_a_problem_learns_relative_costs_from_reported_durations_and_replays():
    """A study with ``cost: learned`` learns c(s, m) from the ``elapsed`` its reports carry, keeps the
    target's cost (budgets stay in target runs), and a replayed scheduler learns the same model."""
    from schedulers import Problem, Scheduler

    class AlternatingSizes(Scheduler):  # the smallest scheduler that runs both sizes
        name = "alternating"

        def _propose(self, n):
            return [({"x": 0.5}, ("s", "l")[len(self.trials) % 2], 100)]

    raw = {"space": [{"name": "x", "type": "float", "low": 0.0, "high": 1.0}],
           "fidelity": {"steps": {"min": 10, "max": 100, "report_every": 10},
                        "sizes": [{"name": "s", "params": 1e6}, {"name": "l", "params": 1e7}]},
           "target": {"steps": 100, "size": "l"},
           "cost": {"kind": "learned", "min_points": 4}}
    problem = Problem.from_dict(raw)
    target_cost = problem.target_cost
    sched = AlternatingSizes(problem, seed=0)

    def seconds(steps, size):  # the cluster's truth: time grows as params^0.5, not params^1 as the prior says
        return 0.01 * steps * (size.params / 1e6) ** 0.5

    for _ in range(2):
        (s,) = sched.suggest(1)
        size = problem.ladder.size(s.size)
        for step in range(10, 101, 10):
            sched.report(s.trial_id, step, 1.0 / step, elapsed=seconds(step, size))
        sched.complete(s.trial_id)
    cm, small, large = problem.cost_model, problem.ladder.size("s"), problem.ladder.size("l")
    assert cm.prediction_error == pytest.approx(0.0, abs=1e-6)
    assert problem.target_cost == pytest.approx(target_cost)          # anchored at the target
    assert cm.cost(100, small) / cm.cost(100, large) == pytest.approx(10 ** -0.5, rel=1e-6)  # not the prior's 0.1
    assert cm.cost(50, large) / cm.cost(100, large) == pytest.approx(0.5, rel=1e-6)

    replayed = AlternatingSizes(Problem.from_dict(raw), seed=0).replay(sched.events)
    assert replayed.snapshot() == sched.snapshot()
    assert replayed.problem.cost_model.cost(100, small) == pytest.approx(cm.cost(100, small), rel=1e-12)
