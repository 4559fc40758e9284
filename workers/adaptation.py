"""How an adaptive study's mixture reaches its trials on Ray: a small named actor per study, the board.

Tune's trainable reports results to the study's runner but has no channel back except CONTINUE / PAUSE /
STOP, so the runner posts the policy's answer to each report here (``post``) and the trainable, right
after ``tune.report`` returns, waits for the answer to its step (``wait``). On (re)start a trial asks the
mixture in effect after its start step (``at``): a trial Tune restarts from an earlier checkpoint gets the
mixture it had at that step, as does one the runner re-issues after its own restart (a restarted runner
seeds a new board from the database, ``seed``).

Keys are the scheduler's trial ids; a mixture is ``{component: weight}``.
"""

from __future__ import annotations

import asyncio
import bisect
from typing import Any

import ray

#: seconds a trainable waits for the answer to a report before it keeps its current mixture
DEFAULT_WAIT_SECONDS = 120.0


def board_name(study_id: int | str) -> str:
    return f"scaleladder-mixtures-{study_id}"


@ray.remote(num_cpus=0)
class MixtureBoard:
    """The mixtures sent to each trial of one study, by step."""

    def __init__(self) -> None:
        self._sent: dict[int, list[tuple[int, dict[str, float]]]] = {}
        self._changed = asyncio.Condition()

    def seed(self, sent: dict[int, list[tuple[int, dict[str, float]]]]) -> None:
        """Every mixture sent so far (``AdaptationPolicy.sent`` per trial), from the database."""
        for trial_id, pairs in sent.items():
            for step, mixture in pairs:
                self._put(int(trial_id), int(step), mixture)

    def _put(self, trial_id: int, step: int, mixture: dict[str, float]) -> None:
        pairs = self._sent.setdefault(trial_id, [])
        i = bisect.bisect_left([s for s, _ in pairs], step)
        if i < len(pairs) and pairs[i][0] == step:
            pairs[i] = (step, dict(mixture))
        else:
            pairs.insert(i, (step, dict(mixture)))

    async def post(self, trial_id: int, step: int, mixture: dict[str, float]) -> None:
        """The policy's answer to the trial's report at ``step``."""
        async with self._changed:
            self._put(int(trial_id), int(step), mixture)
            self._changed.notify_all()

    def at(self, trial_id: int, step: int) -> dict[str, float] | None:
        """The mixture in effect after the trial's report at the largest step <= ``step``."""
        pairs = self._sent.get(int(trial_id), [])
        i = bisect.bisect_right([s for s, _ in pairs], int(step))
        return dict(pairs[i - 1][1]) if i else None

    async def wait(self, trial_id: int, step: int, timeout: float = DEFAULT_WAIT_SECONDS) -> dict[str, float] | None:
        """The answer to the trial's report at ``step`` once posted (``None`` after ``timeout`` seconds)."""
        def posted() -> bool:
            return any(s == int(step) for s, _ in self._sent.get(int(trial_id), []))

        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(posted), timeout)
            except asyncio.TimeoutError:
                return None
        return self.at(trial_id, step)


def get_board(name: str, namespace: str | None = None) -> Any:
    """The board actor named ``name`` (created by the study's runner)."""
    return ray.get_actor(name, namespace=namespace)
