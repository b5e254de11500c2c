#!/usr/bin/env bash
# The real `helm` CLI and kubeconform on every values file of charts/taskstream: for each,
# `helm lint --strict`, `helm template`, then kubeconform -strict on the rendered objects with
# the Kubernetes schemas kubernetes-validate ships (no network) and the Dapr CRD schemas of
# charts/schemas/dapr. helm and kubeconform are built from the Go module proxy at pinned
# versions into $TASKSTREAM_CHART_TOOLS (default /var/tmp/taskstream-chart-tools) when missing.
#
#   charts/kubeconform.sh PYTHON    # PYTHON: the chart venv's interpreter (has kubernetes-validate)
set -euo pipefail
cd "$(dirname "$0")/.."

python="${1:?usage: charts/kubeconform.sh PATH-TO-VENV-PYTHON}"
helm_version=v3.22.0
kubeconform_version=v0.8.0
kube_version="${TASKSTREAM_KUBE_VERSION:-1.33.0}"
tools="${TASKSTREAM_CHART_TOOLS:-/var/tmp/taskstream-chart-tools}"
bin="$tools/bin-helm-$helm_version-kubeconform-$kubeconform_version"

if ! { [ -x "$bin/helm" ] && [ -x "$bin/kubeconform" ]; }; then
  command -v go >/dev/null || { echo "charts/kubeconform.sh: needs Go to build helm and kubeconform" >&2; exit 1; }
  echo "building helm $helm_version and kubeconform $kubeconform_version from the Go module proxy into $bin"
  mkdir -p "$bin.tmp"
  (
    export GOBIN="$bin.tmp" CGO_ENABLED=0 GOFLAGS="-modcacherw -buildvcs=false"
    export GOMODCACHE="$tools/gomod" GOCACHE="$tools/gocache"
    go install -ldflags "-X main.version=$kubeconform_version" \
      "github.com/yannh/kubeconform/cmd/kubeconform@$kubeconform_version"
    go install -ldflags "-X helm.sh/helm/v3/internal/version.version=$helm_version" \
      "helm.sh/helm/v3/cmd/helm@$helm_version"
  )
  rm -rf "$bin"
  mv "$bin.tmp" "$bin"
fi
helm="$bin/helm"
kubeconform="$bin/kubeconform"
"$helm" version --short
"$kubeconform" -v

schemas="$("$python" -c 'import kubernetes_validate, os; print(os.path.dirname(kubernetes_validate.__file__))')"
schemas="$schemas/kubernetes-json-schema/v$kube_version-local-strict"
[ -d "$schemas" ] || { echo "no Kubernetes $kube_version schemas in $schemas" >&2; exit 1; }
dapr_schemas="${TASKSTREAM_DAPR_SCHEMAS:-$PWD/charts/schemas/dapr}"

# Helm keeps its caches and config out of $HOME.
export HELM_CACHE_HOME="$tools/helm/cache" HELM_CONFIG_HOME="$tools/helm/config" HELM_DATA_HOME="$tools/helm/data"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
chart=charts/taskstream
for values in "" values-local.yaml values-oke.yaml ci/cluster-values.yaml; do
  name="${values:-values.yaml (defaults)}"
  args=()
  [ -n "$values" ] && args=(-f "$chart/$values")
  echo "== $name: helm lint --strict, helm template, kubeconform -strict"
  "$helm" lint --strict --kube-version "$kube_version" "${args[@]}" "$chart" >"$out/lint.txt" \
    || { cat "$out/lint.txt"; exit 1; }
  "$helm" template taskstream "$chart" --namespace taskstream --kube-version "$kube_version" \
    "${args[@]}" >"$out/rendered.yaml"
  # kubernetes-validate's schemas point into a shared _definitions.json by an absolute
  # "/api/..." $ref that kubeconform cannot follow: write standalone copies (definitions
  # inlined) of the schemas the rendered kinds need, named as kubeconform looks them up.
  mkdir -p "$out/k8s"
  "$python" - "$schemas" "$out/rendered.yaml" "$out/k8s" <<'PY'
import json, pathlib, sys, yaml
schemas, rendered, target = pathlib.Path(sys.argv[1]), sys.argv[2], pathlib.Path(sys.argv[3])
definitions = (schemas / "_definitions.json").read_text()
ref = '"/api/_definitions.json#/$defs/'
defs = json.loads(definitions.replace(ref, '"#/$defs/'))["$defs"]
for doc in yaml.safe_load_all(open(rendered)):
    if not doc:
        continue
    group, _, version = doc["apiVersion"].rpartition("/")
    suffix = "-" + group.split(".")[0] + "-" + version if group else "-" + version
    name = f"{doc['kind'].lower()}{suffix.lower()}.json"
    source = schemas / name
    if source.exists() and not (target / name).exists():
        schema = json.loads(source.read_text().replace(ref, '"#/$defs/'))
        schema["$defs"] = defs
        (target / name).write_text(json.dumps(schema))
PY
  # ServiceMonitor (Prometheus Operator) has no schema here; everything else must have one.
  "$kubeconform" -strict -summary -kubernetes-version "$kube_version" \
    -schema-location "$out/k8s/{{ .ResourceKind }}{{ .KindSuffix }}.json" \
    -schema-location "$dapr_schemas/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json" \
    -skip ServiceMonitor \
    "$out/rendered.yaml"
done
