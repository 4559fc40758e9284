"""The Step Law procedure on the released dense table, next to the published law (skipped without data)."""

from __future__ import annotations

import pytest

from schedulers.scaling.steplaw_check import FILE_NAME, PUBLISHED_RANGES, default_data_dir, main, run_check

DATA = default_data_dir()
pytestmark = pytest.mark.skipif(not (DATA / FILE_NAME).is_file(),
                                reason=f"Step Law table not found at {DATA / FILE_NAME} "
                                       "(set SCALELADDER_BENCHDATA; source: github.com/step-law/steplaw, data/)")


@pytest.fixture(scope="module")
def check():
    return run_check(DATA, n_bootstrap=300, loss_bootstrap=-1)


def test_paper_procedure_on_the_released_table(check):
    law = check.law
    assert law.n_runs == 1911 and len(law.cells) == 17
    # the 0.25% plateau keeps a handful of runs per cell
    assert 17 < law.n_kept < 300 and all(c.n_kept >= 1 for c in law.cells)
    lr, bs = law.laws["lr"].exponents, law.laws["bs"].exponents
    # what an independent re-fit of this subset finds (see bench/README.md): the N exponent and the bs
    # exponent agree with the published bootstrap ranges; the lr D exponent sits near 0.2, below them
    lo, hi = PUBLISHED_RANGES[("lr", "N")]
    assert lo <= lr["N"].value <= hi
    lo, hi = PUBLISHED_RANGES[("bs", "D")]
    assert bs["D"].low <= hi and lo <= bs["D"].high          # intervals overlap
    assert 0.1 < lr["D"].value < 0.3 and lr["D"].high < PUBLISHED_RANGES[("lr", "D")][0] + 0.02


def test_prediction_at_the_largest_cell_is_close_to_the_measured_optimum(check):
    n, d = check.largest
    assert (n, d) == (1073741824.0, 56900000000.0)
    pred = {p.name: p.value for p in check.law.predict_optimum(n, d)}
    measured = [c for c in check.law.cells if (c.n_params, c.data) == (n, d)][0].optimum
    assert pred["lr"].low < measured["lr"] * 1.5 and measured["lr"] / 1.5 < pred["lr"].high
    # the held-out fit (largest cell removed) still extrapolates to it within a factor 1.5 in lr
    held = {p.name: p.value for p in check.held_out.predict_optimum(n, d)}
    assert measured["lr"] / 1.5 < held["lr"].value < measured["lr"] * 1.5


def test_script_writes_table_and_plot(tmp_path, capsys):
    assert main(["--data", str(DATA), "--bootstrap", "50", "--loss-bootstrap", "-1",
                 "--plot", str(tmp_path / "p.png"), "--out", str(tmp_path / "t.md")]) == 0
    text = (tmp_path / "t.md").read_text()
    assert "| lr: N exponent | -0.713 | [-0.774, -0.655] |" in text
    assert "published law" in text and (tmp_path / "p.png").stat().st_size < 200_000
