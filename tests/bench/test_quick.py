"""CI quick mode: every registered strategy (schedulers and peers) completes a tiny benchmark on a cheap
problem and its metrics are well formed. It asserts nothing about quality."""

from __future__ import annotations

import json
import math

import pytest

from bench.__main__ import main
from bench.harness import cost_checkpoints, load_strategy, run_one, strategy_names
from bench.metrics import best_so_far

# CI budget: GP peers pay for every recommendation, so few checkpoints and few trials
QUICK_BUDGET, QUICK_CHECKPOINTS, QUICK_TRIALS = 0.3, 6, 4
#: baselines that apply to problems with lr and bs parameters only (bench/baselines/law_transfer.py)
LR_BS_BASELINES = {"law_transfer", "steplaw_published"}


@pytest.mark.parametrize("name", strategy_names())
def test_every_strategy_completes_quick_mode(name):
    strategy = load_strategy(name)
    if not strategy.available:
        pytest.skip(f"strategy {name!r} cannot be imported here: {strategy.error}")
    if name == "steplaw_published":
        pytest.skip(f"its one run costs 1 target run, more than the quick budget {QUICK_BUDGET}: nothing to grade "
                    "(tests/bench/test_law_transfer.py runs it)")
    problem = "synthetic_sp"
    if name in LR_BS_BASELINES:   # they raise InvalidProblemError on a space without lr and bs (by design)
        from bench.problems import data_root

        if not (data_root() / "steplaw" / "dense_lr_bs_loss.csv").is_file():
            pytest.skip(f"{name} needs an lr/bs problem; the Step Law data is missing (set SCALELADDER_BENCHDATA)")
        problem = "steplaw"
    rec = run_one(problem, None, name, seed=0, workers=2, budget=QUICK_BUDGET,
                  n_checkpoints=QUICK_CHECKPOINTS, max_trials=QUICK_TRIALS)
    assert rec["error"] is None, rec["error"]
    cps, regret = rec["checkpoints"], rec["regret"]
    assert cps == cost_checkpoints(QUICK_BUDGET, QUICK_CHECKPOINTS)
    assert all(b > a for a, b in zip(cps, cps[1:]))
    # a recommendation that diverges at the target has infinite regret; anything else must be a number
    assert len(regret) == len(cps) and all(not math.isnan(r) and r >= -1e-9 for r in regret)
    best = best_so_far(regret)
    assert all(b <= a for a, b in zip(best, best[1:]))
    assert rec["spent"] <= QUICK_BUDGET + 1e-9 and (rec["exhausted"] or rec["spent"] == pytest.approx(QUICK_BUDGET))
    assert 0.0 < rec["busy_fraction"] <= 1.0 + 1e-9
    assert rec["scheduler_cpu_s"] >= 0.0 and rec["recommend_cpu_s"] >= 0.0
    assert 1 <= rec["n_trials"] <= QUICK_TRIALS and rec["n_reports"] >= 1
    assert not math.isnan(rec["final_regret"]) and rec["final_params"] is not None


def test_quick_cli_writes_results_summary_and_plot(tmp_path, capsys):
    code = main(["run", "--problem", "synthetic_mup", "--quick", "--seeds", "2", "--strategies", "random",
                 "--out", str(tmp_path)])
    assert code == 0
    records = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert [(r["strategy"], r["seed"]) for r in records] == [("random", 0), ("random", 1)]
    summary = (tmp_path / "summary.md").read_text()
    assert "| random | 2/2 |" in summary and "--quick" in summary
    assert (tmp_path / "regret_synthetic_mup.png").is_file()


def test_unknown_strategy_is_a_usage_error(tmp_path, capsys):
    assert main(["run", "--problem", "synthetic_sp", "--quick", "--strategies", "no_such_tuner",
                 "--out", str(tmp_path)]) == 2
    assert "unknown strategy" in capsys.readouterr().err


def test_report_merges_runs_of_one_problem(tmp_path, capsys):
    common = ["--problem", "synthetic_sp", "--quick", "--seeds", "1"]
    assert main(["run", *common, "--strategies", "random", "--out", str(tmp_path / "a")]) == 0
    assert main(["run", *common, "--strategies", "asha", "--out", str(tmp_path / "b")]) == 0
    assert main(["report", str(tmp_path / "a"), str(tmp_path / "b" / "results.jsonl"),
                 "--out", str(tmp_path / "merged")]) == 0
    summary = (tmp_path / "merged" / "summary.md").read_text()
    assert "| random | 1/1 |" in summary and "| asha | 1/1 |" in summary
    assert (tmp_path / "merged" / "regret_synthetic_sp.png").is_file()
    # runs with another budget do not mix
    assert main(["run", *common, "--budget", "0.2", "--strategies", "random", "--out", str(tmp_path / "c")]) == 0
    assert main(["report", str(tmp_path / "a"), str(tmp_path / "c"), "--out", str(tmp_path / "bad")]) == 2
    assert "mix problems" in capsys.readouterr().err


def test_options_reach_the_strategy_and_label_its_rows(tmp_path, capsys):
    """--options goes to the strategy's constructor, is recorded, and keeps the variant a row of its own
    when merged with a default run."""
    common = ["--problem", "synthetic_sp", "--quick", "--seeds", "1", "--strategies", "multiscale_bo"]
    assert main(["run", *common, "--out", str(tmp_path / "a")]) == 0
    assert main(["run", *common, "--options", '{"multiscale_bo": {"n_init": 2}}', "--out", str(tmp_path / "b")]) == 0
    rec = json.loads((tmp_path / "b" / "results.jsonl").read_text().splitlines()[0])
    assert rec["options"] == {"n_init": 2} and not rec.get("error")
    assert "| multiscale_bo n_init=2 | 1/1 |" in (tmp_path / "b" / "summary.md").read_text()
    assert main(["report", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "m")]) == 0
    merged = (tmp_path / "m" / "summary.md").read_text()
    assert "| multiscale_bo | 1/1 |" in merged and "| multiscale_bo n_init=2 | 1/1 |" in merged
    # a bad option value is the strategy's own error, recorded; malformed JSON is a usage error
    assert main(["run", *common, "--options", '{"multiscale_bo": {"n_init": 0}}', "--out", str(tmp_path / "c")]) == 1
    assert "n_init" in json.loads((tmp_path / "c" / "results.jsonl").read_text().splitlines()[0])["error"]
    assert main(["run", *common, "--options", "{not json", "--out", str(tmp_path / "d")]) == 2
    assert main(["run", *common, "--options", '{"random": {}}', "--out", str(tmp_path / "e")]) == 2
