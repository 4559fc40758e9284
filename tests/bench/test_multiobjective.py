"""bench/multiobjective.py: the generated README section, and a short run on datamix:mo when the data is here."""

from __future__ import annotations

import pytest

from bench import multiobjective as mo
from bench.problems.base import MissingDataError


def test_the_section_is_generated_from_the_results_and_replaced_in_place(tmp_path):
    runs = [{"strategy": s, "seed": i, "budget": 2.0, "trials": 3, "seconds": 1.0,
             "curve": [[f * 2.0, 0.1 * i + f, 2] for f in mo.CHECKPOINTS]}
            for s in ("multiscale_bo", "random") for i in range(2)]
    results = {"meta": {"command": "python -m bench.multiobjective run", "started": "today", "commit": "abc",
                        "machine": "here", "load": "1.0"}, "runs": runs, "path": "r.json"}
    readme = tmp_path / "README.md"
    readme.write_text("# Bench\n\n## Online data mixing\n\ntext\n")
    mo.write_section(readme, mo.section(results), mo.BEGIN, mo.END, mo.INSERT_BEFORE)
    mo.write_section(readme, mo.section(results), mo.BEGIN, mo.END, mo.INSERT_BEFORE)
    text = readme.read_text()
    assert text.count(mo.BEGIN) == 1 and text.index(mo.END) < text.index("## Online data mixing")
    assert "| `multiscale_bo` | 0.150 |" in text and "`random` 1.000, 1.100" in text


def test_a_short_run_on_datamix_two_domains():
    try:
        bp = mo.DataMixTwoDomains()
    except MissingDataError as e:
        pytest.skip(str(e))
    assert bp.problem.objectives.names == ["stackexchange_ce", "github_ce"]
    run = mo.run_one(bp, "optuna_nsga2", 0, 2.0)
    assert len(run.curve) == len(mo.CHECKPOINTS) and run.trials == 2
    assert all(0.0 <= ratio <= 1.2 for _, ratio, _ in run.curve)
