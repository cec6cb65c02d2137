#!/usr/bin/env bash
# make manifests: the chart's generated files from the code, then the kustomize manifests from the chart.
set -euo pipefail
cd "$(dirname "$0")/.."
HELM=${HELM:-.tools/bin/helm}
node scripts/chart-files.mjs
render() { # release namespace values output
  "$HELM" template "$1" charts/oidc-authz --namespace "$2" -f "$3" > "$4"
  echo "wrote $4"
}
render oidc-authz oidc-authz manifests/values/base.yaml manifests/base/oidc-authz.yaml
render oidc-authz oauth2-proxy manifests/values/kubeflow.yaml manifests/overlays/kubeflow/oidc-authz.yaml
