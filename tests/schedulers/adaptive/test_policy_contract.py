"""The contract of ``schedulers/adaptive/base.py``, checked for every adaptation policy (parametrised over
``PolicyKind``, so a policy added later is checked without touching this file)."""

from __future__ import annotations

import json
import math

import pytest

from schedulers.adaptive import (AdaptationReplayError, InvalidAdaptationError, PolicyKind,
                                 UnknownAdaptiveTrialError, make_policy)
from tests.schedulers.adaptive.instrumented import COMPONENTS, run

KINDS = list(PolicyKind)
#: a curve per domain whose fits and bandit rewards differ by domain
CURVES = dict(e=[0.8, 1.6, 2.6], a=[6.0, 5.0, 3.0], alpha=[0.5, 0.35, 0.3])


def new(kind, seed: int = 0, **options):
    return make_policy(kind, COMPONENTS, seed=seed, **options)


def canonical(snapshot) -> str:
    return json.dumps(snapshot, sort_keys=True, default=repr)


def drive(policy) -> None:
    run(policy, 0, **CURVES, initial={"code": 0.5, "math": 0.3, "prose": 0.2}, noise=0.01, seed=1)
    run(policy, 1, **CURVES, steps=120, noise=0.01, seed=2)


def valid(w) -> bool:
    return set(w) == set(COMPONENTS) and min(w.values()) >= 0 and math.isclose(sum(w.values()), 1.0)


@pytest.mark.parametrize("kind", KINDS)
def test_start_answers_the_normalised_initial_mixture_or_uniform(kind):
    p = new(kind)
    assert p.start(0, {"code": 2, "math": 1, "prose": 1}) == pytest.approx({"code": .5, "math": .25, "prose": .25})
    assert p.start(1) == pytest.approx({c: 1 / 3 for c in COMPONENTS})


@pytest.mark.parametrize("kind", KINDS)
def test_every_mixture_is_a_distribution_over_the_components(kind):
    p = new(kind)
    drive(p)
    for trial_id in (0, 1):
        assert all(valid(w) for _, w in p.sent(trial_id))


@pytest.mark.parametrize("kind", KINDS)
def test_mixtures_move_during_a_run(kind):
    p = new(kind)
    sent = run(p, 0, **CURVES)
    assert max(abs(sent[-1][c] - sent[0][c]) for c in COMPONENTS) > 0.01


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_same_mixtures(kind):
    a, b = new(kind, seed=4), new(kind, seed=4)
    drive(a)
    drive(b)
    assert canonical(a.snapshot()) == canonical(b.snapshot())
    assert a.sent(0) == b.sent(0) and a.sent(1) == b.sent(1)


@pytest.mark.parametrize("kind", KINDS)
def test_replay_reproduces_state_and_every_mixture_sent(kind):
    live = new(kind, seed=1)
    drive(live)
    events = json.loads(json.dumps(live.events))  # as persisted by the service
    replayed = new(kind, seed=1).replay(events)
    assert canonical(replayed.snapshot()) == canonical(live.snapshot())
    assert replayed.sent(0) == live.sent(0) and replayed.sent(1) == live.sent(1)
    nxt = {"code": 1.0, "math": 1.9, "prose": 2.9}
    assert replayed.observe(1, 500, nxt) == live.observe(1, 500, nxt)
    assert canonical(replayed.snapshot()) == canonical(live.snapshot())


@pytest.mark.parametrize("kind", KINDS)
def test_replay_of_one_trial_alone_gives_its_mixtures(kind):
    live = new(kind)
    drive(live)
    alone = new(kind).replay([e for e in live.events if e["trial_id"] == 1])
    assert alone.sent(1) == live.sent(1)


@pytest.mark.parametrize("kind", KINDS)
def test_replay_needs_a_fresh_policy(kind):
    p = new(kind)
    p.start(0)
    with pytest.raises(AdaptationReplayError):
        p.replay(list(p.events))


@pytest.mark.parametrize("kind", KINDS)
def test_a_repeated_step_answers_what_it_was_answered_then_and_records_nothing(kind):
    p = new(kind)
    drive(p)
    n_events = len(p.events)
    sent = dict(p.sent(0))
    assert p.observe(0, 100, {"code": 9.0, "math": 9.0, "prose": 9.0}) == sent[100]
    assert len(p.events) == n_events
    assert p.mixture(0, 105) == sent[100] and p.mixture(0, 5) == sent[0]


@pytest.mark.parametrize("kind", KINDS)
def test_a_non_finite_loss_is_no_evidence(kind):
    p, q = new(kind), new(kind)
    run(p, 0, **CURVES, steps=100)
    run(q, 0, **CURVES, steps=100)
    before = p.mixture(0)
    assert p.observe(0, 110, {"code": float("nan"), "math": float("inf"), "prose": float("nan")}) == before


@pytest.mark.parametrize("kind", KINDS)
def test_bad_calls_raise_typed_errors_naming_the_field(kind):
    p = new(kind)
    p.start(0)
    with pytest.raises(InvalidAdaptationError) as e:
        p.observe(0, 10, {"code": 1.0, "math": 1.0})
    assert e.value.field == "domains"
    with pytest.raises(InvalidAdaptationError):
        p.observe(0, 10, {"code": 1.0, "math": 1.0, "prose": 1.0, "web": 1.0})
    with pytest.raises(UnknownAdaptiveTrialError):
        p.observe(7, 10, {"code": 1.0, "math": 1.0, "prose": 1.0})
    with pytest.raises(InvalidAdaptationError) as e:
        new(kind, no_such_option=1.0)
    assert e.value.field == "adaptive.options"
    with pytest.raises(InvalidAdaptationError) as e:
        p.start(1, hyper={"lr": float("nan")})
    assert e.value.field == "adaptive.tuned.lr"
    with pytest.raises(InvalidAdaptationError):
        make_policy(kind, ["code"])


@pytest.mark.parametrize("kind", KINDS)
def test_the_tuned_learning_rate_changes_how_far_the_mixture_moves(kind):
    p = new(kind)
    still = run(p, 0, **CURVES, hyper={"lr": 0.0})
    moved = run(p, 1, **CURVES, hyper={"lr": 0.5 if kind is PolicyKind.LEARNABLE_LOSS else 20.0})
    dist = lambda w: max(abs(w[c] - still[0][c]) for c in COMPONENTS)  # noqa: E731
    assert dist(moved[-1]) > dist(still[-1]) + 0.01
