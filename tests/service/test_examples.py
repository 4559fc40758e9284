"""Every example study file is a valid study (the same checks as POST /v1/studies)."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.client import load_study_spec
from service.scheduling import validate_spec

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_is_a_valid_study(path):
    spec = load_study_spec(path)
    validate_spec(spec)
    assert spec.name and spec.space and spec.fidelity.sizes


def test_there_are_examples():
    assert len(EXAMPLES) >= 3
