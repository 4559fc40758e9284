"""helm/scaleladder rendered by Helm's own engine (`helm template`, offline) and the objects checked.

Rendering goes through libhelm_c (helm-python-sdk, in a child process: the `helm` fixture): the same Go
template engine, Sprig functions, values coalescing and values.schema.json enforcement as `helm install`,
without a helm binary or a cluster. Core
Kubernetes objects are validated against Kubernetes' OpenAPI schemas (kubernetes-validate, strict: unknown
fields fail); KubeRay's RayCluster has no schema there, so its pod templates are validated as PodTemplates.
"""

from __future__ import annotations

import base64
import copy
import functools
import json
import re
from urllib.parse import unquote, urlsplit

import pytest

from tests.deploy.artifacts import KNOWN_KINDS, ChartError, container_env, load_values, pod_specs

EXTERNAL_URL = "postgresql+psycopg://tuner:hunter2@db.internal:5432/scaleladder"
EXTERNAL = {"database": {"url": EXTERNAL_URL}}

SCENARIOS = {
    "external-database": EXTERNAL,
    "bundled-postgresql": {"postgresql": {"enabled": True, "auth": {"password": "p@ss/word"}}},
    "existing-secrets": {"database": {"existingSecret": "team-db", "existingSecretKey": "dsn"},
                         "auth": {"existingSecret": "team-api", "existingSecretKey": "token"},
                         "ray": {"auth": {"existingSecret": "team-ray", "existingSecretKey": "ray-token"}}},
    "ingress-tls-no-gpu-no-autoscaling": {
        **EXTERNAL,
        "controlPlane": {"ingress": {"enabled": True, "className": "nginx",
                                     "hosts": [{"host": "tune.example.org",
                                                "paths": [{"path": "/", "pathType": "Prefix"}]}],
                                     "tls": [{"secretName": "tune-tls", "hosts": ["tune.example.org"]}]}},
        "ray": {"gpuWorkers": {"enabled": False}, "autoscaling": {"enabled": False},
                "storage": {"existingClaim": "ray-results-rwx"}}},
    "ray-auth-disabled-external-executor": {**EXTERNAL, "controlPlane": {"executor": "external"},
                                            "ray": {"auth": {"enabled": False}}},
}


def decoded(secret: dict, key: str) -> str:
    return base64.b64decode(secret["data"][key]).decode()


@pytest.fixture(scope="module", params=sorted(SCENARIOS))
def scenario(request, helm) -> tuple[str, dict, object]:
    values = SCENARIOS[request.param]
    return request.param, values, helm.render(values)


@pytest.fixture(scope="module")
def default(helm) -> object:
    return helm.render(EXTERNAL)


def test_every_rendered_object_is_a_known_kind_with_a_valid_name(scenario) -> None:
    _, _, rendered = scenario
    assert rendered.objects
    for obj in rendered.objects:
        assert (obj["apiVersion"], obj["kind"]) in KNOWN_KINDS, (obj["apiVersion"], obj["kind"])
        name = obj["metadata"]["name"]
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name) and len(name) <= 63, name


@pytest.fixture(scope="module")
def kubernetes_validate():
    module = pytest.importorskip("kubernetes_validate", reason="pip install kubernetes-validate (test extra)")
    # kubernetes-validate re-reads its large JSON schema files on every call: read each file once.
    with pytest.MonkeyPatch.context() as patch:
        read_once = functools.lru_cache(maxsize=None)(module.utils.schema_contents)
        patch.setattr(module.utils, "schema_contents", read_once)
        yield module


def test_objects_validate_against_kubernetes_schemas(scenario, kubernetes_validate) -> None:
    _, _, rendered = scenario
    # The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest the schemas know.
    for kube_version in ("1.25.0", kubernetes_validate.latest_version()):
        for obj in rendered.objects:
            if obj["apiVersion"].startswith("ray.io/"):
                for _, template in pod_specs(obj):
                    pod_template = {"apiVersion": "v1", "kind": "PodTemplate",
                                    "metadata": {"name": "check"}, "template": template}
                    kubernetes_validate.validate(pod_template, kube_version, strict=True)
            else:
                kubernetes_validate.validate(obj, kube_version, strict=True)


def test_kubernetes_schema_check_catches_a_misspelt_field(default, kubernetes_validate) -> None:
    deployment = copy.deepcopy(default.one("Deployment"))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["readinessprobe"] = container.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, "1.25.0", strict=True)


def test_every_secret_reference_resolves(scenario) -> None:
    """Each secretKeyRef names a Secret this release renders (with that key), or one the user named."""
    _, values, rendered = scenario
    secrets = {s["metadata"]["name"]: s for s in rendered.of_kind("Secret")}
    user_secrets = {v["existingSecret"]: v["existingSecretKey"]
                    for v in (values.get("database", {}), values.get("auth", {}),
                              values.get("ray", {}).get("auth", {}))
                    if v.get("existingSecret")}
    refs = []
    for obj in rendered.objects:
        containers = [c for _, pod in pod_specs(obj) for c in pod["spec"]["containers"]]
        if obj["kind"] == "RayCluster" and "autoscalerOptions" in obj["spec"]:
            containers.append(obj["spec"]["autoscalerOptions"])
        for container in containers:
            for entry in container_env(container).values():
                ref = entry.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    refs.append((ref["name"], ref["key"]))
    assert refs
    for name, key in refs:
        if name in user_secrets:
            assert user_secrets[name] == key
            assert name not in secrets, f"{name} is the user's Secret; the chart must not overwrite it"
        else:
            assert name in secrets and key in secrets[name]["data"], (name, key)


def test_migration_is_a_hook_job_running_db_upgrade_after_its_secret(scenario) -> None:
    name, values, rendered = scenario
    job = rendered.one("Job")
    hooks = job["metadata"]["annotations"]
    bundled = values.get("postgresql", {}).get("enabled", False)
    # A bundled database does not exist before install, so its first migration is post-install.
    expected = "post-install,pre-upgrade" if bundled else "pre-install,pre-upgrade"
    assert hooks["helm.sh/hook"] == expected, name
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["scaleladder", "db", "upgrade"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    database_env = container_env(container)["SCALELADDER_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    database_secret = rendered.named("Secret", database_env["name"])
    if database_secret is not None:
        # Pre-install hooks run before any regular object exists: the URL Secret must itself be a hook that
        # exists by the time the Job runs, on install and on upgrade (same phase: a lower weight runs first).
        secret_hooks = database_secret["metadata"]["annotations"]
        assert {"pre-install", "pre-upgrade"} <= set(secret_hooks["helm.sh/hook"].split(","))
        assert int(secret_hooks["helm.sh/hook-weight"]) < int(hooks["helm.sh/hook-weight"])


def test_database_url_comes_from_the_chosen_source(helm) -> None:
    external = helm.render(EXTERNAL, release="demo")
    assert decoded(external.named("Secret", "demo-scaleladder-database"), "url") == EXTERNAL_URL

    bundled = helm.render(SCENARIOS["bundled-postgresql"], release="demo")
    url = urlsplit(decoded(bundled.named("Secret", "demo-scaleladder-database"), "url"))
    assert url.scheme == "postgresql+psycopg"
    assert (url.hostname, url.port, url.path) == ("demo-postgresql", 5432, "/scaleladder")
    assert unquote(url.password) == "p@ss/word", "the password is URL-encoded inside the URL"

    existing = helm.render(SCENARIOS["existing-secrets"], release="demo")
    assert existing.named("Secret", "demo-scaleladder-database") is None


@pytest.mark.parametrize("values, message", [
    ({}, "set database.url"),
    ({"postgresql": {"enabled": True}}, "postgresql.auth.password is required"),
    ({**EXTERNAL, "ray": {"cpuWorkers": {"minReplicas": 5, "maxReplicas": 2}}}, "minReplicas <= maxReplicas"),
])
def test_incomplete_values_fail_with_a_clear_message(helm, values: dict, message: str) -> None:
    with pytest.raises(ChartError, match=re.escape(message)) as refused:
        helm.render(values)
    assert refused.value.kind == "HelmRenderError"


def test_helm_enforces_values_schema_at_render_time(helm) -> None:
    with pytest.raises(ChartError, match="replicas") as refused:
        helm.render({**EXTERNAL, "controlPlane": {"replicas": 3}})
    assert refused.value.kind == "HelmValuesError"


def test_control_plane_deployment_service_and_ingress_fit_together(helm) -> None:
    values = SCENARIOS["ingress-tls-no-gpu-no-autoscaling"]
    rendered = helm.render(values, release="demo")
    deployment, service, ingress = rendered.one("Deployment"), rendered.one("Service"), rendered.one("Ingress")
    pod = deployment["spec"]["template"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    (container,) = pod["spec"]["containers"]
    assert container["command"] == ["scaleladder", "serve", "--host", "0.0.0.0", "--port", "8000"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    (http,) = container["ports"]
    assert service["spec"]["ports"][0]["targetPort"] == http["name"]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": service["metadata"]["name"], "port": {"number": service["spec"]["ports"][0]["port"]}}
    assert ingress["spec"]["tls"] == values["controlPlane"]["ingress"]["tls"]
    assert ingress["spec"]["ingressClassName"] == "nginx"
    env = container_env(container)
    assert env["SCALELADDER_EXECUTOR"]["value"] == "ray"
    assert "SCALELADDER_BOOTSTRAP_TOKEN" in env and "SCALELADDER_DATABASE_URL" in env


def test_control_plane_reaches_the_ray_head_through_ray_client(default) -> None:
    cluster = default.one("RayCluster")
    head = cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    client_port = next(p["containerPort"] for p in head["ports"] if p["name"] == "client")
    env = container_env(default.one("Deployment")["spec"]["template"]["spec"]["containers"][0])
    # KubeRay names the head service <RayCluster name>-head-svc.
    assert env["RAY_ADDRESS"]["value"] == f"ray://{cluster['metadata']['name']}-head-svc:{client_port}"
    assert {p["name"]: p["containerPort"] for p in head["ports"]}["dashboard"] == 8265
    assert cluster["spec"]["headGroupSpec"]["rayStartParams"]["dashboard-host"] == "0.0.0.0"


def test_raycluster_has_head_cpu_and_gpu_groups_from_values(default) -> None:
    values = load_values()["ray"]
    cluster = default.one("RayCluster")
    assert cluster["apiVersion"] == "ray.io/v1"
    assert cluster["spec"]["rayVersion"] == values["version"]
    assert all(isinstance(v, str) for v in cluster["spec"]["headGroupSpec"]["rayStartParams"].values())
    groups = {g["groupName"]: g for g in cluster["spec"]["workerGroupSpecs"]}
    assert set(groups) == {"cpu", "gpu"}
    for name, group_values in (("cpu", values["cpuWorkers"]), ("gpu", values["gpuWorkers"])):
        group = groups[name]
        for key in ("replicas", "minReplicas", "maxReplicas"):
            assert group[key] == group_values[key], (name, key)
    cpu_pod = groups["cpu"]["template"]["spec"]
    gpu_pod = groups["gpu"]["template"]["spec"]
    gpus = values["gpuWorkers"]["gpusPerWorker"]
    gpu_resources = gpu_pod["containers"][0]["resources"]
    assert gpu_resources["requests"]["nvidia.com/gpu"] == gpu_resources["limits"]["nvidia.com/gpu"] == gpus
    assert "nvidia.com/gpu" not in str(cpu_pod["containers"][0]["resources"])
    assert gpu_pod["nodeSelector"] == values["gpuWorkers"]["nodeSelector"]
    assert gpu_pod["tolerations"] == values["gpuWorkers"]["tolerations"]
    assert gpu_pod["containers"][0]["image"].endswith("-" + values["gpuWorkers"]["variant"])
    assert cpu_pod["containers"][0]["image"].endswith("-" + values["image"]["variant"])


def test_gpu_group_follows_overrides(helm) -> None:
    rendered = helm.render({**EXTERNAL, "ray": {"gpuWorkers": {
        "gpusPerWorker": 4, "maxReplicas": 2, "nodeSelector": {"pool": "a100"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}]}}})
    gpu = next(g for g in rendered.one("RayCluster")["spec"]["workerGroupSpecs"] if g["groupName"] == "gpu")
    pod = gpu["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 4
    assert gpu["maxReplicas"] == 2
    # Maps are replaced key by key in Helm (so the default label stays unless nulled); lists are replaced.
    assert pod["nodeSelector"]["pool"] == "a100"
    assert pod["tolerations"] == [{"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}]


def test_autoscaling_options_switch_the_in_tree_autoscaler(helm, default) -> None:
    on = default.one("RayCluster")["spec"]
    assert on["enableInTreeAutoscaling"] is True
    assert on["autoscalerOptions"]["idleTimeoutSeconds"] >= 0
    assert on["autoscalerOptions"]["upscalingMode"] in ("Default", "Conservative", "Aggressive")
    off = helm.render(SCENARIOS["ingress-tls-no-gpu-no-autoscaling"]).one("RayCluster")["spec"]
    assert off["enableInTreeAutoscaling"] is False and "autoscalerOptions" not in off
    assert [g["groupName"] for g in off["workerGroupSpecs"]] == ["cpu"]


def test_one_ray_token_for_every_node_the_autoscaler_and_the_client(helm, default) -> None:
    cluster = default.one("RayCluster")
    containers = [c for _, pod in pod_specs(cluster) for c in pod["spec"]["containers"]]
    containers.append(cluster["spec"]["autoscalerOptions"])
    containers.append(default.one("Deployment")["spec"]["template"]["spec"]["containers"][0])
    refs = set()
    for container in containers:
        env = container_env(container)
        assert env["RAY_AUTH_MODE"]["value"] == "token"
        ref = env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]
        refs.add((ref["name"], ref["key"]))
    assert len(refs) == 1
    disabled = helm.render(SCENARIOS["ray-auth-disabled-external-executor"])
    for _, pod in pod_specs(disabled.one("RayCluster")):
        env = container_env(pod["spec"]["containers"][0])
        assert env["RAY_AUTH_MODE"]["value"] == "disabled" and "RAY_AUTH_TOKEN" not in env


def test_tokens_are_generated_when_not_given_and_kept_when_given(helm) -> None:
    first, second = helm.render(EXTERNAL), helm.render(EXTERNAL)
    generated = [decoded(r.named("Secret", "demo-scaleladder-auth"), "bootstrap-token") for r in (first, second)]
    assert len(generated[0]) == 64 and generated[0] != generated[1]
    given = helm.render({**EXTERNAL, "auth": {"bootstrapToken": "tok-123"}, "ray": {"auth": {"token": "ray-456"}}})
    assert decoded(given.named("Secret", "demo-scaleladder-auth"), "bootstrap-token") == "tok-123"
    assert decoded(given.named("Secret", "demo-scaleladder-ray-auth"), "token") == "ray-456"


def test_ray_storage_is_shared_when_a_claim_is_given(helm, default) -> None:
    def results_volume(rendered) -> list[dict]:
        return [next(v for v in pod["spec"]["volumes"] if v["name"] == "ray-storage")
                for _, pod in pod_specs(rendered.one("RayCluster"))]

    assert all("emptyDir" in v for v in results_volume(default))
    # The control plane tells the runners to use the path every Ray pod mounts.
    env = container_env(default.one("Deployment")["spec"]["template"]["spec"]["containers"][0])
    storage_path = json.loads(env["SCALELADDER_EXECUTOR_OPTIONS"]["value"])["storage_path"]
    for _, pod in pod_specs(default.one("RayCluster")):
        mounts = {m["name"]: m["mountPath"] for m in pod["spec"]["containers"][0]["volumeMounts"]}
        assert mounts["ray-storage"] == storage_path
    shared = helm.render(SCENARIOS["ingress-tls-no-gpu-no-autoscaling"])
    assert all(v["persistentVolumeClaim"]["claimName"] == "ray-results-rwx" for v in results_volume(shared))


def test_notes_explain_the_ray_dashboard_port_forward(default) -> None:
    head_service = f"{default.one('RayCluster')['metadata']['name']}-head-svc"
    assert f"port-forward svc/{head_service} 8265:8265" in default.notes
    assert "scaleladder-study-" in default.notes
    assert "demo-scaleladder-ray-auth" in default.notes


def test_helm_lint_finds_no_errors(helm) -> None:
    report = helm.lint(EXTERNAL, kube_version="v1.25.0")
    errors = [m for m in report["messages"] if m["severity"] >= 3]
    assert not errors, errors
    # The one expected warning: the optional Bitnami subchart is not vendored (`helm dependency update`
    # fetches it; this machine has no route to its registry).
    warnings = [m["error"] for m in report["messages"] if m["severity"] == 2]
    assert warnings in ([], ["chart directory is missing these dependencies: postgresql"]), warnings
