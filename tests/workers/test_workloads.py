"""Built-in workloads: the reporting contract, resume from checkpoint, divergence, and muP's two promises
(flat coordinates across widths; the optimal LR transfers across widths)."""

from __future__ import annotations

import copy
import math

import pytest

from workers.errors import ForbiddenWorkloadError, UnknownWorkloadError
from workers.workloads import BUILTIN_WORKLOADS, WorkloadPolicy, load_workload
from workers.workloads.lm import coord_check
from workers.workloads.parametrization import Parametrization

TINY_LM = {"n_layers": 1, "seq_len": 16, "base_width": 16, "warmup_steps": 5}


def user_workload(config, reporter):
    """A user workload loaded by 'module:function': reports 1/step."""
    for step in range(config["start_step"] + 1, config["steps"] + 1):
        if step % config["report_every"] == 0 or step == config["steps"]:
            reporter(step, 1.0 / step)


def run(name, steps, start_step=0, checkpoint=None, policy=WorkloadPolicy(), **kw):
    reports, states = [], {}

    def reporter(step, value, checkpoint_state=None, *, domains=None, metrics=None):
        reports.append((step, value))
        if checkpoint_state is not None:
            states[step] = copy.deepcopy(checkpoint_state)

    config = {"params": kw.pop("params", {"lr": 1e-2}), "size": "s", "steps": steps, "start_step": start_step,
              "report_every": kw.pop("report_every", 10), "seed": 3, "checkpoint": checkpoint,
              "size_extra": {"width": kw.pop("width", 16)}, "args": kw.pop("args", TINY_LM)}
    load_workload(name, policy)(config, reporter)
    return reports, states


@pytest.mark.parametrize("name", sorted(BUILTIN_WORKLOADS))
def test_builtin_reports_every_interval_and_resumes_exactly(name):
    full, states = run(name, 40, report_every=10)
    assert [s for s, _ in full] == [10, 20, 30, 40]
    assert all(math.isfinite(v) for _, v in full)
    assert full[-1][1] < full[0][1] + 0.05  # it trains

    resumed, _ = run(name, 40, start_step=20, checkpoint=states[20], report_every=10)
    assert [s for s, _ in resumed] == [30, 40]
    for (s1, v1), (s2, v2) in zip(full[2:], resumed):
        assert s1 == s2 and v1 == pytest.approx(v2, rel=1e-4)


def test_report_steps_include_the_budget_when_not_a_multiple():
    reports, _ = run("mlp", 25, start_step=0, report_every=10)
    assert [s for s, _ in reports] == [10, 20, 25]


def test_divergence_is_reported_as_non_finite_not_raised():
    reports, _ = run("mlp", 50, params={"lr": 1e12}, report_every=5, args={"depth": 3})
    assert reports and not math.isfinite(reports[-1][1])
    assert all(math.isfinite(v) for _, v in reports[:-1])


def test_user_workload_by_module_path_and_unknown_names():
    allowed = WorkloadPolicy(("tests.workers", "no.such"))
    reports, _ = run("tests.workers.test_workloads:user_workload", 20, report_every=10, policy=allowed)
    assert reports == [(10, 0.1), (20, 0.05)]
    for bad in ("no_such_workload", "tests.workers.test_workloads:missing", "no.such.module:fn"):
        with pytest.raises(UnknownWorkloadError):
            load_workload(bad, allowed)


def test_a_worker_loads_only_the_modules_the_policy_allows():
    # the default policy: the built-in workloads, by name or by their own module:function, and nothing else
    assert load_workload("workers.workloads.mlp:mlp") is load_workload("mlp")
    narrow = WorkloadPolicy(("tests.workers",))
    for entrypoint, policy in [("tests.workers.test_workloads:user_workload", WorkloadPolicy()),
                               ("os:system", narrow), ("tests.workers_x:fn", narrow), ("tests:fn", narrow),
                               ("workers.workloads.corpus:load_corpus", WorkloadPolicy())]:
        with pytest.raises(ForbiddenWorkloadError) as e:
            load_workload(entrypoint, policy)
        assert e.value.field == "workload.entrypoint"
    with pytest.raises(ValueError):
        WorkloadPolicy(("os; rm",))


@pytest.mark.slow
def test_mup_coordinates_stay_flat_across_widths_while_sp_grows():
    widths = [32, 64, 128, 256]
    layers = ("block0", "block1", "logits")
    mup = coord_check(Parametrization.MUP, widths, steps=4, lr=1e-2)
    sp = coord_check(Parametrization.SP, widths, steps=4, lr=1e-2)
    for layer in layers:
        mup_ratio = mup[widths[-1]][layer] / mup[widths[0]][layer]
        sp_ratio = sp[widths[-1]][layer] / sp[widths[0]][layer]
        # 8x the width: muP's coordinates stay within a factor 2.5 (no growth), SP's blow up
        assert 0.4 < mup_ratio < 2.5, (layer, mup_ratio)
        assert sp_ratio > 4.0, (layer, sp_ratio)


def _best_lr_index(name, width, lrs):
    losses = []
    for lr in lrs:
        reports, _ = run(name, 60, params={"lr": lr}, report_every=60, width=width)
        value = reports[-1][1]
        losses.append(value if math.isfinite(value) else float("inf"))
    return min(range(len(lrs)), key=losses.__getitem__)


@pytest.mark.slow
def test_mup_optimal_learning_rate_transfers_to_4x_width():
    lrs = [10 ** (-3.5 + 0.5 * i) for i in range(7)]  # half-decade grid
    small = _best_lr_index("mup_transformer", 16, lrs)
    large = _best_lr_index("mup_transformer", 64, lrs)
    assert 0 < small < len(lrs) - 1, "the optimum must be inside the grid for the test to mean anything"
    assert abs(small - large) <= 1, (lrs[small], lrs[large])


def run_adaptive(steps, answers, start_step=0, checkpoint=None, adapted=None, params=None):
    """The muP transformer with a reporter that records per-domain losses and answers ``answers[step]``."""
    reports, states = [], {}

    def reporter(step, value, checkpoint_state=None, *, domains=None, metrics=None):
        reports.append((step, value, dict(domains or {})))
        if checkpoint_state is not None:
            states[step] = copy.deepcopy(checkpoint_state)
        return answers.get(step)

    config = {"params": params or {"lr": 1e-2, "code": 1 / 3, "math": 1 / 3, "prose": 1 / 3}, "size": "s",
              "steps": steps, "start_step": start_step, "report_every": 10, "seed": 3, "checkpoint": checkpoint,
              "size_extra": {"width": 16}, "args": TINY_LM, "adapted": adapted}
    load_workload("mup_transformer")(config, reporter)
    return reports, states


def test_transformer_reports_per_domain_losses_and_trains_on_the_mixture_it_is_answered():
    plain, _ = run_adaptive(60, {})
    for _, value, domains in plain:
        assert set(domains) == {"code", "math", "prose"} and all(math.isfinite(v) for v in domains.values())
        assert min(domains.values()) <= value <= max(domains.values())
    only_code = {"code": 1.0, "math": 0.0, "prose": 0.0}
    adapted, states = run_adaptive(60, {10: only_code})
    assert adapted[0] == plain[0]                                     # the same run up to the first answer
    # from step 10 on it trains on code alone: code improves more, prose less, than on the uniform mixture
    assert adapted[-1][2]["code"] < plain[-1][2]["code"] and adapted[-1][2]["prose"] > plain[-1][2]["prose"]
    assert states[20]["adapted"] == only_code and states[10]["adapted"] == pytest.approx({c: 1 / 3 for c in only_code})


def test_a_resumed_adaptive_run_continues_with_the_mixture_it_had():
    answers = {10: {"code": 0.7, "math": 0.2, "prose": 0.1}, 20: {"code": 0.1, "math": 0.2, "prose": 0.7}}
    full, states = run_adaptive(40, answers)
    resumed, _ = run_adaptive(40, answers, start_step=20, checkpoint=states[20], adapted=answers[20])
    assert [s for s, *_ in resumed] == [30, 40]
    for (s1, v1, d1), (s2, v2, d2) in zip(full[2:], resumed):
        assert s1 == s2 and v1 == pytest.approx(v2, rel=1e-4) and d1 == pytest.approx(d2, rel=1e-4)
    # a resume that is not told the mixture is not the same run
    other, _ = run_adaptive(40, answers, start_step=20, checkpoint=states[20], adapted={"code": 1, "math": 0, "prose": 0})
    assert other[0][1] != pytest.approx(full[2][1], rel=1e-4)
