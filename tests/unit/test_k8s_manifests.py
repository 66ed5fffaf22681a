"""infra/k8s: every manifest valid against the Kubernetes API schemas (kubernetes-validate, strict:
an unknown or misplaced field fails), the custom resources (External Secrets, kustomize) checked
for the fields their controllers need, and the pieces wired to each other and to prefect.yaml:
names referenced exist, the stream processor has a PodDisruptionBudget, the work pool's base job
template renders to a valid Job as Prefect fills it in.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from prefect.utilities.templating import apply_values, find_placeholders

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "infra" / "k8s"
BASE_JOB_TEMPLATE = K8S / "prefect" / "base-job-template.json"
KUBERNETES_VERSION = "1.33.0"  # EKS's standard-support versions run from about here
CUSTOM_KINDS = {"ExternalSecret", "SecretStore", "Kustomization"}
# KubernetesWorkerJobConfiguration's fields (prefect-kubernetes 0.8): job_configuration may set no other.
WORKER_JOB_FIELDS = {
    "command", "env", "labels", "name", "annotations", "namespace", "job_manifest", "cluster_config",
    "job_watch_timeout_seconds", "pod_watch_timeout_seconds", "stream_output",
}


def load_docs() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.append((path.name, doc))
    return docs


DOCS = load_docs()


def of_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for _, doc in DOCS if doc["kind"] == kind}


def pod_specs() -> dict[str, dict[str, Any]]:
    return {name: d["spec"]["template"]["spec"] for name, d in of_kind("Deployment").items()}


@pytest.mark.parametrize(
    "doc", [d for _, d in DOCS if d["kind"] not in CUSTOM_KINDS], ids=lambda d: f"{d['kind']}/{d['metadata']['name']}"
)
def test_manifest_matches_the_kubernetes_schema(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_schema_check_rejects_a_misplaced_field() -> None:
    """The check above can fail: a field one level off is an error, not ignored."""
    bad = copy.deepcopy(of_kind("Deployment")["foresight-stream"])
    bad["spec"]["template"]["spec"]["containers"][0]["replicas"] = 3
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, KUBERNETES_VERSION, strict=True)


def test_every_file_is_in_the_kustomization() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files
    images = {image["name"] for image in kustomization["images"]}
    used = {c["image"].rsplit(":", 1)[0] for spec in pod_specs().values() for c in spec["containers"]}
    assert used == images, "kustomize would not set the image of every container"


def test_external_secrets_fill_every_secret_the_pods_read() -> None:
    stores = of_kind("SecretStore")
    produced: dict[str, set[str]] = {}
    for name, external in of_kind("ExternalSecret").items():
        spec = external["spec"]
        assert spec["secretStoreRef"]["name"] in stores, name
        assert spec["refreshInterval"]
        keys = set()
        for item in spec["data"]:
            assert item["remoteRef"]["key"].startswith("foresight/"), "outside the secrets Terraform makes"
            keys.add(item["secretKey"])
        produced[spec["target"]["name"]] = keys
    for store in stores.values():
        account = store["spec"]["provider"]["aws"]["auth"]["jwt"]["serviceAccountRef"]["name"]
        assert account in of_kind("ServiceAccount")
    template = json.loads(BASE_JOB_TEMPLATE.read_text())["job_configuration"]["job_manifest"]
    specs = [*pod_specs().values(), template["spec"]["template"]["spec"]]
    for spec in specs:
        for container in spec["containers"]:
            for source in container.get("envFrom", []):
                if "secretRef" in source:
                    assert source["secretRef"]["name"] in produced
    # Settings keys: FORESIGHT_<SECTION>__<KEY> as pydantic-settings reads them.
    assert {"FORESIGHT_SINKS__PAGERDUTY_ROUTING_KEY", "FORESIGHT_SINKS__GRAFANA_TOKEN",
            "FORESIGHT_SINKS__FORECAST_STORE_URL"} <= produced["foresight-secrets"]


def test_terraform_makes_every_remote_secret() -> None:
    made = set(re.findall(r"^\s+(\w+)\s+=", (ROOT / "infra/terraform/secrets.tf").read_text().split("}")[0], re.M))
    for external in of_kind("ExternalSecret").values():
        for item in external["spec"]["data"]:
            assert item["remoteRef"]["key"].removeprefix("foresight/") in made


def test_pods_are_unprivileged_and_bounded() -> None:
    template = json.loads(BASE_JOB_TEMPLATE.read_text())["job_configuration"]["job_manifest"]
    for name, spec in {**pod_specs(), "flow-run Job": template["spec"]["template"]["spec"]}.items():
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False and context["readOnlyRootFilesystem"] is True, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            assert {"requests", "limits"} <= set(container["resources"]), name
            mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
            assert "/tmp" in mounts, f"{name}: a read-only root needs a writable /tmp"
        accounts = of_kind("ServiceAccount")
        account = spec["serviceAccountName"]
        assert account in accounts or account.startswith("{{"), name


def test_stream_processor_has_a_disruption_budget_and_probes() -> None:
    stream = of_kind("Deployment")["foresight-stream"]
    labels = stream["spec"]["template"]["metadata"]["labels"]
    budgets = [
        pdb for pdb in of_kind("PodDisruptionBudget").values()
        if pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    ]
    assert len(budgets) == 1
    assert budgets[0]["spec"]["maxUnavailable"] < stream["spec"]["replicas"]
    container = stream["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][:2] == ["foresight", "stream"]
    port = {p["name"]: p["containerPort"] for p in container["ports"]}["metrics"]
    config = yaml.safe_load(of_kind("ConfigMap")["foresight-config"]["data"]["foresight.yaml"])
    assert config["stream"]["metrics_port"] == port, "the probes watch another port than the stream serves"
    assert container["livenessProbe"]["httpGet"]["path"] == "/metrics"
    # SIGTERM checkpoints before exit: the grace period must leave time for it.
    assert stream["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 30


def test_worker_polls_the_pool_prefect_yaml_deploys_to() -> None:
    deployments = yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]
    pools = {d["work_pool"]["name"] for d in deployments}
    command = of_kind("Deployment")["foresight-worker"]["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[command.index("--pool") + 1] in pools
    assert command[command.index("--type") + 1] == "kubernetes"


def test_worker_role_is_namespaced_and_minimal() -> None:
    assert not of_kind("ClusterRole") and not of_kind("ClusterRoleBinding")
    rules = of_kind("Role")["foresight-worker"]["rules"]
    verbs = {verb for rule in rules for verb in rule["verbs"]}
    assert "*" not in verbs and not {"update", "patch", "escalate", "bind"} & verbs
    resources = {res for rule in rules for res in rule["resources"]}
    assert "secrets" not in resources, "the worker needs no secret: the Jobs read them"


# --- the Prefect work pool's base job template -------------------------------------------------


@pytest.fixture(scope="module")
def base_job_template() -> dict[str, Any]:
    return json.loads(BASE_JOB_TEMPLATE.read_text())


def rendered_job(template: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """The Job as the worker builds it: variables' defaults under the deployment's values, placed
    with Prefect's own templating; then what prepare_for_flow_run adds (env as a list, the
    command, a generateName)."""
    defaults = {k: v["default"] for k, v in template["variables"]["properties"].items() if "default" in v}
    job = apply_values(template["job_configuration"], {**defaults, **values}, remove_notset=True)
    manifest = job["job_manifest"]
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    container["env"] = [{"name": k, "value": v} for k, v in (container.get("env") or {}).items()]
    container.setdefault("args", ["prefect", "flow-run", "execute"])
    manifest["metadata"]["generateName"] = "clever-otter-"
    manifest["metadata"]["labels"] = {"prefect.io/flow-run-name": "clever-otter"}
    return manifest


def test_base_job_template_fields_and_placeholders(base_job_template: dict[str, Any]) -> None:
    configuration = base_job_template["job_configuration"]
    assert set(configuration) <= WORKER_JOB_FIELDS
    variables = set(base_job_template["variables"]["properties"])
    used = {p.name for p in find_placeholders(json.dumps(configuration))}
    assert used <= variables, f"placeholders without a variable: {sorted(used - variables)}"
    assert variables - used == set(), f"variables nothing uses: {sorted(variables - used)}"


def test_base_job_template_renders_a_valid_job(base_job_template: dict[str, Any]) -> None:
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    job_env = spec["definitions"]["work_pool"]["job_variables"]["env"]
    job = rendered_job(base_job_template, {"env": job_env, "name": "clever-otter"})
    kubernetes_validate.validate(job, KUBERNETES_VERSION, strict=True)
    pod = job["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "foresight-runs"
    assert job["spec"]["backoffLimit"] == 0, "Prefect decides about retries, not the Job controller"
    container = pod["containers"][0]
    assert {"name": "DO_NOT_TRACK", "value": "1"} in container["env"]
    claims = {v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v}
    assert claims <= set(of_kind("PersistentVolumeClaim")) and claims
    config_maps = {s["configMapRef"]["name"] for s in container["envFrom"] if "configMapRef" in s}
    assert config_maps <= set(of_kind("ConfigMap"))


def test_base_job_template_overrides_reach_the_job(base_job_template: dict[str, Any]) -> None:
    job = rendered_job(base_job_template, {"memory_limit": "16Gi", "image": "registry.example/foresight@sha256:abc"})
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"]["memory"] == "16Gi"
    assert container["image"] == "registry.example/foresight@sha256:abc"
