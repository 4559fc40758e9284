"""Fixtures of the deployment tests."""

from __future__ import annotations

from typing import Iterator

import pytest

from tests.deploy.artifacts import HelmEngine, helm_engine_available


@pytest.fixture(scope="session")
def helm() -> Iterator[HelmEngine]:
    """Helm's engine for the chart under helm/scaleladder, one child process for the whole run."""
    if not helm_engine_available():
        pytest.skip("pip install helm-python-sdk (test extra): Helm's engine without a helm binary")
    engine = HelmEngine()
    try:
        yield engine
    finally:
        engine.close()
