#!/usr/bin/env bash
# make manifests: the chart's generated files from the code, then the kustomize manifests and the istiod
# values files from the chart. test/chart fails when a committed copy differs from what this writes.
set -euo pipefail
cd "$(dirname "$0")/.."
HELM=${HELM:-.tools/bin/helm}
node scripts/chart-files.mjs
render() { # release namespace values output
  "$HELM" template "$1" charts/oidc-authz --namespace "$2" -f "$3" > "$4"
  echo "wrote $4"
}
# The meshConfig.extensionProviders entry (data."istiod-values.yaml" of the <fullname>-istio-mesh-config
# ConfigMap) as a values file for istiod's chart.
istiod_values() { # release namespace values output
  "$HELM" template "$1" charts/oidc-authz --namespace "$2" ${3:+-f "$3"} --show-only templates/istio-mesh-config.yaml \
    | node scripts/istiod-values.mjs "$1" "$2" > "$4"
  echo "wrote $4"
}
render oidc-authz oidc-authz manifests/values/base.yaml manifests/base/oidc-authz.yaml
render oidc-authz oauth2-proxy manifests/values/kubeflow.yaml manifests/overlays/kubeflow/oidc-authz.yaml
istiod_values oidc-authz oidc-authz "" charts/oidc-authz/istiod-values.yaml
istiod_values oidc-authz oauth2-proxy manifests/values/kubeflow.yaml manifests/overlays/kubeflow/istiod-values.yaml
# Kubeflow's Istio is installed from manifests: the same provider as a patch of ConfigMap istio.
node scripts/kubeflow-mesh.mjs < manifests/overlays/kubeflow/istiod-values.yaml > manifests/components/kubeflow-istio-mesh/cm.istio-mesh.yaml
echo "wrote manifests/components/kubeflow-istio-mesh/cm.istio-mesh.yaml"
