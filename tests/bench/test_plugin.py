"""A problem from outside ``bench/`` plugs in as ``module:attribute`` with nothing in ``bench/`` changed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.harness import BenchmarkConfig, run_benchmark
from bench.problems import UnknownProblemError, make_problem
from tests.bench.toy_problem import OneSizeToyProblem, ToyProblem

REPO = Path(__file__).resolve().parents[2]


def test_module_attribute_resolves_class_and_instance():
    assert isinstance(make_problem("tests.bench.toy_problem:ToyProblem"), ToyProblem)
    assert make_problem("tests.bench.toy_problem:TOY").name == "toy"
    with pytest.raises(UnknownProblemError):
        make_problem("tests.bench.toy_problem:SIZES")
    with pytest.raises(UnknownProblemError):
        make_problem("tests.bench.no_such_module:Thing")
    with pytest.raises(UnknownProblemError):
        make_problem("no_such_problem")


def test_plugin_problem_runs_through_the_cli(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "run", "--problem", "tests.bench.toy_problem:ToyProblem",
         "--strategies", "random", "--seeds", "2", "--workers", "2", "--budget", "2", "--out", str(tmp_path)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    records = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert [(r["problem"], r["strategy"], r["seed"]) for r in records] == [("toy", "random", 0), ("toy", "random", 1)]
    assert all(r["error"] is None and r["spent"] == pytest.approx(2.0) for r in records)
    summary = (tmp_path / "summary.md").read_text()
    assert "| random |" in summary and "tests.bench.toy_problem:ToyProblem" in summary
    assert (tmp_path / "regret_toy.png").stat().st_size > 1000


def test_random_search_on_the_toy_problem_gets_close(tmp_path):
    # 40 target runs of random search on a 1-d quadratic: the recommendation must be near x = 0.3
    result = run_benchmark(BenchmarkConfig("tests.bench.toy_problem:ToyProblem", ["random"], [0], workers=2,
                                           budget=40.0, n_checkpoints=20))
    rec = result.records[0]
    assert rec["error"] is None
    assert abs(rec["final_params"]["x"] - 0.3) < 0.1
    assert rec["final_regret"] < 5.0


def test_default_budget_is_10_target_runs_multi_scale_and_30_full_fidelity_runs_single_scale():
    from bench.harness.runner import DEFAULT_BUDGETS, ProblemScale, default_budget, problem_scale

    assert problem_scale(ToyProblem()) is ProblemScale.MULTI and default_budget(ToyProblem()) == 10.0
    assert problem_scale(OneSizeToyProblem()) is ProblemScale.SINGLE and default_budget(OneSizeToyProblem()) == 30.0
    assert DEFAULT_BUDGETS == {ProblemScale.MULTI: 10.0, ProblemScale.SINGLE: 30.0}
    result = run_benchmark(BenchmarkConfig("tests.bench.toy_problem:ToyProblem", ["random"], [0], workers=2,
                                           n_checkpoints=10))
    assert result.config.budget == 10.0 and result.records[0]["budget"] == 10.0
    assert result.records[0]["spent"] == pytest.approx(10.0)
    assert {1.0, 3.0, 10.0} <= set(result.records[0]["checkpoints"])


def test_report_describes_a_plugin_problem_from_its_records(tmp_path):
    from bench.harness.runner import load_results
    from bench.problems.base import RegretUnit

    run_benchmark(BenchmarkConfig("tests.bench.toy_problem:ToyProblem", ["random"], [0, 1], workers=2,
                                  budget=1.0, n_checkpoints=5), tmp_path)
    result = load_results([tmp_path])   # the records name the problem "toy", which does not resolve
    assert result.problem_description == ToyProblem().describe() and "UnknownProblemError" not in result.problem_description
    assert result.best_target_value == pytest.approx(0.06) and result.regret_unit is RegretUnit.RELATIVE_PERCENT
