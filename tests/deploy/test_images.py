"""docker/Dockerfile: the images install the project the way CI does, from the official Ray images.

No Docker engine here, so nothing is built; the Dockerfile is read instruction by instruction.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from importlib.metadata import version

import pytest
import yaml

from tests.deploy.artifacts import (
    CHART_DIR, DOCKER_DIR, DOCKERFILE, INSTALL_SCRIPT, REPO_ROOT, Stage, parse_dockerfile,
)


@pytest.fixture(scope="module")
def dockerfile() -> tuple[dict[str, str], dict[str, Stage]]:
    global_args, stages = parse_dockerfile(DOCKERFILE.read_text())
    return global_args, {stage.name: stage for stage in stages}


def runs(stage: Stage) -> list[str]:
    return [i.args for i in stage.instructions if i.keyword == "RUN"]


def test_install_step_is_the_ci_install_script_not_a_copy(dockerfile) -> None:
    _, stages = dockerfile
    all_runs = [run for stage in stages.values() for run in runs(stage)]
    installs = [run for run in all_runs if INSTALL_SCRIPT in run]
    assert len(installs) == 1, "the images install the project through scripts/install.sh, once"
    assert re.search(r"scripts/install\.sh\s+\"?\$\{EXTRAS\}\"?\s*$", installs[0])
    # No second copy of the install logic: no pip, conda or uv commands of its own.
    installers = {"pip", "pip3", "uv", "conda", "mamba", "micromamba", "easy_install"}
    for run in all_runs:
        words = shlex.split(run.replace("&&", " ; ").replace(";", " ; "))
        assert not installers & set(words), run
        assert not any(a == "-m" and b in installers for a, b in zip(words, words[1:])), run
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert INSTALL_SCRIPT in ci, "CI installs through the same script"
    # And the script the images copy is the one CI runs.
    copies = [i.args for stage in stages.values() for i in stage.instructions if i.keyword == "COPY"]
    assert any(INSTALL_SCRIPT in c.split() for c in copies)


def test_dependencies_are_installed_before_the_code_is_copied(dockerfile) -> None:
    """A code change rebuilds only the COPY layers: the install runs before the packages are copied, as an
    editable install in setuptools' compat mode (the project directory on sys.path, so the packages copied
    later are the ones imported)."""
    _, stages = dockerfile
    node = stages["ray-node"].instructions
    install = next(n for n, i in enumerate(node) if i.keyword == "RUN" and INSTALL_SCRIPT in i.args)
    assert "PIP_CONFIG_SETTINGS=editable_mode=compat" in node[install].args
    code = [n for n, i in enumerate(node) if i.keyword == "COPY"
            and i.args.split()[-1] in ("api", "schedulers", "service", "workers")]
    assert len(code) == 4 and min(code) > install
    assert any(i.keyword == "RUN" and "import api, schedulers, service.cli, workers" in i.args
               for i in node[max(code):])


def test_images_install_the_extra_that_holds_ray_and_the_service(dockerfile) -> None:
    _, stages = dockerfile
    node = stages["ray-node"]
    extras = next(i.args for i in node.instructions if i.keyword == "ARG" and i.args.startswith("EXTRAS="))
    extra = extras.split("=", 1)[1]
    optional = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert extra in optional
    flat = " ".join(optional[extra])
    assert "ray[" in flat and "scaleladder[service]" in flat


def test_variant_build_arg_picks_the_ray_base_image_and_the_torch_wheel(dockerfile) -> None:
    global_args, stages = dockerfile
    assert global_args["VARIANT"] == "cpu"
    # the official Ray image by default; docker/offline/build.sh passes a locally built base instead
    assert stages["ray-node"].base == "${BASE_IMAGE}"
    assert global_args["BASE_IMAGE"] == "rayproject/ray:${RAY_VERSION}-${PYTHON_TAG}-${VARIANT}"
    install = next(run for run in runs(stages["ray-node"]) if INSTALL_SCRIPT in run)
    # install.sh takes the torch requirement from TORCH_SPEC; the local version label (+cpu, +cu128) and the
    # wheel index follow the same VARIANT as the base image.
    assert 'TORCH_SPEC="torch==${TORCH_VERSION}+${VARIANT}"' in install
    assert "PIP_EXTRA_INDEX_URL=" in install
    index_arg = next(i.args for i in stages["ray-node"].instructions
                     if i.keyword == "ARG" and i.args.startswith("TORCH_INDEX_URL="))
    assert index_arg.endswith("/${VARIANT}")
    assert 'TORCH_SPEC' in (REPO_ROOT / INSTALL_SCRIPT).read_text(), "install.sh must honour TORCH_SPEC"


def test_image_versions_match_the_tested_environment(dockerfile) -> None:
    """The images carry the Ray, Python and torch the test suite runs against, and the chart says so."""
    global_args, stages = dockerfile
    assert global_args["RAY_VERSION"] == version("ray")
    assert global_args["PYTHON_TAG"] == "py311"
    torch_arg = next(i.args for i in stages["ray-node"].instructions
                     if i.keyword == "ARG" and i.args.startswith("TORCH_VERSION="))
    assert torch_arg.split("=", 1)[1] == version("torch").split("+")[0]
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    assert values["ray"]["version"] == global_args["RAY_VERSION"]


def test_every_copied_path_exists_and_every_runtime_package_is_copied(dockerfile) -> None:
    _, stages = dockerfile
    copied: set[str] = set()
    for stage in stages.values():
        for instruction in stage.instructions:
            if instruction.keyword == "COPY":
                parts = [p for p in instruction.args.split() if not p.startswith("--")]
                for source in parts[:-1]:
                    assert (REPO_ROOT / source).exists(), f"line {instruction.line}: {source} is not in the repo"
                    copied.add(source.rstrip("/"))
    assert {"pyproject.toml", "README.md", INSTALL_SCRIPT} <= copied
    assert {"api", "schedulers", "service", "workers"} <= copied


def test_build_context_ignores_the_virtualenv_and_git() -> None:
    ignored = (DOCKER_DIR / "Dockerfile.dockerignore").read_text().split()
    assert {".venv", ".git"} <= set(ignored)
    # BuildKit reads docker/Dockerfile.dockerignore, the legacy builder (a docker CLI without buildx) only
    # the context root's .dockerignore: both must say the same
    assert (REPO_ROOT / ".dockerignore").read_text() == (DOCKER_DIR / "Dockerfile.dockerignore").read_text()


def test_offline_wheel_folder_exists_and_git_ignores_its_wheels() -> None:
    """The Dockerfile always copies docker/wheels/ (the offline build puts the CPU torch wheel there)."""
    lines = (DOCKER_DIR / "wheels" / ".gitignore").read_text().split()
    assert "*" in lines and "!.gitignore" in lines


def test_control_plane_target_serves_the_api_with_a_readiness_healthcheck(dockerfile) -> None:
    _, stages = dockerfile
    control_plane = stages["control-plane"]
    assert control_plane.base == "ray-node", "the control plane shares the Ray node image (Ray Client needs it)"
    by_keyword = {i.keyword: i.args for i in control_plane.instructions}
    assert by_keyword["CMD"] == '["scaleladder", "serve", "--host", "0.0.0.0", "--port", "8000"]'
    assert by_keyword["EXPOSE"] == "8000"
    assert "/readyz" in by_keyword["HEALTHCHECK"]
