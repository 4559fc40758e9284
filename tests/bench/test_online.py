"""The online data mixing benchmark (``python -m bench.online``) end to end on a tiny model."""

from __future__ import annotations

import json

from bench.online.run import DOMAINS, main

TINY = '{"n_layers": 1, "seq_len": 8, "base_width": 16, "batch_size": 4, "eval_batches": 1}'


def test_every_arm_trains_at_equal_steps_and_the_summary_is_written(tmp_path):
    assert main(["--widths", "16", "--steps", "20", "--report-every", "10", "--seeds", "1",
                 "--static", "2,1,1", "--args", TINY, "--out", str(tmp_path)]) == 0
    records = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert {r["arm"] for r in records} == {"uniform", "static", "exp3@uniform", "exp3@static",
                                           "learnable_loss@uniform", "learnable_loss@static"}
    for r in records:
        assert [s for s, _ in r["curve"]] == [10, 20]                 # equal training compute
        assert all(set(d) == set(DOMAINS) for d in r["domains"])
        assert r["sent"][0][1] == ({"code": .5, "math": .25, "prose": .25} if "static" in r["arm"]
                                   else {d: 1 / 3 for d in DOMAINS})
    summary = (tmp_path / "summary.md").read_text()
    assert "| static |" in summary and "Command: `python -m bench.online" in summary
    assert (tmp_path / "mixture.png").stat().st_size > 0
