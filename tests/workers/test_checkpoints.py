"""Checkpoints are loaded without running code: a checkpoint path can come from a client's report."""

from __future__ import annotations

import os

import pytest
import torch

from workers.errors import UnsafeCheckpointError
from workers.trainable import STATE_FILE, load_checkpoint_state


class RunsCodeWhenUnpickled:
    """What a hostile checkpoint holds: unpickling it would call ``os.system``."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def built_in_state() -> dict:
    """What the built-in workloads save: model and optimizer state dicts and the step."""
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    return {"model": model.state_dict(), "optimizer": opt.state_dict(), "step": 40}


def test_state_dicts_load_and_a_checkpoint_that_would_run_code_is_refused(tmp_path):
    good = tmp_path / "good"
    good.mkdir()
    state = built_in_state()
    torch.save(state, good / STATE_FILE)
    loaded = load_checkpoint_state(good)
    assert loaded["step"] == 40
    torch.testing.assert_close(loaded["model"]["weight"], state["model"]["weight"])
    assert loaded["optimizer"]["param_groups"][0]["lr"] == pytest.approx(1e-3)

    bad = tmp_path / "bad"
    bad.mkdir()
    marker = tmp_path / "code-ran"
    torch.save({"step": 1, "payload": RunsCodeWhenUnpickled(str(marker))}, bad / STATE_FILE)
    with pytest.raises(UnsafeCheckpointError, match="refused"):
        load_checkpoint_state(bad)
    assert not marker.exists()

    assert load_checkpoint_state(tmp_path / "empty") is None
