"""Renders the taskstream chart with the Helm v4 engine (helm-python-sdk) for every values file and
checks the result: strict lint, values schema, Kubernetes schemas (kubernetes-validate --strict),
Dapr CRD schemas (check-jsonschema), and the wiring the reference chart got wrong.

Run through charts/check.sh (it sets up the pinned venv): `pytest charts/taskstream/tests`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

CHART = Path(__file__).resolve().parents[1]
REPO = CHART.parents[1]
DAPR_SCHEMAS = Path(os.environ.get("TASKSTREAM_DAPR_SCHEMAS", REPO / "charts" / "schemas" / "dapr"))
KUBE_VERSION = os.environ.get("TASKSTREAM_KUBE_VERSION", "1.33.0")
RELEASE, NAMESPACE = "ts", "taskstream"

VALUES = {
    "default": None,
    "local": CHART / "values-local.yaml",
    "oke": CHART / "values-oke.yaml",
    "cluster": CHART / "ci" / "cluster-values.yaml",
}
CLUSTER_CASES = ["oke", "cluster"]
ROLES = ["api", "notification", "recurring", "audit"]
# Routes the binary serves on every role (web crate, CONTRACT §5).
REAL_ROUTES = {"/health", "/ready"}


def load_values(case: str) -> dict:
    path = VALUES[case]
    return yaml.safe_load(path.read_text()) if path else {}


def render(values: dict) -> list[dict]:
    chart = helm.Chart.load(str(CHART))
    out = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    docs = []
    for path, text in sorted(out.items()):
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                docs.append(doc)
    return docs


@pytest.fixture(scope="module", params=list(VALUES))
def case(request):
    return request.param


@pytest.fixture(scope="module")
def rendered():
    return {name: render(load_values(name)) for name in VALUES}


def by_kind(docs, kind):
    return [d for d in docs if d["kind"] == kind]


def one(docs, kind, name):
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def container(workload):
    (c,) = [c for c in workload["spec"]["template"]["spec"]["containers"] if c["name"] == "taskstream"]
    return c


def env_of(c):
    return {e["name"]: e for e in c.get("env", [])}


# --- engine checks ----------------------------------------------------------------------------


def test_lint_strict(case):
    report = helm.lint(str(CHART), load_values(case), strict=True, namespace=NAMESPACE,
                       kube_version=f"v{KUBE_VERSION}")
    assert report["errors"] == [], report
    bad = [m for m in report["messages"] if m["severity"] >= 2]
    assert bad == [], bad


def test_values_schema_accepts(case):
    chart = helm.Chart.load(str(CHART))
    chart.validate_schema(chart.merge_values(load_values(case)))


@pytest.mark.parametrize(
    "bad",
    [
        {"mode": "both"},
        {"image": {"pullPolicy": "Sometimes"}},
        {"securityContext": {"runAsNonRoot": False, "readOnlyRootFilesystem": True}},
        {"probes": {"liveness": {"path": "/healthz"}}},
        {"unknownKey": 1},
        {"secrets": {"jwt": {"value": "inline-secret"}}},
    ],
)
def test_values_schema_rejects(bad):
    with pytest.raises(helm.HelmError):
        render(bad)


def test_cluster_mode_requires_secret_refs():
    with pytest.raises(helm.HelmError, match="secrets.database.existingSecret"):
        render({"mode": "cluster", "secrets": {"jwt": {"existingSecret": "j"}}})
    with pytest.raises(helm.HelmError, match="secrets.jwt.existingSecret"):
        render({"mode": "cluster", "secrets": {"database": {"existingSecret": "d"}}})


def test_kubernetes_objects_validate_strict(case, rendered):
    core = [d for d in rendered[case] if not d["apiVersion"].startswith(("dapr.io/", "monitoring.coreos.com/"))]
    assert core
    for doc in core:
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)


def test_dapr_objects_validate_against_crds(case, rendered, tmp_path):
    dapr = [d for d in rendered[case] if d["apiVersion"].startswith("dapr.io/")]
    if case in CLUSTER_CASES:
        assert {d["kind"] for d in dapr} == {"Component", "Configuration", "Resiliency"}
    else:
        assert dapr == []
    for doc in dapr:
        group_version = doc["apiVersion"].split("/")[1]
        schema = DAPR_SCHEMAS / f"{doc['kind'].lower()}_{group_version}.json"
        assert schema.exists(), schema
        path = tmp_path / f"{doc['kind']}-{doc['metadata']['name']}.json"
        path.write_text(json.dumps(doc))
        result = subprocess.run(
            [str(Path(sys.executable).parent / "check-jsonschema"), "--schemafile", str(schema), str(path)],
            capture_output=True, text=True,
        )
        assert result.returncode == 0, result.stdout + result.stderr


# --- embedded mode ----------------------------------------------------------------------------


@pytest.mark.parametrize("case_name", ["default", "local"])
def test_embedded_single_writer_statefulset(case_name, rendered):
    docs = rendered[case_name]
    assert by_kind(docs, "Deployment") == []
    (sts,) = by_kind(docs, "StatefulSet")
    assert sts["spec"]["replicas"] == 1
    assert sts["spec"]["updateStrategy"]["type"] == "RollingUpdate"
    assert sts["spec"]["podManagementPolicy"] == "OrderedReady"
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    c = container(sts)
    assert c["args"] == ["serve"]
    assert env_of(c)["TASKSTREAM_DATA_DIR"]["value"] == "/data"
    assert {"name": "data", "mountPath": "/data"} in c["volumeMounts"]
    assert env_of(c)["TASKSTREAM_HTTP_ADDR"]["value"] == "0.0.0.0:8080"
    svc = one(docs, "Service", f"{RELEASE}-taskstream")
    assert svc["spec"]["ports"][0]["targetPort"] == "http"
    assert not [d for d in docs if "dapr.io/enabled" in d.get("spec", {}).get("template", {}).get("metadata", {}).get("annotations", {})]


def test_oke_embedded_volume_respects_oci_bv_minimum():
    docs = render({**load_values("oke"), "mode": "embedded"})
    (sts,) = by_kind(docs, "StatefulSet")
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["storageClassName"] == "oci-bv"
    size = claim["spec"]["resources"]["requests"]["storage"]
    assert size.endswith("Gi") and int(size[:-2]) >= 50


# --- every workload ---------------------------------------------------------------------------


def workloads(docs):
    return by_kind(docs, "Deployment") + by_kind(docs, "StatefulSet")


def test_pods_hardened_with_resources_and_real_probes(case, rendered):
    for w in workloads(rendered[case]):
        pod = w["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        c = container(w)
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert c["resources"]["requests"] and c["resources"]["limits"]
        assert c["livenessProbe"]["httpGet"]["path"] == "/health"
        assert c["readinessProbe"]["httpGet"]["path"] == "/ready"
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            assert c[probe]["httpGet"]["path"] in REAL_ROUTES
            assert c[probe]["httpGet"]["port"] == "http"
        assert {"name": "http", "containerPort": 8080, "protocol": "TCP"} in c["ports"]


def test_registry_value_used(case, rendered):
    values = load_values(case)
    image = {"registry": "ghcr.io", "repository": "taskstream/taskstream", **values.get("image", {})}
    tag = image.get("tag") or yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    prefix = f"{image['registry']}/" if image["registry"] else ""
    for w in workloads(rendered[case]):
        assert container(w)["image"] == f"{prefix}{image['repository']}:{tag}"
        pull = values.get("imagePullSecrets")
        if pull:
            assert w["spec"]["template"]["spec"]["imagePullSecrets"] == pull


def test_metrics_scraped(case, rendered):
    docs = rendered[case]
    values = load_values(case)
    for w in workloads(docs):
        ann = w["spec"]["template"]["metadata"]["annotations"]
        assert ann["prometheus.io/scrape"] == "true"
        assert ann["prometheus.io/path"] == "/metrics"
        assert ann["prometheus.io/port"] == "8080"
    monitors = by_kind(docs, "ServiceMonitor")
    if values.get("metrics", {}).get("serviceMonitor", {}).get("enabled"):
        (sm,) = monitors
        assert sm["spec"]["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "30s"}]
        selected = [s for s in by_kind(docs, "Service")
                    if all(s["metadata"]["labels"].get(k) == v for k, v in sm["spec"]["selector"]["matchLabels"].items())]
        assert len(selected) == (4 if values.get("mode") == "cluster" else 1)
    else:
        assert monitors == []


def test_grafana_dashboard(rendered):
    cm = one(rendered["oke"], "ConfigMap", f"{RELEASE}-taskstream-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    dash = json.loads(cm["data"]["taskstream.json"])
    exprs = " ".join(t["expr"] for p in dash["panels"] for t in p["targets"])
    for metric in ("http_requests_total", "http_request_duration_seconds_bucket", 'status=~"5..', "consumer_lag",
                   "reminder_fire_lateness_seconds_bucket"):
        assert metric in exprs, metric


def test_no_secret_values_in_values_files():
    for path in [CHART / "values.yaml", *[p for p in VALUES.values() if p]]:
        text = path.read_text()
        assert "kind: Secret" not in text
        for doc in [yaml.safe_load(text)]:
            for name, ref in doc.get("secrets", {}).items():
                assert set(ref) <= {"existingSecret", "key", "via"}, (path, name)
    for docs in render(load_values("cluster")), render({}):
        assert by_kind(docs, "Secret") == []


# --- cluster mode -----------------------------------------------------------------------------


@pytest.mark.parametrize("case_name", CLUSTER_CASES)
def test_a_deployment_and_service_per_role(case_name, rendered):
    docs = rendered[case_name]
    assert by_kind(docs, "StatefulSet") == []
    for role in ROLES:
        dep = one(docs, "Deployment", f"{RELEASE}-taskstream-{role}")
        svc = one(docs, "Service", f"{RELEASE}-taskstream-{role}")
        pod_labels = dep["spec"]["template"]["metadata"]["labels"]
        assert all(pod_labels.get(k) == v for k, v in svc["spec"]["selector"].items())
        assert svc["spec"]["selector"]["app.kubernetes.io/component"] == role
        assert svc["spec"]["ports"][0]["targetPort"] == "http"
        assert container(dep)["args"][:5] == ["serve", "--mode", "cluster", "--role", role]
    assert len(by_kind(docs, "Deployment")) == 4


@pytest.mark.parametrize("case_name", CLUSTER_CASES)
def test_dapr_annotations(case_name, rendered):
    docs = rendered[case_name]
    config = by_kind(docs, "Configuration")[0]["metadata"]["name"]
    ids = set()
    for role in ROLES:
        dep = one(docs, "Deployment", f"{RELEASE}-taskstream-{role}")
        ann = dep["spec"]["template"]["metadata"]["annotations"]
        assert ann["dapr.io/enabled"] == "true"
        assert ann["dapr.io/app-id"] == f"taskstream-{role}"
        assert ann["dapr.io/app-port"] == "8080"
        assert ann["dapr.io/config"] == config
        assert ann["dapr.io/enable-metrics"] == "true" and ann["dapr.io/metrics-port"] == "9090"
        for key in ("cpu-request", "cpu-limit", "memory-request", "memory-limit"):
            assert ann[f"dapr.io/sidecar-{key}"]
        ids.add(ann["dapr.io/app-id"])
    assert len(ids) == 4


def test_env_and_secrets_wired(rendered):
    oke = rendered["oke"]
    for role in ROLES:
        c = container(one(oke, "Deployment", f"{RELEASE}-taskstream-{role}"))
        env = env_of(c)
        assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "taskstream-db", "key": "database-url"}
        assert env["TASKSTREAM_JWT_SECRET"]["valueFrom"]["secretKeyRef"] == {"name": "taskstream-jwt", "key": "secret"}
        assert env["GROQ_API_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "taskstream-groq"
        assert env["TASKSTREAM_CORS_ORIGINS"]["value"] == "https://taskstream.vercel.app"
        assert env["TASKSTREAM_HTTP_ADDR"]["value"] == "0.0.0.0:8080"
    full = rendered["cluster"]
    for role in ROLES:
        dep = one(full, "Deployment", f"{RELEASE}-taskstream-{role}")
        c = container(dep)
        env = env_of(c)
        assert "DATABASE_URL" not in env
        assert c["args"][5:] == ["--database-url-secret", "ts-db/url"]
        assert env["DAPR_API_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "ts-dapr-token", "key": "token"}
        assert env["APP_API_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "ts-app-token", "key": "token"}
        ann = dep["spec"]["template"]["metadata"]["annotations"]
        assert ann["dapr.io/api-token-secret"] == "ts-dapr-token"
        assert ann["dapr.io/app-token-secret"] == "ts-app-token"
    # The embedded default needs no Secret at all (the binary generates the JWT secret).
    (sts,) = by_kind(rendered["default"], "StatefulSet")
    assert "TASKSTREAM_JWT_SECRET" not in env_of(container(sts))


def metadata_of(component):
    return {m["name"]: m for m in component["spec"]["metadata"]}


@pytest.mark.parametrize("case_name", CLUSTER_CASES)
def test_dapr_components(case_name, rendered):
    docs = rendered[case_name]
    app_ids = {f"taskstream-{r}" for r in ROLES}
    pubsub = one(docs, "Component", "pubsub")
    assert pubsub["spec"]["type"] == "pubsub.kafka" and pubsub["spec"]["version"] == "v1"
    md = metadata_of(pubsub)
    for key in ("brokers", "authType", "disableTls", "initialOffset", "maxMessageBytes"):
        assert key in md, key
    assert "consumerGroup" not in md and "consumerID" not in md, "one consumer group per app id"
    assert "authRequired" not in md
    assert int(md["maxMessageBytes"]["value"]) >= 1048576
    assert set(pubsub["scopes"]) == app_ids
    state = one(docs, "Component", "statestore")
    assert state["spec"]["type"] == "state.redis"
    assert "redisHost" in metadata_of(state)
    assert set(state["scopes"]) == {"taskstream-notification", "taskstream-recurring", "taskstream-audit"}
    secrets = one(docs, "Component", "kubernetes")
    assert secrets["spec"]["type"] == "secretstores.kubernetes"
    assert set(secrets["scopes"]) == app_ids
    for role in ROLES:
        ann = one(docs, "Deployment", f"{RELEASE}-taskstream-{role}")["spec"]["template"]["metadata"]["annotations"]
        assert ann["dapr.io/disable-builtin-k8s-secret-store"] == "true"
    # SASL by reference only
    full = metadata_of(one(rendered["cluster"], "Component", "pubsub"))
    assert full["saslPassword"]["secretKeyRef"] == {"name": "ts-kafka-sasl", "key": "saslPassword"}
    assert full["authType"]["value"] == "password"
    oke_state = metadata_of(one(rendered["oke"], "Component", "statestore"))
    assert oke_state["redisPassword"]["secretKeyRef"] == {"name": "taskstream-redis", "key": "redis-password"}


@pytest.mark.parametrize("case_name", CLUSTER_CASES)
def test_secret_store_rbac(case_name, rendered):
    docs = rendered[case_name]
    values = load_values(case_name)
    (role,) = by_kind(docs, "Role")
    (rule,) = role["rules"]
    assert rule["resources"] == ["secrets"] and rule["verbs"] == ["get"]
    assert rule["resourceNames"] == [values["secrets"]["database"]["existingSecret"]]
    (binding,) = by_kind(docs, "RoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    (sa,) = by_kind(docs, "ServiceAccount")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": NAMESPACE}]
    for dep in by_kind(docs, "Deployment"):
        assert dep["spec"]["template"]["spec"]["serviceAccountName"] == sa["metadata"]["name"]


@pytest.mark.parametrize("case_name", CLUSTER_CASES)
def test_configuration_and_resiliency(case_name, rendered):
    docs = rendered[case_name]
    (cfg,) = by_kind(docs, "Configuration")
    assert cfg["spec"]["metrics"]["enabled"] is True
    assert "samplingRate" in cfg["spec"]["tracing"]
    allowed = {a["name"] for a in cfg["spec"]["api"]["allowed"]}
    assert {"publish", "state", "secrets", "jobs"} <= allowed
    assert "invoke" not in allowed
    (res,) = by_kind(docs, "Resiliency")
    inbound = res["spec"]["targets"]["components"]["pubsub"]["inbound"]["retry"]
    assert res["spec"]["policies"]["retries"][inbound]["maxRetries"] > 0
    assert set(res["scopes"]) == {f"taskstream-{r}" for r in ROLES}


def test_api_hpa_and_ingress(rendered):
    full = rendered["cluster"]
    (hpa,) = by_kind(full, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == f"{RELEASE}-taskstream-api"
    assert "replicas" not in one(full, "Deployment", f"{RELEASE}-taskstream-api")["spec"]
    assert one(full, "Deployment", f"{RELEASE}-taskstream-notification")["spec"]["replicas"] == 2
    (ing,) = by_kind(full, "Ingress")
    backend = ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": f"{RELEASE}-taskstream-api", "port": {"name": "http"}}
    no_hpa = render({**load_values("cluster"), "cluster": {"roles": {"api": {"replicas": 3, "autoscaling": {"enabled": False}}}}})
    assert by_kind(no_hpa, "HorizontalPodAutoscaler") == []
    assert one(no_hpa, "Deployment", f"{RELEASE}-taskstream-api")["spec"]["replicas"] == 3


def test_oke_fit(rendered):
    oke = rendered["oke"]
    api = one(oke, "Service", f"{RELEASE}-taskstream-api")
    assert api["spec"]["type"] == "LoadBalancer"
    ann = api["metadata"]["annotations"]
    assert ann["service.beta.kubernetes.io/oci-load-balancer-shape"] == "flexible"
    assert ann["service.beta.kubernetes.io/oci-load-balancer-shape-flex-max"] == "10"
    for role in ROLES[1:]:
        assert one(oke, "Service", f"{RELEASE}-taskstream-{role}")["spec"]["type"] == "ClusterIP"
    for dep in by_kind(oke, "Deployment"):
        assert dep["spec"]["template"]["spec"]["nodeSelector"] == {"kubernetes.io/arch": "arm64"}


def test_notes_render(case):
    out = helm.Chart.load(str(CHART)).render(load_values(case), name=RELEASE, namespace=NAMESPACE)
    notes = next(v for k, v in out.items() if k.endswith("NOTES.txt"))
    assert "/health" in notes and "BETTER_AUTH_SECRET" in notes or "secrets.jwt.existingSecret" in notes


def test_scrape_annotations_can_be_turned_off():
    docs = render({"metrics": {"podAnnotations": False, "serviceMonitor": {"enabled": True}}})
    (sts,) = by_kind(docs, "StatefulSet")
    assert not any(k.startswith("prometheus.io/") for k in (sts["spec"]["template"]["metadata"].get("annotations") or {}))
    assert len(by_kind(docs, "ServiceMonitor")) == 1
    for doc in docs:
        if not doc["apiVersion"].startswith("monitoring.coreos.com/"):
            kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)


# --- packaging and workflows stay in step with the chart and .ci/run ---------------------------


def test_dockerfile_multiarch_nonroot_matches_chart():
    text = (REPO / "packaging" / "Dockerfile").read_text()
    assert "FROM --platform=$BUILDPLATFORM" in text and "ARG TARGETARCH" in text
    assert "aarch64-unknown-linux-gnu" in text and "x86_64-unknown-linux-gnu" in text
    assert "distroless" in text and "USER 65532:65532" in text
    assert "TASKSTREAM_HTTP_ADDR=0.0.0.0:8080" in text
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["securityContext"]["runAsUser"] == 65532 and values["httpPort"] == 8080
    assert (REPO / ".dockerignore").exists()


def test_workflows_run_the_same_checks():
    ci = yaml.safe_load((REPO / ".github" / "workflows" / "ci.yaml").read_text())
    runs = " ".join(step.get("run", "") for job in ci["jobs"].values() for step in job["steps"])
    for command in (".ci/run", "charts/check.sh", "packaging/cross-arm64.sh"):
        assert command in runs, command
    ci_run = (REPO / ".ci" / "run").read_text()
    assert "charts/check.sh" in ci_run and "packaging/cross-arm64.sh" in ci_run
    image = ci["jobs"]["image"]
    build = next(s for s in image["steps"] if s.get("uses", "").startswith("docker/build-push-action"))
    assert build["with"]["platforms"] == "linux/amd64,linux/arm64"
    assert build["with"]["file"] == "packaging/Dockerfile"
    cd = (REPO / ".github" / "workflows" / "cd-oke.yaml").read_text()
    assert "helm upgrade --install" in cd and "values-oke.yaml" in cd and "rollout status" in cd
    assert "image.registry=ghcr.io" in cd


def test_shell_in_workflows_and_scripts_passes_shellcheck(tmp_path):
    """The part of actionlint we can run offline: shellcheck on every `run:` block and script."""
    import re
    import shutil

    shellcheck = shutil.which("shellcheck")
    if not shellcheck:
        pytest.skip("shellcheck not installed (Debian: apt-get install shellcheck)")
    scripts = [REPO / "charts" / "check.sh", REPO / "packaging" / "cross-arm64.sh", REPO / ".ci" / "run"]
    for workflow in sorted((REPO / ".github" / "workflows").glob("*.yaml")):
        for job_name, job in yaml.safe_load(workflow.read_text())["jobs"].items():
            for index, step in enumerate(job.get("steps", [])):
                if "run" in step:
                    body = re.sub(r"\$\{\{[^}]*\}\}", "EXPR", step["run"])
                    path = tmp_path / f"{workflow.stem}-{job_name}-{index}.sh"
                    path.write_text("#!/usr/bin/env bash\nset -e\n" + body)
                    scripts.append(path)
    result = subprocess.run([shellcheck, "-S", "warning", *map(str, scripts)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
