#!/usr/bin/env bash
# Chart and workflow checks, offline: render + strict lint of charts/taskstream with the Helm v4
# engine (helm-python-sdk) for every values file, the values schema, kubernetes-validate --strict
# on core objects, check-jsonschema on Dapr objects (CRD schemas), the wiring assertions of
# charts/taskstream/tests; then the real `helm lint --strict` / `helm template` and kubeconform
# -strict per values file (charts/kubeconform.sh, which builds both from the Go module proxy
# when missing); and the GitHub workflows against the bundled workflow schema.
# Exits non-zero on any failure. Venv: $TASKSTREAM_CHART_VENV (default /var/tmp/taskstream-chart-venv).
set -euo pipefail
cd "$(dirname "$0")/.."

export PYTHONDONTWRITEBYTECODE=1
venv="${TASKSTREAM_CHART_VENV:-/var/tmp/taskstream-chart-venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r charts/requirements.txt

# Dapr CRD schemas (from the CRDs of the Dapr Helm chart up to v1.18.3), kept in the repository.
TASKSTREAM_DAPR_SCHEMAS="${TASKSTREAM_DAPR_SCHEMAS:-$PWD/charts/schemas/dapr}"
export TASKSTREAM_DAPR_SCHEMAS
echo "Dapr CRD schemas: $TASKSTREAM_DAPR_SCHEMAS"

"$venv/bin/python" -c 'import helm_python as h; print("helm engine:", h.helm_c_version(), "sdk", h.helm_sdk_version())'

echo "== chart: lint, render, schemas, wiring (pytest charts/taskstream/tests)"
"$venv/bin/python" -m pytest -q -p no:cacheprovider charts/taskstream/tests

echo "== the real helm CLI and kubeconform on every values file (charts/kubeconform.sh)"
charts/kubeconform.sh "$venv/bin/python"

echo "== dashboard JSON parses"
"$venv/bin/python" -m json.tool charts/taskstream/dashboards/taskstream.json >/dev/null

if [ -d .github/workflows ]; then
  echo "== GitHub workflows against the bundled schema (actionlint is not obtainable offline)"
  "$venv/bin/check-jsonschema" --builtin-schema vendor.github-workflows .github/workflows/*.yaml
fi
echo "chart checks passed"
