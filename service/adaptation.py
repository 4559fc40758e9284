"""An adaptive study's in-trial policy (``schedulers/adaptive``) inside one request's transaction.

Per request, the policy state of each trial the request touches is rebuilt by replaying that trial's
events (``adaptation_events``) into a fresh policy: trials are independent, the replay computes nothing
until a mixture is asked for, so a request pays for its own trials only. New events are written in the
same transaction as the scheduler's, and the trial row mirrors the current mixture (``trials.adapted``).
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from sqlalchemy.orm import Session

from api.schemas import StudySpec
from schedulers import Problem
from schedulers.adaptive import AdaptationPolicy, AdaptiveSetup, InvalidAdaptationError, Mixture
from service.errors import InvalidArgumentError
from service.repositories import AdaptationEventRepository


def build_adaptive(spec: StudySpec, problem: Problem) -> AdaptiveSetup | None:
    """The study's adaptive setup, checked against its space (a 422 naming the field), or ``None``."""
    if spec.adaptive is None:
        return None
    try:
        return AdaptiveSetup.from_dict(spec.adaptive.model_dump(mode="json"), problem.space)
    except InvalidAdaptationError as e:
        raise InvalidArgumentError(e.message, field=e.field or "adaptive") from None


class StudyAdaptation:
    """The policy of one adaptive study for the trials one request touches."""

    def __init__(self, session: Session, study_id: int, setup: AdaptiveSetup, seed: int) -> None:
        self.session = session
        self.study_id = study_id
        self.setup = setup
        self.seed = seed
        self.repo = AdaptationEventRepository(session)
        #: trial number -> (its policy, number of its events already stored)
        self._trials: dict[int, tuple[AdaptationPolicy, int]] = {}

    @property
    def components(self) -> tuple[str, ...]:
        return self.setup.components

    def check_domains(self, domains: Mapping[str, Any], field: str) -> None:
        """A report's per-domain values must cover exactly the group's components (422 naming ``field``)."""
        if domains and set(domains) != set(self.components):
            raise InvalidArgumentError(f"per-domain values must name exactly the adaptive group's components "
                                       f"{list(self.components)}; got {sorted(domains)}", field=field)

    def load(self, numbers: Iterable[int]) -> None:
        """Replay the events of these trials (once per request)."""
        todo = [n for n in dict.fromkeys(numbers) if n not in self._trials]
        if not todo:
            return
        events = self.repo.load(self.study_id, todo)
        for n in todo:
            evs = events.get(n, [])
            self._trials[n] = (self.setup.make_policy(self.seed).replay(evs), len(evs))

    def _policy(self, number: int) -> AdaptationPolicy:
        self.load([number])
        return self._trials[number][0]

    def start(self, number: int, params: Mapping[str, Any]) -> Mixture:
        return self.setup.start(self._policy(number), number, params)

    def observe(self, number: int, step: int, domains: Mapping[str, float]) -> Mixture:
        return self._policy(number).observe(number, step, domains)

    def mixture(self, number: int, step: int | None = None) -> Mixture | None:
        policy = self._policy(number)
        return policy.mixture(number, step) if number in policy.trials else None

    def policy(self, number: int) -> AdaptationPolicy:
        """The trial's policy (e.g. for :meth:`AdaptationPolicy.sent`)."""
        return self._policy(number)

    def persist(self) -> None:
        """Write the events recorded since the trials were loaded."""
        from service.scheduling import encode_event  # the one JSON-safe encoding of events

        for number, (policy, stored) in list(self._trials.items()):
            new = policy.events[stored:]
            if new:
                self.repo.append(self.study_id, number, stored, [encode_event(e) for e in new])
                self._trials[number] = (policy, len(policy.events))
