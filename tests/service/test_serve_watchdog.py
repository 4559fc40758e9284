"""`scaleladder serve --startup-timeout`: a start-up that hangs (a Ray Client connection that never
completes) exits with status 3 so that a container's restart policy starts afresh."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)


def test_a_start_up_that_hangs_exits_with_status_3() -> None:
    hung = _run("import time; from service.cli import _startup_watchdog; _startup_watchdog(0.3); time.sleep(30)")
    assert hung.returncode == 3, hung.stderr
    assert "start-up did not finish within 0.3 s" in hung.stderr


def test_a_start_up_that_finishes_in_time_keeps_running() -> None:
    fine = _run("import time; from service.cli import _startup_watchdog; _startup_watchdog(0.3).set(); "
                "time.sleep(0.8); print('still here')")
    assert fine.returncode == 0 and "still here" in fine.stdout, fine.stderr


def test_no_timeout_never_exits() -> None:
    forever = _run("import time; from service.cli import _startup_watchdog; _startup_watchdog(0); "
                   "time.sleep(0.5); print('still here')")
    assert forever.returncode == 0 and "still here" in forever.stdout
