"""helm/scaleladder read as files: metadata, values against their JSON schema, and what templates reference.

These checks need no Helm engine; tests/deploy/test_chart_render.py renders the chart with one.
"""

from __future__ import annotations

import copy
import json
import re
import tomllib

import pytest
import yaml

from tests.deploy.artifacts import (
    CHART_DIR, KNOWN_KINDS, REPO_ROOT, load_values, lookup, template_sources, values_references,
)

jsonschema = pytest.importorskip("jsonschema", reason="pip install jsonschema (test extra)")


@pytest.fixture(scope="module")
def values() -> dict:
    return load_values()


@pytest.fixture(scope="module")
def validator():
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)


def test_chart_metadata_is_a_helm3_application_chart() -> None:
    chart = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2" and chart["type"] == "application"
    assert chart["name"] == CHART_DIR.name == "scaleladder"
    assert re.fullmatch(r"\d+\.\d+\.\d+", chart["version"])
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert chart["appVersion"] == project["version"], "image tags default to appVersion = the package version"


def test_bundled_postgresql_is_an_optional_dependency(values: dict) -> None:
    chart = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())
    (postgresql,) = [d for d in chart["dependencies"] if d["name"] == "postgresql"]
    assert postgresql["condition"] == "postgresql.enabled"
    assert "bitnamicharts" in postgresql["repository"]
    assert lookup(values, ("postgresql", "enabled")) is False, "external PostgreSQL is the default"


def test_values_yaml_validates_against_values_schema(values: dict, validator) -> None:
    errors = sorted(validator.iter_errors(values), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)


@pytest.mark.parametrize("path, bad, why", [
    (("controlPlane", "replicas"), 2, "a misspelt key (replicaCount) is rejected"),
    (("controlPlane", "executor"), "local", "executor is ray or external"),
    (("database", "url"), "mysql://db/x", "only PostgreSQL URLs"),
    (("ray", "head", "rayStartParams", "num-cpus"), 0, "KubeRay takes rayStartParams as strings"),
    (("ray", "gpuWorkers", "gpusPerWorker"), 0, "a GPU group asks for at least one GPU"),
    (("ray", "cpuWorkers", "maxReplicas"), -1, "replica counts are non-negative"),
    (("ray", "autoscaling", "upscalingMode"), "Eager", "KubeRay's upscaling modes only"),
    (("ray", "gpuWorkers", "tolerations"), [{"key": "x", "operator": "Sometimes"}], "toleration operators"),
    (("controlPlane", "ingress", "hosts"), [{"host": "a.example", "paths": [{"path": "api"}]}],
     "paths start with / and carry a pathType"),
    (("controlPlane", "resources", "limits", "memory"), "lots", "resource quantities"),
])
def test_schema_rejects_bad_values(values: dict, validator, path: tuple, bad, why: str) -> None:
    broken = copy.deepcopy(values)
    parent = lookup(broken, path[:-1])
    parent[path[-1]] = bad
    assert list(validator.iter_errors(broken)), why


def test_every_value_a_template_references_exists_in_values_yaml(values: dict) -> None:
    missing = {}
    for name, source in template_sources().items():
        for path in values_references(source):
            try:
                lookup(values, path)
            except KeyError as error:
                missing.setdefault(name, []).append(f".Values.{'.'.join(path)} (no {error.args[0]})")
    assert not missing, missing


def test_reference_walk_finds_the_references_it_should() -> None:
    """The regex walk above is only as good as what it finds: check it on known template text."""
    found = values_references('{{ .Values.a.b }} {{- with $.Values.c_d.e }}{{ include "x" .Values.f }}')
    assert found == {("a", "b"), ("c_d", "e"), ("f",)}
    assert ("ray", "gpuWorkers", "gpusPerWorker") in values_references(template_sources()["raycluster.yaml"])


def test_every_documented_section_of_values_yaml_has_a_comment() -> None:
    lines = (CHART_DIR / "values.yaml").read_text().splitlines()
    undocumented = []
    for i, line in enumerate(lines):
        if re.match(r"^[A-Za-z]\w*:", line):
            above = lines[max(0, i - 3):i]
            if not any(prev.lstrip().startswith("#") for prev in above):
                undocumented.append(line)
    assert not undocumented, undocumented


def test_templates_declare_only_known_api_versions_and_kinds() -> None:
    """Each template's top-level apiVersion/kind, read from the source (rendering checks them again)."""
    seen = set()
    for name, source in template_sources().items():
        if name.startswith("_") or name.endswith(".txt"):
            continue
        api_versions = re.findall(r"^apiVersion:\s*(\S+)\s*$", source, flags=re.M)
        kinds = re.findall(r"^kind:\s*(\S+)\s*$", source, flags=re.M)
        assert api_versions and len(api_versions) == len(kinds), name
        for pair in zip(api_versions, kinds):
            assert pair in KNOWN_KINDS, f"{name}: {pair} is not a known Kubernetes/KubeRay API"
            seen.add(pair)
    assert {("apps/v1", "Deployment"), ("v1", "Service"), ("v1", "Secret"), ("batch/v1", "Job"),
            ("networking.k8s.io/v1", "Ingress"), ("ray.io/v1", "RayCluster")} <= seen


def test_chart_yaml_files_parse() -> None:
    for path in (CHART_DIR / "Chart.yaml", CHART_DIR / "values.yaml"):
        assert isinstance(yaml.safe_load(path.read_text()), dict), path
    assert json.loads((CHART_DIR / "values.schema.json").read_text())["type"] == "object"
