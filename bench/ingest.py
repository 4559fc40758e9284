"""Ingest throughput: measurements/s through the batch endpoint into PostgreSQL, next to Optuna's RDB storage.

    python -m bench.ingest                      # defaults: 50,000 measurements, batches of 1,000
    python -m bench.ingest --measurements 200000 --batch 2000 --clients 2 --studies 2

Both sides write to the same PostgreSQL server in the same run, each into a fresh database of its own
(created here, dropped at the end):

- ScaleLadder: ``scaleladder serve`` in a subprocess (uvicorn, one process), the SDK's ``report_batch`` over
  HTTP from ``--clients`` threads, each sending its share of trials' curves in batches. Every measurement is
  validated, told to the scheduler (which records a REPORT event) and stored: a measurement row and an
  event row per measurement, in one transaction per batch.
- Optuna: ``RDBStorage`` on the same server, ``trial.report(value, step)`` for every step of every trial
  (Optuna's per-step intermediate-value path; there is no batch API), ``study.tell`` at the end.

Only measured numbers are printed: counts, wall-clock seconds, rates and their ratio. The stored counts are
checked against what was sent before any rate is reported.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
import platform
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from api.client import Client

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@dataclass
class Rate:
    name: str
    count: int
    seconds: float
    server_ms_per_batch: float | None = None

    @property
    def per_second(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else float("nan")


@contextmanager
def fresh_database(server_url: str, prefix: str) -> Iterator[str]:
    """A new, empty database on the server (dropped on exit)."""
    base = make_url(server_url)
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def serve(database_url: str, port: int, source: "Path | None" = None) -> Iterator[str]:
    """``scaleladder serve`` (external executor) in a subprocess, from the tree ``source`` if given (else
    this one); yields its URL once /readyz answers."""
    env = {**os.environ, "SCALELADDER_DATABASE_URL": database_url, "SCALELADDER_EXECUTOR": "external"}
    if source is not None:
        env["PYTHONPATH"] = str(source)
    proc = subprocess.Popen([sys.executable, "-m", "service.cli", "serve", "--port", str(port), "--migrate",
                             "--log-level", "warning"], env=env, cwd=None if source is None else str(source),
                            stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the service did not start")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _make_token(database_url: str) -> str:
    from service.db import make_engine, make_session_factory, transaction
    from service.repositories import TokenRepository
    from service.settings import Settings

    engine = make_engine(Settings(database_url=database_url))
    try:
        with transaction(make_session_factory(engine)) as session:
            return TokenRepository(session).create("bench", name="bench.ingest")
    finally:
        engine.dispose()


def _curve(trial_index: int, step: int) -> float:
    return 2.0 + 1.0 / (1 + trial_index) + 5.0 / step ** 0.5


def scaleladder_ingest(server_url: str, n_measurements: int, batch: int, steps: int, clients: int, studies: int,
                       port: int) -> Rate:
    """Client ``c`` sends its trials' curves to study ``c % studies`` (a study's writes serialise on its row
    lock, so several studies are how one service ingests in parallel)."""
    n_trials = max(1, n_measurements // steps)
    with fresh_database(server_url, "scaleladder_ingest") as db_url, serve(db_url, port) as url:
        token = _make_token(db_url)
        spec = {
            "name": "ingest",
            "space": [{"name": "lr", "type": "float", "low": 1e-4, "high": 1e-1, "log": True}],
            "fidelity": {"steps": {"min": 1, "max": steps, "report_every": 1}, "sizes": [{"name": "m", "params": 1e6}]},
            "target": {"steps": steps, "size": "m"},
            "scheduler": {"name": "random", "seed": 0},
        }
        handles, trials_of = [], []
        warm_count = min(steps, batch)
        with Client(url, token) as client:
            for k in range(studies):
                study = client.create_study(dict(spec, name=f"ingest-{k}"))
                share = n_trials // studies + (1 if k < n_trials % studies else 0)
                trials, _ = study.ask_many(share + 1, client_id="bench")
                warm, trials = trials[0], trials[1:]
                study.report_batch([(warm.id, s, _curve(0, s)) for s in range(1, warm_count + 1)])
                handles.append(study.id)
                trials_of.append(trials)
        # each client sends whole trials' curves of its study, batch by batch
        payloads: list[tuple[int, list[list[tuple[int, int, float]]]]] = [(handles[c % studies], [])
                                                                           for c in range(clients)]
        for k in range(studies):
            mine = [c for c in range(clients) if c % studies == k]
            for i, t in enumerate(trials_of[k]):
                rows = [(t.id, s, _curve(i, s)) for s in range(1, steps + 1)]
                for j in range(0, len(rows), batch):
                    payloads[mine[i % len(mine)]][1].append(rows[j:j + batch])
        errors: list[BaseException] = []

        def send(study_id: int, chunks: list[list[tuple[int, int, float]]]) -> None:
            try:
                with Client(url, token) as c:
                    handle = c.get_study(study_id)
                    for chunk in chunks:
                        handle.report_batch(chunk)
            except BaseException as e:  # surfaced after join
                errors.append(e)

        threads = [threading.Thread(target=send, args=p) for p in payloads]
        start = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        seconds = time.perf_counter() - start
        if errors:
            raise errors[0]
        sent = sum(len(ts) for ts in trials_of) * steps
        with Client(url, token) as client:
            stored = sum(client.get_study(sid).progress().n_measurements - warm_count for sid in handles)
        if stored != sent:
            raise RuntimeError(f"sent {sent} measurements but {stored} were stored")
        server_ms = _server_ms_per_batch(httpx.get(f"{url}/metrics", timeout=10).text)
        return Rate("ScaleLadder batch endpoint", sent, seconds, server_ms)


def _server_ms_per_batch(metrics: str) -> float | None:
    """Mean time the service spent per batch request (its own Prometheus histogram, warm-up included)."""
    total = count = None
    for line in metrics.splitlines():
        if 'route="/v1/studies/{study_id}/measurements:batch"' not in line or 'method="POST"' not in line:
            continue
        name, value = line.rsplit(" ", 1)
        if name.startswith("scaleladder_http_request_duration_seconds_sum"):
            total = float(value)
        elif name.startswith("scaleladder_http_request_duration_seconds_count"):
            count = float(value)
    return 1000 * total / count if total is not None and count else None


def optuna_ingest(server_url: str, n_reports: int, steps: int) -> Rate:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    n_trials = max(1, n_reports // steps)
    with fresh_database(server_url, "optuna_ingest") as db_url:
        storage = optuna.storages.RDBStorage(db_url)
        study = optuna.create_study(storage=storage, study_name="ingest", direction="minimize",
                                    sampler=optuna.samplers.RandomSampler(seed=0))
        warm = study.ask()
        warm.report(1.0, 0)
        study.tell(warm, 1.0)
        start = time.perf_counter()
        for i in range(n_trials):
            trial = study.ask()
            trial.suggest_float("lr", 1e-4, 1e-1, log=True)
            for step in range(1, steps + 1):
                trial.report(_curve(i, step), step)
            study.tell(trial, _curve(i, steps))
        seconds = time.perf_counter() - start
        stored = sum(len(t.intermediate_values) for t in study.get_trials(deepcopy=False)) - 1
        sent = n_trials * steps
        storage.engine.dispose()
        if stored != sent:
            raise RuntimeError(f"Optuna: reported {sent} values but {stored} were stored")
        return Rate("Optuna RDBStorage trial.report", sent, seconds)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__.split("\n\n")[0])
    ap.add_argument("--postgres-url", default=os.environ.get("SCALELADDER_TEST_POSTGRES_URL", DEFAULT_PG),
                    help="a PostgreSQL server URL allowed to CREATE/DROP DATABASE")
    ap.add_argument("--measurements", type=int, default=50_000, help="measurements sent to ScaleLadder")
    ap.add_argument("--batch", type=int, default=1_000, help="measurements per batch request")
    ap.add_argument("--steps", type=int, default=1_000, help="reported steps per trial")
    ap.add_argument("--clients", type=int, default=1, help="concurrent HTTP clients")
    ap.add_argument("--studies", type=int, default=1, help="studies the clients write to (client c -> study c %% n)")
    ap.add_argument("--optuna-reports", type=int, default=2_000, help="trial.report calls made through Optuna")
    ap.add_argument("--optuna-steps", type=int, default=100, help="reports per Optuna trial")
    ap.add_argument("--port", type=int, default=0, help="port for the service (default: a free one)")
    args = ap.parse_args(argv)

    from service.server import free_port

    if not 1 <= args.studies <= args.clients:
        ap.error("--studies must be between 1 and --clients")
    ours = scaleladder_ingest(args.postgres_url, args.measurements, args.batch, args.steps, args.clients,
                              args.studies, args.port or free_port())
    theirs = optuna_ingest(args.postgres_url, args.optuna_reports, args.optuna_steps)
    ratio = ours.per_second / theirs.per_second
    print(f"# ingest into PostgreSQL ({make_url(args.postgres_url).render_as_string(hide_password=True)}), "
          f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f} at the end")
    print(f"# command: python -m bench.ingest {' '.join(argv if argv is not None else sys.argv[1:])}".rstrip())
    print("| system | measurements | seconds | measurements/s |")
    print("|---|---:|---:|---:|")
    for r in (ours, theirs):
        print(f"| {r.name} | {r.count:,} | {r.seconds:.2f} | {r.per_second:,.0f} |")
    if ours.server_ms_per_batch is not None:
        print(f"service time per batch request (its /metrics histogram): {ours.server_ms_per_batch:.1f} ms")
    print(f"ratio ScaleLadder / Optuna: {ratio:.1f}x (batch {args.batch}, {args.clients} client(s), "
          f"{args.studies} stud{'y' if args.studies == 1 else 'ies'}; targets: >= 5,000/s and >= 10x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
