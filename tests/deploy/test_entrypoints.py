"""The commands the containers run, and the settings they pass, exist in the installed code.

Each command line of the Dockerfile, the compose file and the rendered chart is parsed by the real command
parser (`scaleladder` is typer/click, `ray` is click) without running it: an unknown subcommand or a
misspelt flag fails here instead of in a crash-looping container. Likewise every SCALELADDER_* variable
must be a field of `service.settings.Settings`, which ignores unknown variables silently.
"""

from __future__ import annotations

import json

import click
import pytest

from tests.deploy.artifacts import (
    DOCKERFILE, ENV_EXAMPLE, command_args, container_env, load_compose, parse_dockerfile, pod_specs,
    read_env_file,
)


def parse(group: click.Group, argv: list[str]) -> click.Context:
    """Resolve argv through a click command tree and parse its options (UsageError if they are wrong).

    Duck-typed on `get_command`: typer builds its commands on its own copy of click's classes.
    """
    command: click.Command = group
    ctx = group.make_context(argv[0], [], resilient_parsing=True)
    rest = argv[1:]
    while hasattr(command, "get_command"):
        assert rest, f"{' '.join(argv)}: names a command group, not a command"
        sub = command.get_command(ctx, rest[0])
        assert sub is not None, f"{' '.join(argv)}: no command {rest[0]!r}"
        command, ctx, rest = sub, type(ctx)(sub, parent=ctx, info_name=rest[0]), rest[1:]
    return command.make_context(ctx.info_name, list(rest), parent=ctx.parent)


@pytest.fixture(scope="module")
def scaleladder_cli() -> click.Group:
    import typer

    from service.cli import app

    return typer.main.get_command(app)


@pytest.fixture(scope="module")
def ray_cli() -> click.Group:
    from ray.scripts.scripts import cli

    return cli


@pytest.fixture(scope="module")
def compose_services() -> dict:
    return load_compose(read_env_file(ENV_EXAMPLE))["services"]


def chart_commands(helm) -> list[list[str]]:
    rendered = helm.render({"database": {"url": "postgresql+psycopg://u:p@db:5432/x"}})
    return [container["command"] for obj in rendered.objects for _, pod in pod_specs(obj)
            for container in pod["spec"]["containers"] if "command" in container]


def test_scaleladder_commands_of_images_compose_and_chart_parse(scaleladder_cli, compose_services, helm) -> None:
    _, stages = parse_dockerfile(DOCKERFILE.read_text())
    control_plane = {s.name: s for s in stages}["control-plane"]
    commands = [json.loads(next(i.args for i in control_plane.instructions if i.keyword == "CMD"))]
    commands += [command_args(s) for s in compose_services.values() if command_args(s)[:1] == ["scaleladder"]]
    commands += chart_commands(helm)
    assert {tuple(c[:3]) for c in commands} >= {("scaleladder", "serve", "--host"), ("scaleladder", "db", "upgrade")}
    for argv in commands:
        assert argv[0] == "scaleladder", argv
        ctx = parse(scaleladder_cli, argv)
        if argv[1] == "serve":
            assert (ctx.params["host"], ctx.params["port"]) == ("0.0.0.0", 8000)
    with pytest.raises(Exception, match="--hots"):
        parse(scaleladder_cli, ["scaleladder", "serve", "--hots", "0.0.0.0"])


def test_ray_start_and_status_flags_exist_in_ray(ray_cli, compose_services) -> None:
    for name in ("ray-head", "ray-worker", "ray-worker-gpu"):
        service = compose_services[name]
        ctx = parse(ray_cli, command_args(service))
        assert ctx.params["block"] is True, name
        parse(ray_cli, service["healthcheck"]["test"][1:])
    head = parse(ray_cli, command_args(compose_services["ray-head"]))
    assert head.params["head"] and head.params["ray_client_server_port"] == 10001


def test_kuberay_ray_start_params_are_ray_start_flags(ray_cli, helm) -> None:
    """KubeRay turns rayStartParams {key: value} into `ray start --key=value`."""
    cluster = helm.render({"database": {"url": "postgresql+psycopg://u:p@db:5432/x"},
                            "ray": {"cpuWorkers": {"rayStartParams": {"num-cpus": "3"}}}}).one("RayCluster")
    groups = [("head", cluster["spec"]["headGroupSpec"], ["--head"])]
    groups += [(g["groupName"], g, ["--address=head:6379"]) for g in cluster["spec"]["workerGroupSpecs"]]
    for name, group, base in groups:
        flags = [f"--{key}={value}" for key, value in group["rayStartParams"].items()]
        parse(ray_cli, ["ray", "start", *base, *flags])
    with pytest.raises(click.UsageError, match="dashbord-host"):
        parse(ray_cli, ["ray", "start", "--head", "--dashbord-host=0.0.0.0"])


def test_every_scaleladder_variable_is_a_setting(compose_services, helm) -> None:
    from service.settings import Settings

    prefix = Settings.model_config["env_prefix"]
    known = {prefix + name.upper() for name in Settings.model_fields}
    used = {name for service in compose_services.values() for name in service.get("environment") or {}}
    rendered = helm.render({"database": {"url": "postgresql+psycopg://u:p@db:5432/x"}})
    used |= {name for obj in rendered.objects for _, pod in pod_specs(obj)
             for container in pod["spec"]["containers"] for name in container_env(container)}
    ours = {name for name in used if name.startswith(prefix)}
    assert {"SCALELADDER_DATABASE_URL", "SCALELADDER_EXECUTOR", "SCALELADDER_EXECUTOR_OPTIONS",
            "SCALELADDER_BOOTSTRAP_TOKEN", "SCALELADDER_BOOTSTRAP_TENANT"} <= ours
    assert ours <= known, f"not settings (silently ignored): {sorted(ours - known)}"
