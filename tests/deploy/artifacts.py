"""Readers for the deployment artifacts (docker/, helm/), as the tools that consume them read them.

This machine has no Docker engine, no Kubernetes cluster and no helm binary, so the tests check what can be
checked offline, with real parsers wherever one exists as a Python package:

- the compose file: variables interpolated with Compose's own syntax (:func:`interpolate`), then parsed by
  the `compose-spec` package (bindings of a spec-complete Rust Compose parser that rejects unknown keys);
- the Dockerfile: split into instructions and stages (:func:`parse_dockerfile`; no Python package parses
  Dockerfiles, and the subset used here is line-oriented);
- the Helm chart: rendered and linted by Helm's own Go engine through the `helm-python-sdk` package
  (libhelm_c, no helm binary; run in a child process, see :class:`HelmEngine`), and the Kubernetes objects
  checked against Kubernetes' OpenAPI schemas (`kubernetes-validate`).
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKER_DIR = REPO_ROOT / "docker"
COMPOSE_FILE = DOCKER_DIR / "compose.yaml"
DOCKERFILE = DOCKER_DIR / "Dockerfile"
ENV_EXAMPLE = DOCKER_DIR / "env.example"
CHART_DIR = REPO_ROOT / "helm" / "scaleladder"
TEMPLATES_DIR = CHART_DIR / "templates"
INSTALL_SCRIPT = "scripts/install.sh"

# apiVersion/kind pairs the chart may emit: the stable Kubernetes APIs (served by every version the chart
# supports, >= 1.25) and KubeRay's ray.io/v1 custom resources.
KNOWN_KINDS: frozenset[tuple[str, str]] = frozenset({
    ("v1", "ConfigMap"), ("v1", "Secret"), ("v1", "Service"), ("v1", "ServiceAccount"),
    ("v1", "PersistentVolumeClaim"), ("v1", "Pod"),
    ("apps/v1", "Deployment"), ("apps/v1", "StatefulSet"), ("apps/v1", "DaemonSet"),
    ("batch/v1", "Job"), ("batch/v1", "CronJob"),
    ("networking.k8s.io/v1", "Ingress"), ("networking.k8s.io/v1", "NetworkPolicy"),
    ("policy/v1", "PodDisruptionBudget"), ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("rbac.authorization.k8s.io/v1", "Role"), ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ("ray.io/v1", "RayCluster"), ("ray.io/v1", "RayJob"), ("ray.io/v1", "RayService"),
})


# --- Compose ----------------------------------------------------------------------------------------------

class MissingVariableError(LookupError):
    """A `${NAME:?message}` / `${NAME?message}` variable is unset (Compose refuses to start then)."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name


_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:-|-|:\?|\?|:\+|\+)(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Substitute variables the way `docker compose` does: `$$`, `$X`, `${X}`, `${X:-d}`, `${X-d}`,
    `${X:?err}`, `${X?err}`, `${X:+r}`, `${X+r}` (the colon forms treat an empty value as unset)."""

    def substitute(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        name = match.group("braced") or match.group("bare")
        op, arg = match.group("op"), match.group("arg") or ""
        value = env.get(name)
        unset = value is None or (op is not None and op.startswith(":") and value == "")
        if op in (":-", "-"):
            return arg if unset else value
        if op in (":?", "?"):
            if unset:
                raise MissingVariableError(name, arg)
            return value
        if op in (":+", "+"):
            return "" if unset else arg
        return value or ""

    return _VARIABLE.sub(substitute, text)


def required_variables(text: str) -> set[str]:
    """Names of the variables the text marks as required (`${X:?...}` / `${X?...}`)."""
    return {m.group("braced") for m in _VARIABLE.finditer(text) if m.group("op") in (":?", "?")}


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a Compose .env file; comments and blank lines skipped."""
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip()
    return env


def load_compose(env: Mapping[str, str]) -> dict[str, Any]:
    """The compose file after interpolation, with YAML anchors and merge keys resolved (as Compose does)."""
    return yaml.safe_load(interpolate(COMPOSE_FILE.read_text(), env))


def command_args(service: Mapping[str, Any]) -> list[str]:
    """A service's command as an argument list (Compose accepts a list or a shell-split string)."""
    command = service.get("command", [])
    return command.split() if isinstance(command, str) else list(command)


def flag_value(args: list[str], flag: str) -> str | None:
    """The value of `--flag=value` or `--flag value` in an argument list."""
    for i, arg in enumerate(args):
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
        if arg == flag and i + 1 < len(args):
            return args[i + 1]
    return None


# --- Dockerfile -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Instruction:
    keyword: str        # upper case: FROM, RUN, COPY, ...
    args: str           # everything after the keyword, continuation lines joined
    line: int           # 1-based line of the keyword


@dataclass
class Stage:
    base: str                               # the FROM image or stage reference, unexpanded
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)


def dockerfile_instructions(text: str) -> list[Instruction]:
    """Instructions of a Dockerfile: comments dropped, `\\` continuations joined."""
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        if not pending:
            start = number
        continued = stripped.endswith("\\")
        pending.append(stripped[:-1].strip() if continued else stripped)
        if not continued:
            joined = " ".join(part for part in pending if part)
            keyword, _, args = joined.partition(" ")
            instructions.append(Instruction(keyword.upper(), args.strip(), start))
            pending = []
    return instructions


def parse_dockerfile(text: str) -> tuple[dict[str, str], list[Stage]]:
    """(global ARG defaults, build stages in order)."""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for instruction in dockerfile_instructions(text):
        if instruction.keyword == "FROM":
            parts = [p for p in instruction.args.split() if not p.startswith("--platform")]
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(base=parts[0], name=name))
        elif not stages:
            if instruction.keyword == "ARG":
                key, _, default = instruction.args.partition("=")
                global_args[key.strip()] = default.strip()
        else:
            stages[-1].instructions.append(instruction)
    return global_args, stages


# --- Helm chart -------------------------------------------------------------------------------------------

_VALUES_REFERENCE = re.compile(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")


def values_references(template: str) -> set[tuple[str, ...]]:
    """Every `.Values.a.b.c` path a template source mentions (also inside `$.Values...`)."""
    return {tuple(m.group(1).lstrip(".").split(".")) for m in _VALUES_REFERENCE.finditer(template)}


def template_sources() -> dict[str, str]:
    """Template file name -> source, helpers and NOTES.txt included."""
    return {p.name: p.read_text() for p in sorted(TEMPLATES_DIR.iterdir()) if p.is_file()}


def load_values() -> dict[str, Any]:
    return yaml.safe_load((CHART_DIR / "values.yaml").read_text())


def lookup(tree: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    """tree[path[0]][path[1]]...; KeyError naming the full path when a key is missing."""
    node: Any = tree
    for depth, key in enumerate(path):
        if not isinstance(node, Mapping) or key not in node:
            raise KeyError(".".join(path[: depth + 1]))
        node = node[key]
    return node


@dataclass(frozen=True)
class Rendered:
    """One `helm template` run: the Kubernetes objects by kind, and NOTES.txt."""

    objects: list[dict[str, Any]]
    notes: str

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str) -> dict[str, Any]:
        found = self.of_kind(kind)
        assert len(found) == 1, f"expected one {kind}, rendered {len(found)}"
        return found[0]

    def named(self, kind: str, name: str) -> dict[str, Any] | None:
        return next((o for o in self.of_kind(kind) if o["metadata"]["name"] == name), None)


class ChartError(Exception):
    """Helm refused the chart or the values; ``kind`` is helm-python-sdk's error class name
    (HelmRenderError for a template failure such as `required`/`fail`, HelmValuesError for the schema)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind


# The engine's side of the pipe: one JSON request per line in, one JSON reply per line out. Anything the
# Go library itself prints goes to stderr, so stdout carries only replies.
_ENGINE_LOOP = r"""
import json, os, sys
replies = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)
import helm_python
for line in sys.stdin:
    request = json.loads(line)
    try:
        if request["op"] == "render":
            with helm_python.Chart.load(request["chart"]) as chart:
                result = chart.render(request["values"], name=request["release"],
                                      namespace=request["namespace"], is_install=True)
        else:
            result = helm_python.lint(request["chart"], request["values"], kube_version=request["kube_version"])
        reply = {"result": result}
    except helm_python.HelmError as error:
        reply = {"error": type(error).__name__, "message": str(error)}
    replies.write(json.dumps(reply) + "\n")
    replies.flush()
"""


def helm_engine_available() -> bool:
    return importlib.util.find_spec("helm_python") is not None


class HelmEngine:
    """Helm's own engine (Helm v4's Go SDK as libhelm_c, through helm-python-sdk) in a child process.

    Loading the library starts a Go runtime (threads, signal handlers) in the loading process; a child keeps
    that away from the Ray and torch tests sharing the pytest process, and a Go crash from ending the run.
    Rendering is `helm template`: values coalesced over values.yaml, values.schema.json enforced, `lookup`
    empty (no cluster).
    """

    def __init__(self, chart_dir: Path = CHART_DIR) -> None:
        self.chart_dir = chart_dir
        self._process = subprocess.Popen([sys.executable, "-c", _ENGINE_LOOP], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, text=True)

    def _call(self, request: dict[str, Any]) -> Any:
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(json.dumps({"chart": str(self.chart_dir), **request}) + "\n")
        self._process.stdin.flush()
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError(f"the Helm engine process exited (code {self._process.wait()})")
        reply = json.loads(line)
        if "error" in reply:
            raise ChartError(reply["error"], reply["message"])
        return reply["result"]

    def render(self, values: Mapping[str, Any] | None = None, *, release: str = "demo",
               namespace: str = "tuning") -> Rendered:
        manifests = self._call({"op": "render", "values": dict(values or {}), "release": release,
                                "namespace": namespace})
        objects: list[dict[str, Any]] = []
        notes = ""
        for path, text in sorted(manifests.items()):
            if path.endswith("NOTES.txt"):
                notes = text
                continue
            objects.extend(doc for doc in yaml.safe_load_all(text) if doc)
        return Rendered(objects, notes)

    def lint(self, values: Mapping[str, Any] | None = None, *, kube_version: str) -> dict[str, Any]:
        """`helm lint`: {"messages": [{"severity": 1 info / 2 warning / 3 error, "path", "error"}], ...}."""
        return self._call({"op": "lint", "values": dict(values or {}), "kube_version": kube_version})

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        self._process.wait(timeout=30)
        if self._process.stdout is not None:
            self._process.stdout.close()


def pod_specs(obj: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, pod template) for every pod template inside a workload or RayCluster object."""
    kind, spec = obj["kind"], obj.get("spec", {})
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        yield kind, spec["template"]
    elif kind == "RayCluster":
        yield "head", spec["headGroupSpec"]["template"]
        for group in spec.get("workerGroupSpecs") or []:
            yield f"worker group {group['groupName']}", group["template"]


def container_env(container: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """EnvVar entries of a container by name."""
    return {entry["name"]: entry for entry in container.get("env") or []}
