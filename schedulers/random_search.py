"""Random search at the target fidelity: the baseline every other scheduler must beat."""

from __future__ import annotations

from typing import Any, Sequence

from schedulers.base import Scheduler


class RandomSearch(Scheduler):
    """Samples the space uniformly and trains every trial at the target (size, steps); never stops early."""

    name = "random"

    def _propose(self, n: int) -> Sequence[tuple[dict[str, Any], str, int]]:
        target = self.problem.target
        return [(p, target.size, target.steps) for p in self.space.sample(self._rng(), n)]
