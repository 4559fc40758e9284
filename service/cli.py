"""The ``scaleladder`` command line (typer + rich).

Server side (talks to the database named by ``--database-url`` / ``SCALELADDER_DATABASE_URL``):
``serve``, ``db upgrade``, ``db current``, ``token create|list|revoke``. Client side (talks to a running service at
``--url`` / ``SCALELADDER_URL`` with ``--token`` / ``SCALELADDER_TOKEN``): ``study create|list|show|watch|start|pause|resume|cancel|delete``.
And ``demo``, which runs a whole ask/tell study in-process.
"""

from __future__ import annotations

import errno
import json
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Iterator, Optional

import typer
from rich.markup import escape
from rich.table import Table

from api.client import Client, StudyHandle, load_study_spec
from api.errors import ScaleLadderError
from api.schemas import ParamRole, StudyState, TrialState
from service.cli_common import App, console, fail as _fail
from service.cli_scaling import app as scaling_app
from service.settings import ExecutorKind

app = App(name="scaleladder", help="Multi-fidelity, multi-scale hyperparameter tuning service.",
          no_args_is_help=True, pretty_exceptions_enable=False)
db_app = App(help="Database schema.", no_args_is_help=True)
token_app = App(help="API tokens.", no_args_is_help=True)
study_app = App(help="Studies on a running service.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(token_app, name="token")
app.add_typer(study_app, name="study")
app.add_typer(scaling_app, name="scaling")

DatabaseUrl = Annotated[Optional[str], typer.Option(
    "--database-url", envvar="SCALELADDER_DATABASE_URL",
    help="SQLAlchemy URL (default: an embedded SQLite file in ~/.scaleladder).", show_default=False)]
StudyId = Annotated[int, typer.Argument(help="Study id.")]
Url = Annotated[str, typer.Option("--url", envvar="SCALELADDER_URL", help="Service URL.")]
Token = Annotated[Optional[str], typer.Option("--token", envvar="SCALELADDER_TOKEN", help="API token.",
                                               show_default=False)]


def _settings(database_url: str | None, **kw):
    from service.settings import Settings

    return Settings(**({"database_url": database_url} if database_url else {}), **kw)


# ----------------------------------------------------------------------------------------- server side
@app.command()
def serve(database_url: DatabaseUrl = None,
          host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
          port: Annotated[int, typer.Option(help="Port to bind.")] = 8000,
          migrate: Annotated[Optional[bool], typer.Option(
              "--migrate/--no-migrate", help="Upgrade the schema at start (default: only for SQLite).",
              show_default=False)] = None,
          log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
          executor: Annotated[ExecutorKind, typer.Option(
              "--executor", envvar="SCALELADDER_EXECUTOR",
              help="How started studies run: 'ray' (a local Ray, or the cluster at RAY_ADDRESS) or "
                   "'external' (ask/tell workers only).")] = ExecutorKind.RAY,
          startup_timeout: Annotated[float, typer.Option(
              help="Exit with status 3 when start-up (database, Ray connection, recovery of running "
                   "studies) has not finished within this many seconds, so that a container's restart "
                   "policy starts afresh; 0 waits forever.")] = 0.0) -> None:
    """Run the REST service under uvicorn."""
    import uvicorn

    from service.app import create_app

    # The served product runs studies on Ray by default; the app factory's own default stays 'external'
    # so embedding the app (tests, ask/tell-only deployments) never starts Ray by accident.
    settings = _settings(database_url, executor=executor,
                         **({} if migrate is None else {"migrate_on_startup": migrate}))
    # Bind first and keep the socket for uvicorn: building the app starts Ray and recovers RUNNING studies,
    # which a server that cannot listen must not do (it would run another server's studies, then fail).
    sock = _listen(host, port)
    console.print(f"serving on http://{host}:{port} (database {_redact(settings.database_url)}, "
                  f"executor {settings.executor.value}, auth {'on' if settings.auth_enabled else 'OFF'})")
    started = _startup_watchdog(startup_timeout)
    app_ = create_app(settings)
    started.set()
    server = uvicorn.Server(uvicorn.Config(app_, host=host, port=port, log_level=log_level))
    server.run(sockets=[sock])


def _startup_watchdog(timeout: float):
    """An event to set once start-up is done; unset after ``timeout`` seconds, the process exits (3).

    A Ray Client connection can hang for good: Ray's client proxier sometimes loses the server process it
    forks for a new client (a gRPC fork race, ray-project/ray#63202), and `ray.init` then blocks in its
    own clean-up. Seen on the Compose stack's first start; a restarted control plane connects."""
    import os
    import sys
    import threading

    started = threading.Event()
    if timeout > 0:
        def watch() -> None:
            if not started.wait(timeout):
                print(f"scaleladder serve: start-up did not finish within {timeout:g} s (a Ray Client "
                      "connection that never completed?); exiting with status 3", file=sys.stderr, flush=True)
                os._exit(3)
        threading.Thread(target=watch, name="startup-watchdog", daemon=True).start()
    return started


def _listen(host: str, port: int):
    """A TCP socket bound to ``host:port``; a clear error (exit 1) if the port is taken or the host wrong."""
    import socket

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as e:
        _fail(f"cannot listen on {host}:{port}: {e}")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: TIME_WAIT is no conflict
    try:
        sock.bind(address)
    except OSError as e:
        sock.close()
        reason = "the port is in use (another scaleladder serve?); pick another with --port" \
            if e.errno == errno.EADDRINUSE else e.strerror or str(e)
        _fail(f"cannot listen on {host}:{port}: {reason}. Nothing was started.")
    sock.set_inheritable(True)
    return sock


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@db_app.command("upgrade")
def db_upgrade(database_url: DatabaseUrl = None,
               revision: Annotated[str, typer.Option(help="Target revision.")] = "head") -> None:
    """Apply the Alembic migrations."""
    from service.db import make_engine
    from service.migrate import current_revision, upgrade

    settings = _settings(database_url)
    engine = make_engine(settings)
    try:
        upgrade(engine, revision)
        console.print(f"database {_redact(settings.database_url)} at revision {current_revision(engine)}")
    finally:
        engine.dispose()


@db_app.command("current")
def db_current(database_url: DatabaseUrl = None) -> None:
    """Show the schema revision of the database and the newest one this version ships."""
    from service.db import make_engine
    from service.migrate import current_revision, head_revision

    engine = make_engine(_settings(database_url))
    try:
        console.print(f"current {current_revision(engine)}, head {head_revision()}")
    finally:
        engine.dispose()


@contextmanager
def _tokens(settings: Any) -> Iterator[Any]:
    """The token repository in one transaction on the database of ``settings`` (migrated first on SQLite)."""
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from service.db import make_engine, make_session_factory, transaction
    from service.migrate import upgrade
    from service.repositories import TokenRepository

    engine = make_engine(settings)
    try:
        if settings.should_migrate_on_startup:
            upgrade(engine)
        with transaction(make_session_factory(engine)) as session:
            yield TokenRepository(session)
    except (OperationalError, ProgrammingError) as e:
        _fail(f"cannot use {_redact(settings.database_url)} ({type(e.orig).__name__}); "
              "run `scaleladder db upgrade` first")
    finally:
        engine.dispose()


@token_app.command("create")
def token_create(tenant: Annotated[str, typer.Option(help="Tenant the token acts for.")],
                 name: Annotated[Optional[str], typer.Option(help="A label for the token.")] = None,
                 expires_in: Annotated[Optional[str], typer.Option(
                     "--expires-in", help="How long the token is valid: 30d, 12h, 90m, 1d12h, seconds, or 'never' "
                                          "(default: SCALELADDER_TOKEN_LIFETIME, else never).",
                     show_default=False)] = None,
                 database_url: DatabaseUrl = None) -> None:
    """Create an API token for TENANT and print it (it is stored hashed and cannot be shown again)."""
    from service.settings import parse_duration

    settings = _settings(database_url)
    try:
        lifetime = settings.token_lifetime if expires_in is None else parse_duration(expires_in)
    except ValueError as e:
        _fail(f"--expires-in: {e}")
    with _tokens(settings) as tokens:
        token = tokens.create(tenant, name=name, expires_in=lifetime)
    typer.echo(token)


@token_app.command("list")
def token_list(tenant: Annotated[Optional[str], typer.Option(help="Only this tenant's tokens.")] = None,
               database_url: DatabaseUrl = None) -> None:
    """List tokens: id, tenant, name, created, expires, revoked (the tokens themselves are never stored)."""
    from service.models import utcnow

    with _tokens(_settings(database_url)) as tokens:
        now = utcnow()
        rows = [(str(r.id), r.tenant, r.name or "-", f"{r.created_at:%Y-%m-%d %H:%M}", _expiry(r.expires_at, now),
                 f"{r.revoked_at:%Y-%m-%d %H:%M}" if r.revoked_at else "-") for r in tokens.list(tenant)]
    table = Table("id", "tenant", "name", "created (UTC)", "expires (UTC)", "revoked (UTC)")
    for row in rows:
        table.add_row(*row)
    console.print(table)


def _expiry(expires_at: Any, now: Any) -> str:
    if expires_at is None:
        return "never"
    return f"{expires_at:%Y-%m-%d %H:%M}" + (" (expired)" if expires_at <= now else "")


@token_app.command("revoke")
def token_revoke(token_id: Annotated[int, typer.Argument(help="The token's id, as `token list` shows it.")],
                 database_url: DatabaseUrl = None) -> None:
    """Revoke a token: requests with it are 401 from the next request on (every request looks it up)."""
    with _tokens(_settings(database_url)) as tokens:
        row = tokens.revoke_id(token_id)
        if row is None:
            _fail(f"no token with id {token_id}")
        tenant = row.tenant
    typer.echo(f"token {token_id} of tenant {tenant} revoked")


# ----------------------------------------------------------------------------------------- client side
def _client(url: str, token: str | None) -> Client:
    return Client(url, token)


def _study_table(studies: list[StudyHandle]) -> Table:
    table = Table(title="studies")
    for col in ("id", "name", "state", "scheduler", "trials", "cost spent", "created"):
        table.add_column(col, justify="right" if col in ("id", "trials", "cost spent") else "left")
    for s in studies:
        d = s.data
        table.add_row(str(d.id), d.name, d.state.value, d.scheduler.name, str(d.n_trials), f"{d.cost_spent:.2f}",
                      d.created_at.strftime("%Y-%m-%d %H:%M:%S"))
    return table


@study_app.command("create")
def study_create(file: Annotated[Path, typer.Option("--file", "-f", exists=True, dir_okay=False,
                                                    help="Study YAML (see examples/).")],
                 url: Url = "http://127.0.0.1:8000", token: Token = None,
                 name: Annotated[Optional[str], typer.Option(help="Override the study name.")] = None,
                 start: Annotated[bool, typer.Option("--start/--no-start", help="Start it right away.")] = True
                 ) -> None:
    """Create a study from a YAML file."""
    try:
        spec = load_study_spec(file, name=name)
    except ScaleLadderError as e:  # checked before sending, worded as the service's 422 (field: message)
        _fail(f"{file}: {e}")
    try:
        with _client(url, token) as client:
            study = client.create_study(spec, start=start)
    except ScaleLadderError as e:
        _fail(e)
    console.print(f"created study [bold]{study.id}[/] ({study.name}), {study.state.value}")


@study_app.command("list")
def study_list(url: Url = "http://127.0.0.1:8000", token: Token = None,
               state: Annotated[Optional[StudyState], typer.Option(help="Only studies in this state.")] = None,
               name: Annotated[Optional[str], typer.Option(help="Only studies with this name.")] = None) -> None:
    """List your studies."""
    try:
        with _client(url, token) as client:
            studies = client.list_studies(state=state, name=name)
    except ScaleLadderError as e:
        _fail(str(e))
    console.print(_study_table(studies))


@study_app.command("show")
def study_show(study_id: StudyId,
               url: Url = "http://127.0.0.1:8000", token: Token = None,
               as_json: Annotated[bool, typer.Option("--json", help="Print the raw study JSON.")] = False) -> None:
    """Show a study, why it failed if it did, its progress and its current recommendation."""
    try:
        with _client(url, token) as client:
            study = client.get_study(study_id)
            progress = study.progress()
            failed = study.trials(TrialState.FAILED) if progress.trials_by_state.get(TrialState.FAILED) else []
            rec, rec_error = None, None
            if progress.n_trials:
                try:
                    rec = study.recommendation()
                except ScaleLadderError as e:  # the study and why it ended are still worth showing
                    rec_error = e
    except ScaleLadderError as e:
        _fail(e)
    if as_json:
        typer.echo(json.dumps({"study": study.data.model_dump(mode="json"),
                               "progress": progress.model_dump(mode="json"),
                               "failed_trials": [t.model_dump(mode="json") for t in failed],
                               "recommendation": rec.model_dump(mode="json") if rec else None}, indent=2))
        return
    console.print(_study_table([study]))
    if study.state is StudyState.FAILED:
        console.print(f"[red]failed:[/] {escape(study.data.error or 'no reason was recorded')}")
    elif study.data.error:
        console.print(f"[red]{study.state.value}:[/] {escape(study.data.error)}")
    if failed:
        reasons = Counter(t.failure or "no reason given" for t in failed)
        listed = "; ".join(f"{n} x {reason}" if n > 1 else reason for reason, n in reasons.most_common())
        console.print(f"[red]failed trials ({len(failed)}):[/] {escape(listed)}")
    counts = ", ".join(f"{n} {s.value}" for s, n in progress.trials_by_state.items()) or "none"
    best = "-" if progress.best_value is None else f"{progress.best_value:.6g}"
    console.print(f"trials: {counts}; measurements {progress.n_measurements}; "
                  f"cost {progress.cost_spent:.2f}" + (f"/{progress.max_cost:g}" if progress.max_cost else "")
                  + f"; best at target {best}")
    if study.data.round is not None:
        console.print(f"playbook round over {', '.join(p.name for p in study.data.space if p.role is ParamRole.SCIENTIFIC)}"
                      f" ({study.data.round.seeds} seeds per value): scaleladder study round {study.id}")
    if rec_error is not None:
        console.print(f"[yellow]no recommendation:[/] {escape(str(rec_error))}")
    if rec is not None:
        params = _format_params(rec.params)
        predicted = "n/a" if rec.predicted is None else f"{rec.predicted:.6g}"
        console.print(f"recommendation at ({rec.size}, {rec.steps} steps): {params}; predicted {predicted}")
        for w in rec.warnings:
            console.print(f"[yellow]warning:[/] {escape(w)}")
        if rec.pareto is not None:
            console.print(_pareto_table(rec))


def _pareto_table(rec: Any) -> Table:
    """A multi-objective study's Pareto set at the target: one row per config, value (± std) per objective."""
    table = Table(title=f"Pareto set at the target ({rec.size}, {rec.steps} steps): {len(rec.pareto)} configs")
    params = list(rec.pareto[0].params) if rec.pareto else []
    metrics = list(rec.objectives) + [m for p in rec.pareto[:1] for m in p.values if m not in rec.objectives]
    for name in ["trial"] + params + metrics:
        table.add_column(name, justify="right")
    for p in rec.pareto:
        cells = [str(p.trial_id or "-")]
        cells += [f"{v:.4g}" if isinstance(v, float) else str(v) for v in (p.params.get(k) for k in params)]
        for m in metrics:
            std = (p.stds or {}).get(m)
            cells.append(f"{p.values[m]:.4g}" + ("" if std is None else f" ± {std:.2g}") if m in p.values else "-")
        table.add_row(*cells)
    return table


def _format_params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def _num(value: float | None, fmt: str = ".6g") -> str:
    return "-" if value is None else format(value, fmt)


@study_app.command("round")
def study_round(study_id: StudyId,
                url: Url = "http://127.0.0.1:8000", token: Token = None,
                as_json: Annotated[bool, typer.Option("--json", help="Print the raw round JSON.")] = False) -> None:
    """A playbook round's answer: per scientific value, its seeds at the target and the test against the best."""
    try:
        with _client(url, token) as client:
            result = client.get_study(study_id).round_result()
    except ScaleLadderError as e:
        _fail(e)
    if as_json:
        typer.echo(json.dumps(result.model_dump(mode="json"), indent=2))
        return
    table = Table(title=f"study {study_id}: playbook round ({result.phase.value}), {result.seeds} seeds per value, "
                        f"Welch t-test against the best at alpha {result.alpha:g}")
    for column in (*result.scientific, "mean", "seed std", "seeds", "difference", "p", "distinguishable",
                   "search trials", "search cost", "config"):
        table.add_column(column, justify="left" if column in ("config", *result.scientific) else "right")
    for p in result.points:
        verdict = "best" if p.best else {True: "yes", False: "no", None: "-"}[p.distinguishable]
        seeds = f"{len(p.confirmations)}" + (f" +{p.pending} running" if p.pending else "") + \
            (f" ({p.failed} failed)" if p.failed else "")
        nuisance = {k: v for k, v in p.params.items() if k not in p.values}
        table.add_row(*(str(p.values[k]) for k in result.scientific), _num(p.mean), _num(p.std), seeds,
                      _num(p.difference, "+.4g"), _num(p.p_value, ".3g"), verdict, str(p.search_trials),
                      f"{p.search_cost:.2f}", _format_params(nuisance))
    console.print(table)
    for w in result.warnings + [w for p in result.points if p.best for w in p.warnings]:
        console.print(f"[yellow]warning:[/] {escape(w)}")


@study_app.command("watch")
def study_watch(study_id: StudyId,
                url: Url = "http://127.0.0.1:8000", token: Token = None,
                interval: Annotated[float, typer.Option(help="Seconds between polls.")] = 1.0,
                timeout: Annotated[Optional[float], typer.Option(help="Give up after this many seconds.")] = None
                ) -> None:
    """Follow a study with a progress bar until it ends."""
    try:
        with _client(url, token) as client:
            study = client.get_study(study_id).wait(timeout=timeout, poll_interval=interval)
    except ScaleLadderError as e:
        _fail(str(e))
    console.print(f"study {study.id} is {study.state.value}")


def _lifecycle(action: str, doc: str) -> None:
    """Register ``study ACTION ID``: one handler for the lifecycle actions the SDK's handle has."""

    def command(study_id: StudyId,
                url: Url = "http://127.0.0.1:8000", token: Token = None) -> None:
        try:
            with _client(url, token) as client:
                study = getattr(client.get_study(study_id), action)()
        except ScaleLadderError as e:
            _fail(str(e))
        console.print(f"study {study.id} ({study.name}) is {study.state.value}")

    command.__doc__ = doc
    study_app.command(action)(command)


for _action, _doc in (("start", "Start a pending study (one created with --no-start)."),
                      ("pause", "Pause a running study: no new trials are handed out."),
                      ("resume", "Resume a paused study."),
                      ("cancel", "Cancel a study: it ends now, its unfinished trials are stopped.")):
    _lifecycle(_action, _doc)


@study_app.command("delete")
def study_delete(study_id: StudyId,
                 url: Url = "http://127.0.0.1:8000", token: Token = None,
                 yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False
                 ) -> None:
    """Delete a study with its trials and measurements (cannot be undone)."""
    if not yes and not typer.confirm(f"delete study {study_id} with all its trials and measurements?"):
        raise typer.Exit(1)
    try:
        with _client(url, token) as client:
            client.get_study(study_id).delete()
    except ScaleLadderError as e:
        _fail(str(e))
    console.print(f"study {study_id} deleted")


# ----------------------------------------------------------------------------------------- demo
@app.command()
def demo(scheduler: Annotated[Optional[str], typer.Option(
             help="Scheduler name (default: the best registered multi-fidelity one).", show_default=False)] = None,
         budget: Annotated[Optional[float], typer.Option(
             help="Budget in target-run costs (default 6 on Ray, 8 with --external).", show_default=False)] = None,
         trials: Annotated[Optional[int], typer.Option(help="Also cap the number of trials.")] = None,
         seed: Annotated[int, typer.Option(help="Scheduler seed.")] = 0,
         external: Annotated[bool, typer.Option(
             "--external", help="Run the ask/tell demo (SDK workers, synthetic objective) instead of Ray.")] = False,
         dashboard: Annotated[bool, typer.Option(
             "--dashboard/--no-dashboard",
             help="Start Ray with its dashboard (about 2.5 s more and 1-2 GiB of memory).")] = True,
         ) -> None:
    """Run a whole study: by default the muP transformer on a local Ray (temporary SQLite); with
    --external, ask/tell workers against a built-in multi-scale objective."""
    try:
        if external:
            from service.demo import run_demo

            run_demo(console, scheduler=scheduler, max_cost=budget or 8.0, max_trials=trials, seed=seed)
        else:
            from service.cli_ray import run_ray_demo

            run_ray_demo(console, scheduler=scheduler, max_cost=budget or 6.0, max_trials=trials, seed=seed,
                         dashboard=dashboard)
    except ScaleLadderError as e:
        _fail(str(e))


if __name__ == "__main__":  # pragma: no cover
    app()
