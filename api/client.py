"""The Python SDK: a typed client over httpx for the ``/v1`` REST API.

Retries: calls that are idempotent by the API's design (every GET and DELETE; ask, which is idempotent per
client id; measurements, which are unique per (trial, step); complete and fail, which are no-ops when
repeated) are retried with exponential backoff and jitter on transport errors and on 429/502/503/504.
State transitions (start/pause/resume/cancel) and create are sent once, except when the connection was
refused before anything was sent.

Errors are typed (``api.errors``): ``NotFoundError`` for 404, ``ConflictError`` for 409,
``InvalidArgumentError`` for 422 (with ``.field``), and so on.
"""

from __future__ import annotations

import math
import os
import random
import socket
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import yaml
from pydantic import ValidationError

from api.errors import InvalidArgumentError, ScaleLadderError, TransportError, error_from_response, invalid_argument
from api.schemas import (BatchResult, Decision, Measurement, Page, ParetoPoint, Progress, Recommendation,
                         ReportResult, RoundResult,
                         ShouldStop, Study, StudySpec, StudyState, SuggestResponse, Trial, TrialState)


def _wire(value: float) -> float | str:
    """httpx refuses NaN/inf in JSON; the API takes them as strings."""
    value = float(value)
    if math.isfinite(value):
        return value
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


def load_study_spec(source: StudySpec | Mapping[str, Any] | str | Path, **overrides: Any) -> StudySpec:
    """A :class:`StudySpec` from a spec, a dict, or a YAML/JSON file path, with top-level ``overrides``.

    Bad input raises :class:`InvalidArgumentError` worded as the service's 422 would be (``space[0].high:
    ...``), so a caller handles one error whether the SDK or the service found the problem."""
    if isinstance(source, StudySpec):
        raw: dict[str, Any] = source.model_dump(mode="json", exclude_unset=True)
    elif isinstance(source, Mapping):
        raw = dict(source)
    else:
        with open(source, encoding="utf-8") as fh:
            try:
                raw = yaml.safe_load(fh) or {}
            except yaml.YAMLError as e:  # a malformed file is bad input like any other
                raise InvalidArgumentError(f"not valid YAML: {e}") from None
        if not isinstance(raw, dict):
            raise InvalidArgumentError("a study file must hold a mapping at the top level")
    raw.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return StudySpec.model_validate(raw)
    except ValidationError as e:
        raise invalid_argument(e.errors()) from None


class Client:
    """``Client(url, token)``: the entry point of the SDK. Use as a context manager or call :meth:`close`."""

    def __init__(self, url: str, token: str | None = None, *, timeout: float = 30.0, retries: int = 4,
                 backoff: float = 0.2, client_id: str | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        headers = {"User-Agent": "scaleladder-sdk/0.1"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout, transport=transport)
        self.retries = retries
        self.backoff = backoff
        #: the default client id for ask: one per Client object (a worker), stable across its retries
        self.client_id = client_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"

    # -- plumbing ------------------------------------------------------------------------------------
    def request(self, method: str, path: str, *, json: Any = None, params: Mapping[str, Any] | None = None,
                idempotent: bool | None = None) -> Any:
        """Send one API call; decode JSON; raise the typed error. Retries only idempotent calls."""
        if idempotent is None:
            idempotent = method in ("GET", "HEAD", "DELETE", "PUT")
        attempts = 1 + max(self.retries, 0)
        params = {k: v for k, v in (params or {}).items() if v is not None}
        last: ScaleLadderError | None = None
        for attempt in range(attempts):
            try:
                resp = self._http.request(method, path, json=json, params=params)
            except httpx.ConnectError as e:  # nothing reached the server: safe to retry anything
                last = TransportError(f"cannot connect to {self._http.base_url}: {e}")
            except httpx.TransportError as e:
                last = TransportError(f"{method} {path}: {type(e).__name__}: {e}")
                if not idempotent:
                    raise last from e
            else:
                if resp.status_code < 400:
                    return resp.json() if resp.content else None
                try:
                    body: Any = resp.json()
                except ValueError:
                    body = resp.text
                last = error_from_response(resp.status_code, body)
                if not (idempotent and last.retryable):
                    raise last
            if attempt + 1 < attempts:
                time.sleep(self.backoff * (2 ** attempt) * (0.5 + random.random()))
        raise last if last is not None else TransportError(f"{method} {path}: no attempt was made")

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- studies ---------------------------------------------------------------------------------------
    def create_study(self, spec: StudySpec | Mapping[str, Any] | str | Path | None = None, /, *,
                     start: bool = True, **fields: Any) -> "StudyHandle":
        """Create a study from a spec, a dict, a YAML file path, or keyword fields (``name=..., space=...``),
        and start it unless ``start=False``."""
        full = load_study_spec(spec if spec is not None else {}, **fields)
        study = StudyHandle(self, Study.model_validate(
            self.request("POST", "/v1/studies", json=full.model_dump(mode="json", exclude_none=True))))
        if start:
            study.start()
        return study

    def get_study(self, study_id: int) -> "StudyHandle":
        return StudyHandle(self, Study.model_validate(self.request("GET", f"/v1/studies/{int(study_id)}")))

    def iter_studies(self, *, state: StudyState | str | None = None, name: str | None = None,
                     page_size: int = 100) -> Iterator["StudyHandle"]:
        token = None
        while True:
            page = Page[Study].model_validate(self.request("GET", "/v1/studies", params={
                "state": StudyState(state).value if state else None, "name": name, "page_size": page_size,
                "page_token": token}))
            for s in page.items:
                yield StudyHandle(self, s)
            token = page.next_page_token
            if not token:
                return

    def list_studies(self, *, state: StudyState | str | None = None, name: str | None = None) -> list["StudyHandle"]:
        return list(self.iter_studies(state=state, name=name))

    def get_trial(self, trial_id: int) -> "TrialHandle":
        trial = Trial.model_validate(self.request("GET", f"/v1/trials/{int(trial_id)}"))
        return TrialHandle(self, trial)

    def healthy(self) -> bool:
        try:
            self.request("GET", "/readyz")
        except ScaleLadderError:
            return False
        return True


class StudyHandle:
    """A study on the server. ``data`` is the last fetched :class:`api.schemas.Study`."""

    def __init__(self, client: Client, data: Study) -> None:
        self.client = client
        self.data = data

    def __repr__(self) -> str:
        return f"StudyHandle(id={self.id}, name={self.name!r}, state={self.state.value})"

    @property
    def id(self) -> int:
        return self.data.id

    @property
    def name(self) -> str:
        return self.data.name

    @property
    def state(self) -> StudyState:
        return self.data.state

    def _set(self, raw: Any) -> "StudyHandle":
        self.data = Study.model_validate(raw)
        return self

    def refresh(self) -> "StudyHandle":
        return self._set(self.client.request("GET", f"/v1/studies/{self.id}"))

    # -- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> "StudyHandle":
        return self._set(self.client.request("POST", f"/v1/studies/{self.id}:start"))

    def pause(self) -> "StudyHandle":
        return self._set(self.client.request("POST", f"/v1/studies/{self.id}:pause"))

    def resume(self) -> "StudyHandle":
        return self._set(self.client.request("POST", f"/v1/studies/{self.id}:resume"))

    def cancel(self) -> "StudyHandle":
        return self._set(self.client.request("POST", f"/v1/studies/{self.id}:cancel"))

    def delete(self) -> None:
        self.client.request("DELETE", f"/v1/studies/{self.id}")

    # -- trials ----------------------------------------------------------------------------------------
    def trials(self, state: TrialState | str | None = None) -> list[Trial]:
        out: list[Trial] = []
        token = None
        while True:
            page = Page[Trial].model_validate(self.client.request("GET", f"/v1/studies/{self.id}/trials", params={
                "state": TrialState(state).value if state else None, "page_size": 500, "page_token": token}))
            out.extend(page.items)
            token = page.next_page_token
            if not token:
                return out

    def ask_many(self, count: int = 1, *, client_id: str | None = None) -> tuple[list["TrialHandle"], StudyState]:
        """One ask: up to ``count`` trials (the client's live ones first) and the study's state."""
        resp = SuggestResponse.model_validate(self.client.request(
            "POST", f"/v1/studies/{self.id}/trials:suggest",
            json={"client_id": client_id or self.client.client_id, "count": count}, idempotent=True))
        self.data = self.data.model_copy(update={"state": resp.study_state})
        return [TrialHandle(self.client, t, self) for t in resp.trials], resp.study_state

    def ask(self, *, client_id: str | None = None, wait: bool = True, poll_interval: float = 0.5,
            timeout: float | None = None) -> "TrialHandle | None":
        """The next trial to run, or ``None`` once the study is over. While the study is running (or paused)
        but has no work right now, waits and asks again (unless ``wait=False``)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            trials, state = self.ask_many(1, client_id=client_id)
            if trials:
                return trials[0]
            if state.is_final or not wait or (deadline is not None and time.monotonic() >= deadline):
                return None
            time.sleep(poll_interval)

    def report_batch(self, measurements: Iterable[Mapping[str, Any] | tuple]) -> BatchResult:
        """Send many measurements at once: dicts with ``trial_id, step, value`` (and optional ``metrics``,
        ``domains``, ``elapsed_seconds``, ``checkpoint``) or ``(trial_id, step, value)`` tuples. An adaptive
        study answers each trial's new mixture in ``adapted``."""
        items = []
        for m in measurements:
            if isinstance(m, tuple):
                trial_id, step, value = m
                m = {"trial_id": trial_id, "step": step, "value": value}
            item = dict(m)
            item["value"] = _wire(item["value"])
            for key in ("metrics", "domains"):
                if item.get(key):
                    item[key] = {k: _wire(v) for k, v in item[key].items()}
            items.append(item)
        return BatchResult.model_validate(self.client.request(
            "POST", f"/v1/studies/{self.id}/measurements:batch", json={"measurements": items}, idempotent=True))

    # -- results -----------------------------------------------------------------------------------
    def recommendation(self) -> Recommendation:
        return Recommendation.model_validate(self.client.request("GET", f"/v1/studies/{self.id}/recommendation"))

    def best(self) -> Recommendation:
        """The best parameters for the target fidelity (the scheduler's recommendation)."""
        return self.recommendation()

    def pareto(self) -> list[ParetoPoint]:
        """A multi-objective study's Pareto set at the target (values per objective, best in the primary
        objective first); ``[]`` for a single-objective study."""
        return list(self.recommendation().pareto or [])
    def round_result(self) -> RoundResult:
        """A playbook round's answer (a study with ``round``): per scientific value its best config, the
        seeds' values at the target and whether it differs from the best beyond seed noise. A study without
        ``round`` raises ``ConflictError``."""
        return RoundResult.model_validate(self.client.request("GET", f"/v1/studies/{self.id}/round"))

    def progress(self) -> Progress:
        return Progress.model_validate(self.client.request("GET", f"/v1/studies/{self.id}/progress"))

    def wait(self, *, timeout: float | None = None, poll_interval: float = 1.0,
             show_progress: bool = True) -> "StudyHandle":
        """Block until the study reaches a final state (or ``timeout``), with a rich progress bar."""
        from rich.progress import BarColumn, Progress as Bar, TextColumn, TimeElapsedColumn

        deadline = None if timeout is None else time.monotonic() + timeout
        with Bar(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.percentage:>5.1f}%"),
                 TextColumn("{task.fields[info]}"), TimeElapsedColumn(), disable=not show_progress) as bar:
            task = bar.add_task(f"study {self.id} {self.name}", total=1.0, info="")
            while True:
                p = self.progress()
                best = "-" if p.best_value is None else f"{p.best_value:.5g}"
                # fraction_done is budget spent as the service counts it (service/progress.py), never time
                bar.update(task, completed=p.fraction_done or 0.0,
                           info=f"{p.state.value}  trials {p.n_trials}" + (f"/{p.max_trials}" if p.max_trials else "")
                                + f"  cost {p.cost_spent:.2f}" + (f"/{p.max_cost:g}" if p.max_cost else "")
                                + f"  best {best}")
                if p.state.is_final or (deadline is not None and time.monotonic() >= deadline):
                    break
                time.sleep(poll_interval)
        return self.refresh()


class TrialHandle:
    """A trial handed to this worker: run ``params`` at ``size`` from ``start_step`` to ``steps``."""

    def __init__(self, client: Client, data: Trial, study: StudyHandle | None = None) -> None:
        self.client = client
        self.data = data
        self.study = study
        self.last_result: ReportResult | None = None

    def __repr__(self) -> str:
        return (f"TrialHandle(id={self.id}, size={self.size!r}, steps={self.start_step}->{self.steps}, "
                f"state={self.data.state.value})")

    @property
    def id(self) -> int:
        return self.data.id

    @property
    def number(self) -> int:
        return self.data.number

    @property
    def params(self) -> dict[str, Any]:
        return self.data.params

    @property
    def size(self) -> str:
        return self.data.size

    @property
    def steps(self) -> int:
        return self.data.steps

    @property
    def start_step(self) -> int:
        return self.data.start_step

    @property
    def replicate(self) -> int:
        """0 for a search trial; k > 0 for a confirmation re-run: seed your run with it (a playbook round's
        seeds 1..k re-run each scientific value's best config)."""
        return self.data.replicate

    @property
    def adapted(self) -> dict[str, float] | None:
        """An adaptive study's current mixture for this trial (from the hand-out, then from each report's
        answer); ``None`` when the study adapts nothing."""
        return self.data.adapted

    @property
    def current_params(self) -> dict[str, Any]:
        """``params`` with the adapted mixture in place: what to train on from the last report on."""
        return self.data.current_params

    def report_steps(self) -> list[int]:
        """The steps this segment should report at: every ``report_every`` after ``start_step``, and the end
        (:meth:`api.schemas.StepRange.segment_steps`, the rule the service checks reports against)."""
        if self.study is None:  # a trial fetched on its own: no study spec to read the grid from
            return list(range(self.start_step + 1, self.steps + 1))
        return self.study.data.fidelity.steps.segment_steps(self.start_step, self.steps)

    def report(self, step: int, value: float, *, metrics: Mapping[str, float] | None = None,
               domains: Mapping[str, float] | None = None, elapsed_seconds: float | None = None,
               checkpoint: str | None = None) -> Decision:
        """Report the objective at ``step``; the answer says CONTINUE, PAUSE (keep the checkpoint) or STOP.
        A NaN/inf value is accepted: the trial is recorded as diverged and the answer is STOP.

        ``domains`` is the objective per data domain (validation loss per mixture component); in an
        adaptive study the answer carries the mixture to train on next, which :attr:`adapted` and
        :attr:`current_params` then hold."""
        body: dict[str, Any] = {"step": int(step), "value": _wire(value), "segment_start": self.start_step}
        if metrics:
            body["metrics"] = {k: _wire(v) for k, v in metrics.items()}
        if domains:
            body["domains"] = {k: _wire(v) for k, v in domains.items()}
        if elapsed_seconds is not None:
            body["elapsed_seconds"] = float(elapsed_seconds)
        if checkpoint is not None:
            body["checkpoint"] = checkpoint
        self.last_result = ReportResult.model_validate(
            self.client.request("POST", f"/v1/trials/{self.id}/measurements", json=body, idempotent=True))
        update: dict[str, Any] = {"state": self.last_result.trial_state, "last_step": int(step)}
        if self.last_result.adapted is not None:
            update["adapted"] = self.last_result.adapted
        self.data = self.data.model_copy(update=update)
        return self.last_result.decision

    def should_stop(self) -> bool:
        answer = ShouldStop.model_validate(self.client.request("GET", f"/v1/trials/{self.id}:should_stop"))
        return answer.should_stop

    def complete(self, checkpoint: str | None = None) -> Trial:
        self.data = Trial.model_validate(self.client.request(
            "POST", f"/v1/trials/{self.id}:complete",
            json={"checkpoint": checkpoint, "segment_start": self.start_step}, idempotent=True))
        return self.data

    def heartbeat(self) -> Trial:
        """Tell the service this worker still runs the trial's segment, so its lease (the server's
        ``trial_lease_seconds``, an hour by default) starts again; every report does the same. Raises the
        service's 409 once the segment ended (the trial was reclaimed or paused): stop training it then."""
        self.data = Trial.model_validate(self.client.request(
            "POST", f"/v1/trials/{self.id}:heartbeat", json={"segment_start": self.start_step}, idempotent=True))
        return self.data

    def fail(self, reason: str = "") -> Trial:
        self.data = Trial.model_validate(self.client.request(
            "POST", f"/v1/trials/{self.id}:fail",
            json={"reason": reason, "segment_start": self.start_step}, idempotent=True))
        return self.data

    def refresh(self) -> Trial:
        self.data = Trial.model_validate(self.client.request("GET", f"/v1/trials/{self.id}"))
        return self.data

    def measurements(self) -> list[Measurement]:
        raw = self.client.request("GET", f"/v1/trials/{self.id}/measurements")
        return [Measurement.model_validate(m) for m in raw]
