"""The benchmark problems: sanity values from the data's READMEs, grids, closed-form answers, missing data."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.problems import MissingDataError, data_root, make_problem
from bench.problems.datamix import COMPONENTS

ROOT = data_root()


def _needs(sub: str, file: str):
    path = ROOT / sub / file
    return pytest.mark.skipif(not path.is_file(), reason=f"benchmark data missing: {path} (set SCALELADDER_BENCHDATA)")


@_needs("datamix", "simulator_weights.npz")
def test_datamix_reproduces_the_readme_sanity_values():
    dm = make_problem("datamix")
    uniform = {c: 0.2 for c in COMPONENTS}
    skewed = dict(zip(COMPONENTS, (0.6, 0.1, 0.1, 0.1, 0.1)))
    assert dm.target_value(uniform) == pytest.approx(0.904, abs=5e-4)
    assert dm.evaluate(uniform, "20M", 100, seed=0) == pytest.approx(4.490, abs=5e-4)
    assert dm.target_value(skewed) == pytest.approx(0.986, abs=5e-4)
    p = dm.problem
    assert [s.name for s in p.ladder.sizes] == ["20M", "60M", "150M", "300M", "500M", "700M", "1B"]
    assert (p.target.size, p.target.steps) == ("1B", 19_600)
    # the FLOPs table is linear in steps; its slope gives the cost of 19,600 steps
    assert p.cost_model.cost(19_600, p.ladder.size("1B")) == pytest.approx(825687276.3097087 * 196, rel=1e-9)
    best = dm.best_target_value
    assert best < dm.target_value(uniform)
    assert dm.relative_regret(best) == pytest.approx(0.0, abs=1e-12)
    # the optimiser's answer is not beaten by a fresh random sample of the simplex
    mixtures = np.random.default_rng(7).dirichlet(np.ones(5), 2000)
    assert dm.metrics(mixtures, "1B", 19_600)[:, 4].min() >= best - 1e-9


@_needs("steplaw", "dense_lr_bs_loss.csv")
def test_steplaw_grid_cells_and_target():
    sl = make_problem("steplaw")
    assert len(sl.lrs) == 14 and sl.lrs[0] == pytest.approx(2.441e-4) and sl.lrs[-1] == pytest.approx(0.0221)
    assert sl.bss == [16, 24, 32, 64, 96, 128, 192, 256, 352, 512, 736, 1024, 2048]
    assert sum(len(v) for v in sl.cell_steps.values()) == 17
    p = sl.problem
    assert p.target.size == "N1.07B" and p.target.steps == 569
    assert p.target_cost == pytest.approx(6 * 1073741824 * 5.69e10)
    assert sl.report_steps("N1.07B") == [200, 569]
    # a measured point reads back its own row; target value is the smooth loss
    (i, j), (raw, smooth) = next(iter(sl.measured[(sl.target_n, 569)].items()))
    params = {"lr": sl.lrs[i], "bs": sl.bss[j]}
    assert sl.evaluate(params, "N1.07B", 569, seed=0) == pytest.approx(raw)
    assert sl.target_value(params) == pytest.approx(smooth)
    assert sl.best_target_value == pytest.approx(min(v[1] for v in sl.measured[(sl.target_n, 569)].values()))
    # between two cells the value is interpolated in log D
    lo, hi = sl.evaluate(params, "N1.07B", 200, 0), sl.evaluate(params, "N1.07B", 569, 0)
    mid = sl.evaluate(params, "N1.07B", int(round(math.sqrt(200 * 569))), 0)
    assert min(lo, hi) - 1e-6 <= mid <= max(lo, hi) + 1e-6


@_needs("yahpo", "lcbench/model.onnx")
def test_lcbench_loads_and_learning_curves_improve():
    pytest.importorskip("onnxruntime", reason="onnxruntime (the bench extra) is not installed")
    lc = make_problem("lcbench:3945")
    p = lc.problem
    assert lc.name == "lcbench:3945" and p.space.dim == 7 and (p.target.steps, p.ladder.max_steps) == (52, 52)
    cfg = {"batch_size": 64, "learning_rate": 1e-3, "max_dropout": 0.2, "max_units": 256, "momentum": 0.9,
           "num_layers": 3, "weight_decay": 1e-3}
    values = [lc.evaluate(cfg, "mlp", e, seed=0) for e in (1, 10, 52)]
    assert all(math.isfinite(v) and v > 0 for v in values)
    assert values[-1] < values[0]
    assert lc.target_value(cfg) == pytest.approx(values[-1])
    assert make_problem("lcbench:7593").target_value(cfg) != pytest.approx(values[-1])


@_needs("yahpo", "lcbench/model.onnx")
def test_lcbench_reports_validation_error_in_percent_and_regret_in_points():
    pytest.importorskip("onnxruntime", reason="onnxruntime (the bench extra) is not installed")
    from bench.problems.base import RegretUnit
    from bench.problems.lcbench import OUTPUTS, Objective

    lc = make_problem("lcbench:3945")
    assert lc.objective is Objective.VAL_ERROR and lc.regret_unit is RegretUnit.PERCENTAGE_POINTS
    cfg = {"batch_size": 64, "learning_rate": 1e-3, "max_dropout": 0.2, "max_units": 256, "momentum": 0.9,
           "num_layers": 3, "weight_decay": 1e-3}
    accuracy = float(lc.predict([cfg], [52])[0][OUTPUTS.index("val_accuracy")])
    assert lc.target_value(cfg) == pytest.approx(100.0 - accuracy) and 0 < lc.target_value(cfg) < 100
    # regret in points: the gap in validation error itself, not relative to the best error
    from bench.problems import base
    base._BEST_TARGET_CACHE[lc.cache_key()] = 10.0
    assert lc.regret(12.5) == pytest.approx(2.5) and lc.relative_regret(12.5) == pytest.approx(25.0)
    assert lc.regret(float("nan")) == float("inf")
    del base._BEST_TARGET_CACHE[lc.cache_key()]
    ce = make_problem("lcbench:3945:val_cross_entropy")
    assert ce.name == "lcbench:3945:val_cross_entropy" and ce.regret_unit is RegretUnit.RELATIVE_PERCENT


def test_synthetic_worlds_have_their_known_answer():
    sp, mup = make_problem("synthetic_sp"), make_problem("synthetic_mup")
    best = {"lr": 1.2e-3, "weight_decay": 0.1, "warmup": 0.03, "beta2": 0.98}
    for world in (sp, mup):
        assert world.target_value(best) == pytest.approx(world.best_target_value, rel=1e-12)
        assert world.relative_regret(world.target_value({**best, "lr": 4e-3})) > 0.5
    # under SP the small model prefers a much larger learning rate; under muP it does not
    small = "w128"
    grid = np.geomspace(1e-4, 1e-1, 200)
    argbest = lambda w: grid[np.nanargmin([w.loss({**best, "lr": lr}, 128, 10_000) for lr in grid])]  # noqa: E731
    assert argbest(sp) / argbest(mup) == pytest.approx(16, rel=0.1)
    assert argbest(mup) == pytest.approx(1.2e-3, rel=0.05)
    # far too high a learning rate diverges
    assert math.isnan(sp.evaluate({**best, "lr": 0.1}, "w2048", 10_000, seed=0))
    assert math.isfinite(sp.evaluate({**best, "lr": 0.1}, small, 10_000, seed=0))


def test_hartmann_target_is_hartmann6():
    h = make_problem("hartmann")
    opt = dict(zip([f"x{i}" for i in range(6)], (0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573)))
    assert h.target_value(opt) == pytest.approx(-3.32237, abs=1e-4)
    assert h.fidelity("h800M", 1000) == pytest.approx(1.0) and h.fidelity("h100M", 10) == pytest.approx(0.0)
    assert h.evaluate(opt, "h100M", 10, seed=0) > h.target_value(opt)  # the low fidelity is worse here


def test_missing_data_is_a_clear_error(tmp_path):
    for spec in ("datamix", "steplaw", "lcbench"):
        with pytest.raises(MissingDataError, match="SCALELADDER_BENCHDATA"):
            make_problem(spec, data_dir=tmp_path)
