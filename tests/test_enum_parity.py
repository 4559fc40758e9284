"""The wire contract (api/, light: no torch) restates the scheduler library's enums; they must not drift."""

import pytest

import api.schemas as wire
import schedulers.adaptive as adaptive
import schedulers.base as base
import schedulers.objectives as objectives
import schedulers.playbook as playbook
import schedulers.problem as problem
import schedulers.space as space


@pytest.mark.parametrize("wire_enum, library_enum", [
    (wire.Decision, base.Decision),
    (wire.Direction, problem.Direction),
    (wire.ParamType, space.ParamType),
    (wire.ParamRole, space.ParamRole),
    (wire.AdaptivePolicyKind, adaptive.PolicyKind),
    (wire.ConstraintOp, objectives.ConstraintOp),
    (wire.RoundPhase, playbook.RoundPhase),
    (wire.RoundTest, playbook.RoundTest),
])
def test_wire_enum_has_the_library_values(wire_enum, library_enum) -> None:
    assert {m.value for m in wire_enum} == {m.value for m in library_enum}


def test_every_scheduler_trial_state_exists_on_the_wire() -> None:
    # the service adds no scheduler state of its own, but may name pending trials it has not handed out
    assert {m.value for m in base.TrialState} <= {m.value for m in wire.TrialState}
