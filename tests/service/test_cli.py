"""The ``scaleladder`` CLI through typer's CliRunner."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from service.cli import app
from service.db import make_engine, make_session_factory, transaction
from service.migrate import current_revision, head_revision
from service.repositories import TokenRepository
from service.settings import Settings

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
runner = CliRunner()


def test_db_upgrade_and_token_create(tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    result = runner.invoke(app, ["db", "upgrade", "--database-url", url])
    assert result.exit_code == 0, result.output
    assert f"at revision {head_revision()}" in result.output
    result = runner.invoke(app, ["token", "create", "--tenant", "team-a", "--name", "ci"],
                           env={"SCALELADDER_DATABASE_URL": url})
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    assert token.startswith("sl_") and len(token) > 40
    engine = make_engine(Settings(database_url=url))
    try:
        assert current_revision(engine) == head_revision()
        with transaction(make_session_factory(engine)) as session:
            assert TokenRepository(session).tenant_for(token) == "team-a"
    finally:
        engine.dispose()
    result = runner.invoke(app, ["db", "current", "--database-url", url])
    assert result.exit_code == 0 and f"current {head_revision()}" in result.output


def test_token_list_and_revoke(sqlite_server):
    """A token listed by id is revoked from the CLI; the service refuses it from the next request on."""
    url = str(sqlite_server.app.state.settings.database_url)
    env = {"SCALELADDER_DATABASE_URL": url}
    token = runner.invoke(app, ["token", "create", "--tenant", "team-r", "--name", "to-revoke"],
                          env=env).output.strip().splitlines()[-1]
    with sqlite_server.http(tenant=None) as http:
        auth = {"Authorization": f"Bearer {token}"}
        assert http.get("/v1/studies", headers=auth).status_code == 200
        listed = runner.invoke(app, ["token", "list", "--tenant", "team-r"], env=env)
        assert listed.exit_code == 0 and "to-revoke" in listed.output and token not in listed.output
        token_id = next(line.split()[1] for line in listed.output.splitlines() if "to-revoke" in line)
        revoked = runner.invoke(app, ["token", "revoke", token_id], env=env)
        assert revoked.exit_code == 0 and "team-r" in revoked.output, revoked.output
        assert http.get("/v1/studies", headers=auth).status_code == 401
        assert runner.invoke(app, ["token", "revoke", "999999"], env=env).exit_code == 1


def test_db_upgrade_on_postgres(postgres_url):
    result = runner.invoke(app, ["db", "upgrade", "--database-url", postgres_url])
    assert result.exit_code == 0, result.output
    assert "***" in result.output or "postgres@" in result.output


def test_study_commands(sqlite_server):
    env = {"SCALELADDER_URL": sqlite_server.url, "SCALELADDER_TOKEN": sqlite_server.token("cli-user")}
    result = runner.invoke(app, ["study", "create", "-f", str(EXAMPLES / "random_small.yaml"), "--name", "cli-study"],
                           env=env)
    assert result.exit_code == 0, result.output
    assert "created study" in result.output and "running" in result.output
    study_id = int(result.output.split("created study")[1].split()[0])

    result = runner.invoke(app, ["study", "list"], env=env)
    assert result.exit_code == 0 and "cli-study" in result.output and "running" in result.output

    # run one trial through the SDK so `show` has something to say, then cancel so `watch` ends
    with sqlite_server.client("cli-user") as client:
        study = client.get_study(study_id)
        trial = study.ask()
        for step in trial.report_steps():
            trial.report(step, 1.0 + 1.0 / step)
        trial.complete()
    result = runner.invoke(app, ["study", "show", str(study_id)], env=env)
    assert result.exit_code == 0, result.output
    assert "1 completed" in result.output and "recommendation at (wide, 200 steps)" in result.output
    result = runner.invoke(app, ["study", "show", str(study_id), "--json"], env=env)
    assert result.exit_code == 0 and '"best_value": 1.005' in result.output

    result = runner.invoke(app, ["study", "watch", str(study_id), "--timeout", "0.2", "--interval", "0.05"], env=env)
    assert result.exit_code == 0 and "is running" in result.output
    with sqlite_server.client("cli-user") as client:
        client.get_study(study_id).cancel()
    result = runner.invoke(app, ["study", "watch", str(study_id), "--interval", "0.05"], env=env)
    assert result.exit_code == 0 and "is cancelled" in result.output

    result = runner.invoke(app, ["study", "show", "999999"], env=env)
    assert result.exit_code == 1 and "not found" in result.output
    result = runner.invoke(app, ["study", "list"], env={**env, "SCALELADDER_TOKEN": "sl_bogus"})
    assert result.exit_code == 1 and "unknown or revoked token" in result.output


def test_study_lifecycle_commands(sqlite_server):
    """A study created with --no-start is started, paused, resumed, cancelled and deleted from the CLI."""
    env = {"SCALELADDER_URL": sqlite_server.url, "SCALELADDER_TOKEN": sqlite_server.token("cli-user")}
    result = runner.invoke(app, ["study", "create", "-f", str(EXAMPLES / "random_small.yaml"), "--no-start"],
                           env=env)
    assert result.exit_code == 0 and "pending" in result.output, result.output
    study_id = result.output.split("created study")[1].split()[0]
    for action, state in (("start", "running"), ("pause", "paused"), ("resume", "running"),
                          ("cancel", "cancelled")):
        result = runner.invoke(app, ["study", action, study_id], env=env)
        assert result.exit_code == 0 and f"is {state}" in result.output, (action, result.output)
    result = runner.invoke(app, ["study", "resume", study_id], env=env)     # illegal now: the service's 409
    assert result.exit_code == 1 and "error" in result.output
    assert runner.invoke(app, ["study", "delete", study_id], env=env, input="n\n").exit_code == 1
    result = runner.invoke(app, ["study", "delete", study_id], env=env, input="y\n")
    assert result.exit_code == 0 and "deleted" in result.output
    result = runner.invoke(app, ["study", "show", study_id], env=env)
    assert result.exit_code == 1 and "not found" in result.output


def test_study_create_reports_bad_files(sqlite_server, tmp_path):
    env = {"SCALELADDER_URL": sqlite_server.url, "SCALELADDER_TOKEN": sqlite_server.token("cli-user")}
    bad = tmp_path / "bad.yaml"
    bad.write_text((EXAMPLES / "random_small.yaml").read_text().replace("low: 1.0e-4", "low: 0.0"))
    result = runner.invoke(app, ["study", "create", "-f", str(bad)], env=env)
    assert result.exit_code == 1 and "log scale needs low > 0" in result.output and "space.lr.low" in result.output


def test_external_demo_runs_a_study_end_to_end():
    """The ask/tell demo (``--external``: SDK workers, synthetic objective); the Ray demo is tested in tests/ray."""
    result = runner.invoke(app, ["demo", "--external", "--scheduler", "random", "--budget", "3"])
    assert result.exit_code == 0, result.output
    assert "completed" in result.output and "Recommendation at the target" in result.output
    assert "predicted loss" in result.output


def test_study_create_with_malformed_yaml_fails_cleanly(tmp_path):
    from typer.testing import CliRunner

    from service.cli import app

    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    result = CliRunner().invoke(app, ["study", "create", "-f", str(bad), "--url", "http://127.0.0.1:9",
                                      "--token", "x"])
    assert result.exit_code == 1, result.output
    assert "not valid YAML" in result.output and "line 1" in result.output


def test_long_database_url_is_printed_on_one_line(tmp_path):
    """Output is grepped by scripts: a long URL must not wrap the line (it did at 80 columns)."""
    folder = tmp_path / ("d" * 90)
    folder.mkdir()
    result = runner.invoke(app, ["db", "upgrade", "--database-url", f"sqlite:///{folder / 'cli.db'}"])
    assert result.exit_code == 0, result.output
    line = result.output.strip().splitlines()[-1]
    assert line.startswith("database ") and line.endswith(f"at revision {head_revision()}")


def _help_line(argv: list[str], option: str) -> str:
    result = runner.invoke(app, [*argv, "--help"], env={"COLUMNS": "200", "TERM": "dumb"})
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.output and "<int>" not in result.output and "<str>" not in result.output
    return next(line for line in result.output.splitlines() if f" {option} " in f" {line} ")


def test_help_names_value_types_and_no_type_for_flags():
    """Issue 15: --help showed every flag as <bool> (a flag takes no value) and values as <int>, <str>."""
    for argv, option, label in ((["serve"], "--port", "INTEGER"), (["serve"], "--host", "TEXT"),
                                (["demo"], "--budget", "FLOAT"), (["study", "create"], "--file", "FILE"),
                                (["study", "show"], "STUDY_ID", "INTEGER"),
                                (["study", "list"], "--state", "[pending|running|paused|completed|failed|cancelled]"),
                                (["scaling", "fit"], "--bootstrap", "INTEGER")):
        assert label in _help_line(argv, option).split(), (argv, option)
    for argv, flag in ((["serve"], "--migrate"), (["study", "show"], "--json"), (["study", "create"], "--start"),
                       (["demo"], "--external"), (["study", "delete"], "--yes"), (["study"], "--help"), ([], "--help")):
        line = _help_line(argv, flag)
        assert not {"BOOLEAN", "INTEGER", "TEXT", "FLOAT", "FILE", "PATH"} & set(line.split()), (argv, flag, line)


def _fail_study(server, tenant: str, study_id: int, error: str | None) -> None:
    """End a study FAILED the way the Ray runner does (StudyRuntime.finish): the external executor never fails one."""
    from api.schemas import StudyState
    from service.models import utcnow
    from service.repositories import StudyRepository
    from service.scheduling import StudyRuntime

    with transaction(server.app.state.session_factory) as session:
        row = StudyRepository(session).get(tenant, study_id, lock=True)
        StudyRuntime(session, row, server.app.state.scheduler_cache).finish(StudyState.FAILED, utcnow(), error)


def test_study_show_says_why_a_study_failed(sqlite_server, study_spec, monkeypatch):
    """Issue 15: `study show` on a failed study printed no reason. It prints the study's error, its failed
    trials' reasons, and both still when the recommendation cannot be had."""
    env = {"SCALELADDER_URL": sqlite_server.url, "SCALELADDER_TOKEN": sqlite_server.token("cli-fail")}
    with sqlite_server.client("cli-fail") as client:
        study = client.create_study(study_spec)
        for _ in range(3):
            study.ask().fail("RuntimeError: CUDA out of memory")
        quiet = client.create_study({**study_spec, "name": "quiet"})
    _fail_study(sqlite_server, "cli-fail", study.id, "3 trials in a row failed: RuntimeError: CUDA out of memory")
    _fail_study(sqlite_server, "cli-fail", quiet.id, None)

    result = runner.invoke(app, ["study", "show", str(study.id)], env={**env, "COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "failed: 3 trials in a row failed: RuntimeError: CUDA out of memory" in result.output
    assert "failed trials (3): 3 x RuntimeError: CUDA out of memory" in result.output
    shown = runner.invoke(app, ["study", "show", str(study.id), "--json"], env=env)
    assert '"error": "3 trials in a row failed: RuntimeError: CUDA out of memory"' in shown.output
    assert shown.output.count('"failure": "RuntimeError: CUDA out of memory"') == 3

    result = runner.invoke(app, ["study", "show", str(quiet.id)], env=env)
    assert result.exit_code == 0 and "failed: no reason was recorded" in result.output, result.output

    from api.client import StudyHandle
    from api.errors import UnavailableError

    def unavailable(self):
        raise UnavailableError("the surrogate fit failed; retry")

    monkeypatch.setattr(StudyHandle, "recommendation", unavailable)
    result = runner.invoke(app, ["study", "show", str(study.id)], env={**env, "COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "failed: 3 trials in a row failed" in result.output
    assert "no recommendation: the surrogate fit failed; retry" in result.output


def test_progress_is_budget_spent_not_wall_clock(sqlite_server, study_spec):
    """Issue 15: the bar advanced with wall-clock time (23% for a study with no measurement). Progress is the
    budget spent: 0% until something is measured, then cost spent / max_cost or finished trials / max_trials."""
    import re
    import time

    env = {"SCALELADDER_URL": sqlite_server.url, "SCALELADDER_TOKEN": sqlite_server.token("cli-progress"),
           "COLUMNS": "200"}
    with sqlite_server.client("cli-progress") as client:
        by_cost = client.create_study({**study_spec, "budget": {"max_cost": 2, "max_wall_clock_seconds": 4}})
        by_trials = client.create_study({**study_spec, "budget": {"max_trials": 4}})
        trial = by_trials.ask()                              # handed out, nothing measured yet
        time.sleep(1.0)                                      # a quarter of by_cost's wall clock
        for study, limit in ((by_cost, "cost"), (by_trials, "trials")):
            p = study.progress()
            assert p.n_measurements == 0 and p.fraction_done == 0.0 and p.progress_limit.value == limit, p
            result = runner.invoke(app, ["study", "watch", str(study.id), "--timeout", "0", "--interval", "0.01"],
                                   env=env)
            assert result.exit_code == 0, result.output
            assert re.findall(r"(\d+\.\d)%", result.output) == ["0.0"], result.output

        trial.report(trial.report_steps()[0], 1.5)            # measured: cost is charged
        p = by_trials.progress()
        assert p.fraction_done == 0.0 and p.cost_spent > 0    # no trial finished: no trial budget spent
        trial.complete()
        assert by_trials.progress().fraction_done == 0.25     # one of four trials finished
        small = by_cost.ask()
        for step in small.report_steps():
            small.report(step, 2.0)
        small.complete()
        p = by_cost.progress()
        assert p.progress_limit.value == "cost" and 0 < p.fraction_done == min(p.cost_spent / 2, 1.0)


def test_cli_prints_the_servers_field_named_errors(sqlite_server, study_spec, tmp_path):
    """Issue 15: the CLI printed pydantic's raw text with a link where the service says ``space[0].high: ...``.
    The SDK's own check of a file and the service's 422 are one error in one form: ``field: message``."""
    import yaml

    from api.errors import InvalidArgumentError

    env = {"SCALELADDER_URL": sqlite_server.url, "SCALELADDER_TOKEN": sqlite_server.token("cli-errors"),
           "COLUMNS": "300"}
    spec = {**study_spec, "space": [{"name": "lr", "type": "float", "low": 0.1, "high": "big"}]}
    with sqlite_server.http("cli-errors") as http:
        answer = http.post("/v1/studies", json=spec).json()["error"]
    assert answer["field"] == "space[0].high" and answer["message"].startswith("space[0].high: ")

    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(spec))
    result = runner.invoke(app, ["study", "create", "-f", str(bad)], env=env)
    assert result.exit_code == 1
    assert result.output.strip() == f"error: {bad}: {answer['message']}"
    assert "pydantic" not in result.output and "http" not in result.output

    with sqlite_server.client("cli-errors") as client, pytest.raises(InvalidArgumentError) as caught:
        client.create_study(spec)
    assert (caught.value.field, str(caught.value)) == (answer["field"], answer["message"])

    # found by the service (the scheduler library's rules): the same form, field first
    bad.write_text(yaml.safe_dump({**study_spec, "space": [{"name": "lr", "type": "float", "low": 0.5,
                                                             "high": 0.1}]}))
    result = runner.invoke(app, ["study", "create", "-f", str(bad)], env=env)
    assert result.exit_code == 1
    assert result.output.strip() == "error: space.lr.low: parameter 'lr': low (0.5) > high (0.1)", result.output
