"""Multiple objectives end to end through REST on PostgreSQL (issue 16): a two-objective study recovers a
known Pareto front (tests/schedulers/mo_problem.py) within a stated hypervolume ratio, measurements without
the second objective are a 422 naming it, and the CLI shows the front."""

from __future__ import annotations

import pytest

from api import Decision
from api.errors import InvalidArgumentError
from service.cli import _pareto_table
from tests.schedulers import mo_problem

#: the flagship's front at budget 3 target runs must dominate this share of the true front's hypervolume
#: (reference point 1.1 past each objective's ideal). Measured on the scheduler directly (two workers,
#: seeds 0 and 1, drift off to keep the test short): 0.95 and 0.91 (defaults: 0.92 and 0.97); through
#: REST with the defaults 0.96; random search at budget 6: 0.20 and 0.31.
HV_RATIO = 0.85


@pytest.mark.slow
def test_a_two_objective_study_recovers_the_known_front_through_rest(postgres_server):
    with postgres_server.client() as client:
        study = client.create_study(mo_problem.spec_dict(budget=3.0, seed=0, options={"drift": "off"}))
        assert [o.metric for o in study.data.objectives] == ["loss", "cost"]
        workers = [f"w{i}" for i in range(2)]
        while True:
            running = [t for w in workers if (t := study.ask(client_id=w, wait=False)) is not None]
            if not running:
                break
            steps = {t.id: t.report_steps() for t in running}
            while running:
                for trial in list(running):
                    step = steps[trial.id].pop(0)
                    loss, cost = mo_problem.values(trial.params, _params_of(study, trial.size), step)
                    if trial.report(step, loss, metrics={"cost": cost}) is not Decision.CONTINUE \
                            or not steps[trial.id]:
                        trial.complete()
                        running.remove(trial)
        rec = study.recommendation()
        front = study.pareto()
        assert rec.objectives == ["loss", "cost"] and front and rec.params == front[0].params
        assert all(set(p.values) == {"loss", "cost"} and p.stds is not None for p in front)
        ratio = mo_problem.hypervolume_ratio([p.params for p in front])
        print(f"hypervolume ratio {ratio:.3f} with {len(front)} configs, cost {study.refresh().data.cost_spent:.2f}")
        assert ratio >= HV_RATIO
        assert _pareto_table(rec).row_count == len(front)


def test_a_measurement_without_the_second_objective_is_a_422_naming_it(postgres_server):
    with postgres_server.client() as client:
        study = client.create_study(mo_problem.spec_dict(scheduler="random", budget=1.0))
        trial = study.ask()
        with pytest.raises(InvalidArgumentError) as e:
            trial.report(trial.report_steps()[0], 1.0)
        assert e.value.field == "metrics.cost"
        trial.report(trial.report_steps()[0], 1.0, metrics={"cost": 0.5})
        assert study.trials()[0].last_step == trial.report_steps()[0]
        assert study.pareto() == [] and study.recommendation().pareto == []
        with pytest.raises(InvalidArgumentError):
            client.create_study({**mo_problem.spec_dict(), "objective": {"metric": "cost"}})
        with pytest.raises(InvalidArgumentError):
            client.create_study({**mo_problem.spec_dict(), "constraints": ["latency < 20"]})
        ok = client.create_study({**mo_problem.spec_dict(scheduler="random"), "constraints": ["cost <= 0.4"]})
        assert ok.data.constraints[0].bound == 0.4


def _params_of(study, size: str) -> float:
    return next(s.params for s in study.data.fidelity.sizes if s.name == size)
