"""The generic scheduler contract (``tests/schedulers/test_contract.py``) run against every peer tuner.

The contract suite is parametrised over the scheduler registry; here each of its checks runs once per peer,
with the suite's ``make_scheduler`` pointed at ``bench.peers.make_peer``. The checks themselves, the
problem (conditional parameter, mixture, ordinal, fixed) and the simulated executor (crashes, NaN and inf
divergences, JSON round-tripped replay, trials left in flight) are the suite's own.

Peers do all the suite asks except one: a model's prediction at the target need not lie within one unit of
the measured values, a bound the suite sets for its own schedulers, which the GP peers' extrapolation from
small models does not promise; that check runs for the other peers only. ``botorch_mfkg`` skips the four
checks that drive eight or more trials (a knowledge-gradient optimisation each): ``test_peers.py`` checks
its determinism, replay and divergence handling on a smaller run.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest

import tests.schedulers.test_contract as contract
from bench.peers import make_peer, peer_class, peer_names

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

#: options that keep a contract run cheap; they shrink the work per suggestion, not the behaviour
SMALL_RUN_OPTIONS: dict[str, dict[str, Any]] = {
    "botorch_mfkg": {"n_init": 4, "num_fantasies": 2, "raw_samples": 16, "maxiter": 10, "fit_maxiter": 15},
    "mfms_gp": {"n_init": 4, "raw_samples": 32, "fit_maxiter": 30},
}
#: peers fitting a model per suggestion: every check takes seconds, so they carry the slow marker
SLOW = {"botorch_mfkg", "mfms_gp", "bohb", "syne_mobster", "syne_hypertune", "syne_dyhpo"}
#: (check, peer) pairs the peer's package does not allow, with the reason
NOT_APPLICABLE = {
    ("test_recommendation_is_a_valid_config_at_the_target", "botorch_mfkg"):
        "a GP prediction at the target may lie more than one unit outside the measured values",
    ("test_recommendation_is_a_valid_config_at_the_target", "mfms_gp"):
        "a GP prediction at the target may lie more than one unit outside the measured values",
}
#: checks that drive 8+ trials cost botorch_mfkg a knowledge-gradient optimisation per trial (minutes in
#: all); determinism, replay and divergence are checked for it in test_peers.py on a smaller run instead
for _check in ("test_same_seed_same_suggestions_and_decisions", "test_replay_reproduces_state_and_next_answers",
               "test_confirm_issues_target_replicates_that_run_to_the_end",
               "test_crashes_and_divergences_fail_the_trial_and_the_run_goes_on"):
    NOT_APPLICABLE[(_check, "botorch_mfkg")] = "too slow for the test budget; covered by test_peers.py"

CHECKS = sorted(name for name, fn in vars(contract).items()
                if name.startswith("test_") and callable(fn) and list(inspect.signature(fn).parameters) == ["name"])
PARAMS = [pytest.param(check, peer, id=f"{check.removeprefix('test_')}[{peer}]",
                       marks=[pytest.mark.slow] if peer in SLOW else [])
          for peer in peer_names() for check in CHECKS]


def _make(name: str, problem: Any, seed: int = 0, **options: Any) -> Any:
    return make_peer(name, problem, seed=seed, **options)


@pytest.mark.parametrize(("check", "peer"), PARAMS)
def test_generic_contract(check: str, peer: str, monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        peer_class(peer)
    except ImportError as e:
        pytest.skip(f"{peer}: {type(e).__name__}: {e}")
    if (check, peer) in NOT_APPLICABLE:
        pytest.skip(NOT_APPLICABLE[(check, peer)])
    monkeypatch.setattr(contract, "make_scheduler", _make)
    monkeypatch.setattr(contract, "SMALL_RUN_OPTIONS", SMALL_RUN_OPTIONS)
    getattr(contract, check)(peer)


def test_the_contract_suite_was_found() -> None:
    assert {"test_replay_reproduces_state_and_next_answers",
            "test_crashes_and_divergences_fail_the_trial_and_the_run_goes_on"} <= set(CHECKS)
