"""The Ray overhead benchmark (bench/README.md, "Ray overhead") runs several studies at once on one Ray,
with the scheduler in memory and with every decision persisted through the service into SQLite."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("persisted", [False, True], ids=["in-memory", "sqlite"])
def test_several_studies_run_at_once_and_every_report_is_counted(persisted):
    pytest.importorskip("ray")
    from service.cli_ray import Persistence
    from workers.overhead import benchmark

    persistence = Persistence.SQLITE if persisted else Persistence.NONE
    out = benchmark(persistence.make_studies, studies=3, trials=4, reports=3, work=0.01, slots=2)
    assert (out["studies"], out["trials"], out["reports"]) == (3, 12, 36), out
    assert out["wall_s"] >= out["slowest_study_s"] > 0, out
    # 36 reports of 0.01 s in 2 slots: busy is a fraction, and some of the wall time
    assert 0 < out["worker_busy"] < 1, out
