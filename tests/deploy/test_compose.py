"""docker/compose.yaml: a spec-valid stack whose start-up order, health checks, volumes and wiring hold up.

No Docker engine here: the file is interpolated with Compose's variable syntax, parsed by a spec-complete
Compose parser (the `compose-spec` package), and its cross-references are checked below.
"""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

import pytest
import yaml

from tests.deploy.artifacts import (
    COMPOSE_FILE, DOCKERFILE, ENV_EXAMPLE, REPO_ROOT, MissingVariableError, command_args, flag_value,
    interpolate, load_compose, parse_dockerfile, read_env_file, required_variables,
)

RAY_NODES = ("ray-head", "ray-worker", "ray-worker-gpu")


@pytest.fixture(scope="module")
def env() -> dict[str, str]:
    """The documented starting point: docker/env.example as the .env file."""
    return read_env_file(ENV_EXAMPLE)


@pytest.fixture(scope="module")
def compose(env: dict[str, str]) -> dict:
    return load_compose(env)


@pytest.fixture(scope="module")
def services(compose: dict) -> dict[str, dict]:
    return compose["services"]


def test_compose_file_is_valid_per_the_compose_specification(compose: dict) -> None:
    compose_spec = pytest.importorskip("compose_spec", reason="pip install compose-spec (test extra)")
    parsed = compose_spec.PyCompose.from_yaml(yaml.safe_dump(compose))
    assert set(parsed.to_dict()["services"]) == set(compose["services"])


def test_compose_parser_rejects_what_docker_compose_rejects(compose: dict) -> None:
    """The parser used above is strict enough to be worth running: a misspelt key or condition fails."""
    compose_spec = pytest.importorskip("compose_spec", reason="pip install compose-spec (test extra)")
    misspelt = yaml.safe_load(yaml.safe_dump(compose))
    misspelt["services"]["postgres"]["healthchek"] = misspelt["services"]["postgres"].pop("healthcheck")
    with pytest.raises(ValueError, match="healthchek"):
        compose_spec.PyCompose.from_yaml(yaml.safe_dump(misspelt))
    bad_condition = yaml.safe_load(yaml.safe_dump(compose))
    bad_condition["services"]["control-plane"]["depends_on"]["migrate"]["condition"] = "service_finished"
    with pytest.raises(ValueError, match="service_finished"):
        compose_spec.PyCompose.from_yaml(yaml.safe_dump(bad_condition))


def test_stack_has_postgres_ray_head_worker_migration_and_control_plane(services: dict) -> None:
    assert {"postgres", "ray-head", "ray-worker", "migrate", "control-plane"} <= set(services)
    # The CUDA worker is opt-in (`--profile gpu`): a plain `up` must work on a machine without GPUs.
    assert services["ray-worker-gpu"]["profiles"] == ["gpu"]
    assert all("profiles" not in services[name] for name in ("postgres", "ray-head", "ray-worker",
                                                               "migrate", "control-plane"))


def test_health_checks_probe_what_each_service_serves(services: dict) -> None:
    def check(name: str) -> str:
        test = services[name]["healthcheck"]["test"]
        assert test[0] in ("CMD", "CMD-SHELL"), f"{name}: healthcheck.test must be a CMD form"
        return " ".join(test[1:])

    assert check("postgres").startswith("pg_isready")
    for node in RAY_NODES:
        assert check(node).startswith("ray status"), node
    assert "/readyz" in check("control-plane")
    assert "8000" in check("control-plane")


def test_migration_runs_once_before_the_api_starts(services: dict) -> None:
    migrate, api = services["migrate"], services["control-plane"]
    assert command_args(migrate) == ["scaleladder", "db", "upgrade"]
    assert migrate["restart"] == "no", "a one-shot service must not be restarted after it exits 0"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert api["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert api["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert api["depends_on"]["ray-head"]["condition"] == "service_healthy"


def test_every_dependency_condition_can_be_met(services: dict) -> None:
    for name, service in services.items():
        for target, spec in (service.get("depends_on") or {}).items():
            assert target in services, f"{name} depends on undefined service {target}"
            condition = spec["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in services[target], f"{name} waits for {target}, which has no healthcheck"
            elif condition == "service_completed_successfully":
                assert services[target].get("restart", "no") == "no", f"{target} must be a one-shot"


def test_control_plane_runs_serve_with_the_documented_settings(services: dict) -> None:
    api = services["control-plane"]
    assert command_args(api) == ["scaleladder", "serve", "--host", "0.0.0.0", "--port", "8000",
                                 "--startup-timeout", "120"]
    # a hung start-up exits, and only a restart policy turns that exit into a fresh start
    assert api["restart"] == "unless-stopped"
    env = api["environment"]
    assert env["SCALELADDER_EXECUTOR"] == "ray"
    assert env["SCALELADDER_BOOTSTRAP_TOKEN"]
    assert any(port.endswith(":8000") for port in api["ports"])


def test_database_url_reaches_postgres_with_its_credentials(services: dict) -> None:
    postgres = services["postgres"]["environment"]
    urls = {name: services[name]["environment"]["SCALELADDER_DATABASE_URL"]
            for name in ("migrate", "control-plane")}
    assert len(set(urls.values())) == 1, f"every service must use the same database: {urls}"
    url = urlsplit(next(iter(urls.values())))
    assert url.scheme == "postgresql+psycopg"
    assert (url.hostname, url.port) == ("postgres", 5432)
    assert (url.username, url.password) == (postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"])
    assert url.path.lstrip("/") == postgres["POSTGRES_DB"]
    assert "pg_isready -U {POSTGRES_USER} -d {POSTGRES_DB}".format(**postgres) in " ".join(
        services["postgres"]["healthcheck"]["test"])


def test_ray_nodes_and_the_client_agree_on_addresses(services: dict) -> None:
    head = command_args(services["ray-head"])
    assert head[:3] == ["ray", "start", "--head"] and "--block" in head
    gcs_port = flag_value(head, "--port")
    # Ray's default GCS port 6379 is often held by a Redis on the same host (see the Ray notes); the stack
    # uses another one, consistently.
    assert gcs_port and gcs_port != "6379"
    for worker in ("ray-worker", "ray-worker-gpu"):
        args = command_args(services[worker])
        assert args[:2] == ["ray", "start"] and "--head" not in args and "--block" in args
        assert flag_value(args, "--address") == f"ray-head:{gcs_port}", worker
        assert services[worker]["depends_on"]["ray-head"]["condition"] == "service_healthy"
    for node in RAY_NODES:
        assert f"--address=ray-head:{gcs_port}" in services[node]["healthcheck"]["test"], node
    client_port = flag_value(head, "--ray-client-server-port")
    assert services["control-plane"]["environment"]["RAY_ADDRESS"] == f"ray://ray-head:{client_port}"
    assert flag_value(head, "--dashboard-host") == "0.0.0.0"
    assert any(str(port).endswith(":8265") for port in services["ray-head"]["ports"])


def test_ray_token_auth_is_on_with_one_shared_token(services: dict) -> None:
    """Ray 2.60 enables token auth by default; nodes and the Ray client must present the same token."""
    tokens = set()
    for name in (*RAY_NODES, "control-plane"):
        env = services[name]["environment"]
        assert env["RAY_AUTH_MODE"] == "token", name
        tokens.add(env["RAY_AUTH_TOKEN"])
    assert len(tokens) == 1 and all(tokens)


def test_state_survives_restarts_in_named_volumes(compose: dict, services: dict) -> None:
    declared = set(compose["volumes"])
    mounts = {name: dict(reversed(m.split(":")[:2]) for m in service.get("volumes", []))
              for name, service in services.items()}
    assert mounts["postgres"]["/var/lib/postgresql/data"] in declared
    # The runners' Tune storage (trial checkpoints) is one volume at one path on the head and every worker,
    # the path the control plane hands to the runners.
    options = json.loads(services["control-plane"]["environment"]["SCALELADDER_EXECUTOR_OPTIONS"])
    storage = {mounts[node].get(options["storage_path"]) for node in RAY_NODES}
    assert len(storage) == 1 and storage <= declared
    used = {source for volume_mounts in mounts.values() for source in volume_mounts.values()}
    named = {source for source in used if not source.startswith((".", "/"))}
    assert named == declared, "every named volume is declared, every declared volume is used"


def test_images_are_built_from_the_repository_dockerfile(services: dict) -> None:
    _, stages = parse_dockerfile(DOCKERFILE.read_text())
    targets = {stage.name for stage in stages}
    compose_dir = COMPOSE_FILE.parent
    built = {name: service["build"] for name, service in services.items() if "build" in service}
    assert set(built) == {"migrate", "control-plane", *RAY_NODES}
    for name, build in built.items():
        context = (compose_dir / build["context"]).resolve()
        assert context == REPO_ROOT, f"{name}: the build context must be the repository root"
        assert (context / build["dockerfile"]).resolve() == DOCKERFILE
        assert build["target"] in targets, name
    assert built["migrate"]["target"] == built["control-plane"]["target"] == "control-plane"
    assert services["migrate"]["image"] == services["control-plane"]["image"]
    assert built["ray-worker-gpu"]["args"]["VARIANT"].startswith("cu")
    assert "nvidia" in str(services["ray-worker-gpu"]["deploy"]["resources"]["reservations"]["devices"])


def test_secrets_have_no_defaults_and_env_example_lists_them() -> None:
    text = COMPOSE_FILE.read_text()
    required = required_variables(text)
    assert {"POSTGRES_PASSWORD", "RAY_AUTH_TOKEN", "SCALELADDER_BOOTSTRAP_TOKEN"} <= required
    assert required <= set(read_env_file(ENV_EXAMPLE))
    with pytest.raises(MissingVariableError) as missing:
        interpolate(text, {})
    assert missing.value.name in required


def test_interpolation_follows_compose_rules() -> None:
    env = {"SET": "x", "EMPTY": ""}
    assert interpolate("${SET:-d} ${UNSET:-d} ${EMPTY:-d} ${EMPTY-d} $$SET $SET", env) == "x d d  $SET x"
    assert interpolate("${SET:+alt}|${UNSET:+alt}", env) == "alt|"
    with pytest.raises(MissingVariableError, match="EMPTY: say so"):
        interpolate("${EMPTY:?say so}", env)
    assert re.fullmatch(r"\$\{SET\}", interpolate("$${SET}", env))


def test_ray_head_runs_its_client_server_without_grpc_fork_support(services: dict) -> None:
    """The Ray Client server forks a server per client; with gRPC's fork support on, that child died in
    about every other connection on the real stack (tests/deploy/test_compose_stack.py, ray-project/ray#63202)."""
    head = services["ray-head"]["environment"]
    assert head["GRPC_ENABLE_FORK_SUPPORT"] == "0"
    assert head["RAY_AUTH_MODE"] == "token" and head["RAY_AUTH_TOKEN"], "the merge keeps the Ray token"
