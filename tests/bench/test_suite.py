"""``python -m bench suite``: its plan, time estimate, README section and, marked slow (CI runs it), the
quick suite end to end (every strategy on every problem; runs complete and metrics are well formed)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

import bench.suite as suite
from bench.__main__ import main
from bench.harness import strategy_names
from bench.problems import data_root
from bench.problems.lcbench import DEFAULT_TASKS

README = Path(__file__).resolve().parents[2] / "bench" / "README.md"
TOY = "tests.bench.toy_problem:ToyProblem"


def test_plan_covers_every_problem_and_strategy():
    full, quick = suite.plan(), suite.plan(quick=True)
    assert full.strategies == strategy_names() and "top_k_low_fidelity" in full.strategies
    assert full.problems == [*suite.SUITE_PROBLEMS, *(f"lcbench:{t}" for t in DEFAULT_TASKS)]
    assert len(DEFAULT_TASKS) >= 5 and full.seeds == list(range(10)) and full.budget is None
    assert quick.problems == [*suite.SUITE_PROBLEMS, f"lcbench:{DEFAULT_TASKS[0]}"]
    assert (quick.budget, quick.max_trials, len(quick.seeds)) == (0.3, 6, 2)


def test_estimate_scales_earlier_wall_times_by_budget(tmp_path):
    rec = {"problem": TOY, "strategy": "random", "wall_s": 2.0, "budget": 1.0}
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "results.jsonl").write_text(json.dumps(rec) + "\n" + json.dumps({**rec, "wall_s": 4.0}) + "\n")
    p = suite.SuitePlan([TOY], ["random", "asha"], [0, 1, 2], budget=5.0)
    est = suite.estimate(p, tmp_path)
    assert est.known == 1 and est.unknown == [(TOY, "asha")]
    assert est.seconds == pytest.approx(3.0 * 5.0 * 3)   # median 3 s per budget unit x budget 5 x 3 seeds
    assert "not estimated" in est.line()


def test_replace_section_swaps_only_the_generated_part():
    text = f"intro\n{suite.BEGIN}\nold tables\n{suite.END}\noutro\n"
    new = f"{suite.BEGIN}\nnew\n{suite.END}"
    assert suite.replace_section(text, new) == f"intro\n{new}\noutro\n"
    with pytest.raises(suite.SuiteError):
        suite.replace_section("no markers", "x")
    readme = README.read_text()
    assert readme.count(suite.BEGIN) == 1 and readme.count(suite.END) == 1
    assert readme.index(suite.BEGIN) < readme.index(suite.END)


def test_suite_on_a_plugin_problem_writes_results_and_the_readme_section(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text(f"# bench\n{suite.BEGIN}\nstale\n{suite.END}\ntail\n")
    code = main(["suite", "--problems", TOY, "--strategies", "random,asha", "--seeds", "2",
                 "--out", str(tmp_path / "out"), "--readme", str(readme)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "estimated time" in out
    text = readme.read_text()
    assert "stale" not in text and text.endswith(f"{suite.END}\ntail\n")
    assert "#### toy" in text and "| random | 2/2 |" in text and "| asha | 2/2 |" in text
    assert (tmp_path / "img" / "regret_toy.png").is_file()
    lines = (tmp_path / "out" / TOY.replace(":", "_") / "results.jsonl").read_text().splitlines()
    assert len(lines) == 4 and all(json.loads(r)["budget"] == 10.0 for r in lines)   # the default budget


def test_render_regenerates_the_readme_section_from_a_finished_suite_without_running(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text(f"# bench\n{suite.BEGIN}\nstale\n{suite.END}\n")
    out_dir = tmp_path / "out"
    assert main(["suite", "--problems", TOY, "--strategies", "random", "--seeds", "2", "--out", str(out_dir),
                 "--no-readme"]) == 0
    assert "stale" in readme.read_text()
    records = (out_dir / TOY.replace(":", "_") / "results.jsonl").read_text()
    capsys.readouterr()
    assert main(["suite", "--render", str(out_dir), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert "stale" not in text and "| random | 2/2 |" in text
    assert "--no-readme" in text                               # the command that made the records
    assert (out_dir / TOY.replace(":", "_") / "results.jsonl").read_text() == records   # nothing re-run
    assert main(["suite", "--render", str(tmp_path / "missing"), "--readme", str(readme)]) == 2   # a clear error
    assert main(["suite", "--render", str(tmp_path), "--readme", str(readme)]) == 2       # no problem folders


def test_a_problem_without_its_data_is_reported_and_the_suite_fails(tmp_path, capsys):
    code = main(["suite", "--quick", "--problems", "steplaw", "--strategies", "random", "--data", str(tmp_path),
                 "--out", str(tmp_path / "out")])
    assert code == 1 and "problem steplaw did not run" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.skipif(not (data_root() / "steplaw").is_dir(), reason="benchmark data not here")
def test_quick_suite_runs_every_strategy_on_every_problem(tmp_path, capsys):
    assert main(["suite", "--quick", "--out", str(tmp_path)]) == 0, capsys.readouterr().out
    p = suite.plan(quick=True)
    for problem in p.problems:
        folder = tmp_path / problem.replace(":", "_")
        records = [json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines()]
        assert {r["strategy"] for r in records} == set(p.strategies)
        for r in records:
            if r.get("unavailable") or r.get("not_applicable"):   # recorded with its error, not run
                assert r["error"]
                continue
            r["regret"] = [math.inf if v is None else v for v in r["regret"]]
            assert suite.well_formed(r) == [], (problem, r["strategy"], r["seed"])
        assert (folder / "summary.md").is_file()


def test_report_tags_keep_two_versions_of_one_strategy_apart_and_pair_them(tmp_path, capsys):
    for name in ("before", "after"):
        assert main(["run", "--problem", TOY, "--strategies", "random", "--seeds", "3", "--budget", "2",
                     "--out", str(tmp_path / name)]) == 0
    capsys.readouterr()
    assert main(["report", str(tmp_path / "before"), str(tmp_path / "after"), "--tags", "before,after",
                 "--reference", "random [after]", "--out", str(tmp_path / "report")]) == 0
    text = (tmp_path / "report" / "summary.md").read_text()
    assert "| random [before] | 3/3 |" in text and "| random [after] | 3/3 |" in text
    assert "Paired comparison with `random [after]`" in text
    assert main(["report", str(tmp_path / "before"), "--tags", "a,b", "--out", str(tmp_path / "x")]) == 2
    assert main(["report", str(tmp_path / "before"), "--strategies", "asha", "--out", str(tmp_path / "x")]) == 2
