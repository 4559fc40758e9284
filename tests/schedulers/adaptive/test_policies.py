"""What each adaptation policy does: the bandit moves weight toward the domain its reward (the loss) makes
more rewarding; the scaling-law policy toward the domain with the most learnable loss left."""

from __future__ import annotations

import pytest

from schedulers.adaptive import AdaptiveSetup, InvalidAdaptationError, PolicyKind, make_policy
from schedulers.adaptive.exp3 import exploration
from schedulers.adaptive.learnable import learnable_scores
from schedulers.space import SearchSpace
from tests.schedulers.adaptive.instrumented import COMPONENTS, run

import numpy as np


def test_exp3_shifts_weight_toward_the_domain_an_instrumented_objective_makes_more_rewarding():
    # equal curves, except that "math" keeps a high irreducible loss: its reward stays the largest
    p = make_policy(PolicyKind.EXP3, COMPONENTS, lr=5.0)
    sent = run(p, 0, e=[1.0, 3.0, 1.0], a=[2.0, 2.0, 2.0], alpha=[0.5, 0.5, 0.5])
    assert sent[0] == pytest.approx({c: 1 / 3 for c in COMPONENTS})
    assert sent[-1]["math"] > 0.4 > 0.3 > max(sent[-1]["code"], sent[-1]["prose"])
    # and the same objective with "prose" instrumented instead moves it there
    q = make_policy(PolicyKind.EXP3, COMPONENTS, lr=5.0)
    assert run(q, 0, e=[1.0, 1.0, 3.0], a=[2.0] * 3, alpha=[0.5] * 3)[-1]["prose"] > 0.4


def test_exp3_follows_odm_exploration_schedule_and_keeps_a_floor():
    assert exploration(0, 3) == pytest.approx(1 / 3)
    assert exploration(1000, 3) == pytest.approx(np.sqrt(np.log(3) / 3000))
    p = make_policy(PolicyKind.EXP3, COMPONENTS, lr=1000.0)
    sent = run(p, 0, e=[1.0, 3.0, 1.0], a=[2.0] * 3, alpha=[0.5] * 3, steps=100)
    assert min(sent[-1].values()) >= exploration(100, 3) - 1e-12


def test_learnable_loss_moves_toward_the_domain_with_the_most_learnable_loss_left():
    # "prose" has the highest loss but nothing left to learn; "math" learns fastest from a high start
    p = make_policy(PolicyKind.LEARNABLE_LOSS, COMPONENTS, lr=0.8)
    sent = run(p, 0, e=[1.0, 1.0, 3.5], a=[1.0, 8.0, 0.05], alpha=[0.5, 0.5, 0.5])
    assert sent[-1]["math"] > 0.5 and sent[-1]["prose"] < 0.2
    # the bandit, rewarded by the loss itself, goes the other way: to the unlearnable "prose"
    q = make_policy(PolicyKind.EXP3, COMPONENTS, lr=5.0)
    assert run(q, 0, e=[1.0, 1.0, 3.5], a=[1.0, 8.0, 0.05], alpha=[0.5, 0.5, 0.5])[-1]["prose"] > 0.4


def test_learnable_loss_waits_for_enough_points_then_scores_learning_speed_times_reducible_loss():
    steps = np.arange(20.0, 220.0, 20.0)
    losses = np.column_stack([1.0 + 4.0 * steps ** -0.5, 2.0 + 1.0 * steps ** -0.5])
    assert learnable_scores(steps[:3], losses[:3], 4) is None
    scores = learnable_scores(steps, losses, 4)
    expected = [0.5 * 4.0 * 200 ** -0.5, 0.5 * 1.0 * 200 ** -0.5]
    assert scores == pytest.approx(expected, rel=0.05)


SPACE = SearchSpace.from_dicts([
    {"name": "lr", "type": "float", "low": 1e-4, "high": 1e-1, "log": True},
    {"name": "odm_lr", "type": "float", "low": 0.1, "high": 10.0, "log": True},
    {"name": "mix", "type": "mixture", "components": list(COMPONENTS)},
])


def test_setup_reads_the_initial_mixture_and_tuned_hyperparameters_from_a_trials_params():
    setup = AdaptiveSetup.from_dict({"policy": "exp3", "group": "mix", "options": {"smoothing": 0.5},
                                     "tuned": {"lr": "odm_lr"}}, SPACE)
    policy = setup.make_policy(seed=3)
    params = {"lr": 0.01, "odm_lr": 2.5, "code": 0.6, "math": 0.2, "prose": 0.2}
    assert setup.start(policy, 0, params) == pytest.approx({"code": 0.6, "math": 0.2, "prose": 0.2})
    assert policy.trial(0).hyper == {"lr": 2.5, "smoothing": 0.5, "explore": 1.0}
    assert AdaptiveSetup.from_dict(setup.to_dict(), SPACE) == setup


@pytest.mark.parametrize("raw, field", [
    ({"policy": "pbt", "group": "mix"}, "adaptive.policy"),
    ({"policy": "exp3", "group": "lr"}, "adaptive.group"),
    ({"policy": "exp3", "group": "nope"}, "adaptive.group"),
    ({"policy": "exp3", "group": "mix", "options": {"temperature": 1}}, "adaptive.options"),
    ({"policy": "exp3", "group": "mix", "options": {"lr": -1}}, "adaptive.options.lr"),
    ({"policy": "exp3", "group": "mix", "tuned": {"beta": "odm_lr"}}, "adaptive.tuned.beta"),
    ({"policy": "exp3", "group": "mix", "tuned": {"lr": "mix"}}, "adaptive.tuned.lr"),
    ({"policy": "learnable_loss", "group": "mix", "tuned": {"lr": "odm_lr"}}, "adaptive.tuned.lr"),  # > 1
])
def test_setup_errors_name_the_field(raw, field):
    with pytest.raises(InvalidAdaptationError) as e:
        AdaptiveSetup.from_dict(raw, SPACE)
    assert e.value.field == field
