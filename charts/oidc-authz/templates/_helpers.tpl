{{/* Names and labels (Kubernetes recommended labels). */}}
{{- define "oidc-authz.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "oidc-authz.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "oidc-authz.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "oidc-authz.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "oidc-authz.selectorLabels" -}}
app.kubernetes.io/name: {{ include "oidc-authz.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "oidc-authz.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "oidc-authz.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: authz
app.kubernetes.io/part-of: oidc-authz
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "oidc-authz.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "oidc-authz.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "oidc-authz.secretName" -}}
{{- default (printf "%s-secrets" (include "oidc-authz.fullname" .)) .Values.secrets.existingSecret -}}
{{- end -}}

{{- define "oidc-authz.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The service's config.yaml: values.config plus what the chart owns (ports, secret file paths). */}}
{{- define "oidc-authz.config" -}}
{{- $config := deepCopy .Values.config -}}
{{- $listen := dict "host" "0.0.0.0" "port" (int .Values.service.port) "metricsPort" (int .Values.service.metricsPort) -}}
{{- $_ := set $config "listen" (merge $listen (default (dict) $config.listen)) -}}
{{- $session := default (dict) $config.session -}}
{{- $_ := set $session "secretsFile" "/etc/oidc-authz/secrets/cookie-secrets" -}}
{{- $_ := set $config "session" $session -}}
{{- if $config.oidc -}}
{{- $oidc := $config.oidc -}}
{{- if .Values.secrets.publicClient -}}
{{- $_ := unset $oidc "clientSecretFile" -}}
{{- else -}}
{{- $_ := set $oidc "clientSecretFile" "/etc/oidc-authz/secrets/client-secret" -}}
{{- end -}}
{{- end -}}
{{- toYaml $config -}}
{{- end -}}

{{/* The Istio extension provider, from files/envoy-contract.json (generated from src/envoy-contract.ts). */}}
{{- define "oidc-authz.extensionProvider" -}}
{{- $contract := .Files.Get "files/envoy-contract.json" | fromJson -}}
{{- $identity := default (dict) .Values.config.identity -}}
{{- $upstream := list (default "kubeflow-userid" $identity.userIdHeader) (default "kubeflow-groups" $identity.groupsHeader) -}}
{{- range $contract.authRequestHeaders }}{{ $upstream = append $upstream . }}{{ end -}}
{{- if $identity.forwardIdToken }}{{ $upstream = append $upstream "authorization" }}{{ end -}}
{{- range $contract.alwaysToUpstreamOnAllow }}{{ $upstream = append $upstream . }}{{ end -}}
name: {{ .Values.istio.providerName }}
envoyExtAuthzHttp:
  service: {{ printf "%s.%s.svc.cluster.local" (include "oidc-authz.fullname" .) .Release.Namespace }}
  port: {{ .Values.service.port }}
  pathPrefix: {{ default "/authz" .Values.config.checkPathPrefix }}
  timeout: {{ .Values.istio.providerTimeout }}
  failOpen: {{ $contract.failOpen }}
  statusOnError: {{ $contract.statusOnError | quote }}
  includeRequestHeadersInCheck: {{ toJson $contract.includeRequestHeadersInCheck }}
  headersToUpstreamOnAllow: {{ toJson $upstream }}
  headersToDownstreamOnAllow: {{ toJson $contract.headersToDownstreamOnAllow }}
  headersToDownstreamOnDeny: {{ toJson $contract.headersToDownstreamOnDeny }}
{{- end -}}

{{/* RequestAuthentication rules: explicit, or one covering every configured issuer. */}}
{{- define "oidc-authz.jwtRules" -}}
{{- $rules := list -}}
{{- /* fromHeaders: only the Authorization header (Istio would also take an access_token query parameter). */ -}}
{{- $fromHeaders := list (dict "name" "Authorization" "prefix" "Bearer ") -}}
{{- if .Values.config.oidc -}}
{{- $rule := dict "issuer" .Values.config.oidc.issuer "forwardOriginalToken" true "fromHeaders" $fromHeaders -}}
{{- if .Values.config.oidc.jwksUri }}{{ $_ := set $rule "jwksUri" .Values.config.oidc.jwksUri }}{{ end -}}
{{- $rules = append $rules $rule -}}
{{- end -}}
{{- range .Values.config.issuers -}}
{{- $rule := dict "issuer" .issuer "forwardOriginalToken" true "fromHeaders" $fromHeaders -}}
{{- /* With authorized parties, a token may pass oidc-authz on azp alone: an audience list here would refuse it. */ -}}
{{- if and .audiences (not .authorizedParties) }}{{ $_ := set $rule "audiences" .audiences }}{{ end -}}
{{- if .jwksUri }}{{ $_ := set $rule "jwksUri" .jwksUri }}{{ end -}}
{{- $rules = append $rules $rule -}}
{{- end -}}
{{- toJson $rules -}}
{{- end -}}

{{/* config.listen.shutdownTimeout in milliseconds (the service's duration syntax: 20s, 1m30s, 500ms, or seconds). */}}
{{- define "oidc-authz.shutdownTimeoutMs" -}}
{{- $value := "20s" -}}
{{- with .Values.config.listen }}{{ if hasKey . "shutdownTimeout" }}{{ $value = .shutdownTimeout }}{{ end }}{{ end -}}
{{- $text := toString $value | trim -}}
{{- if regexMatch "^[0-9]+(\\.[0-9]+)?$" $text -}}
{{- mulf (float64 $text) 1000 | int64 -}}
{{- else -}}
{{- $units := dict "ms" 1 "s" 1000 "m" 60000 "h" 3600000 "d" 86400000 -}}
{{- $total := 0 -}}
{{- range regexFindAll "[0-9]+(ms|s|m|h|d)" $text -1 -}}
{{- $unit := regexFind "(ms|s|m|h|d)$" . -}}
{{- $total = add $total (mul (trimSuffix $unit . | int64) (get $units $unit)) -}}
{{- end -}}
{{- $total -}}
{{- end -}}
{{- end -}}

{{/* Refuse a grace period that would SIGKILL pods before they have drained. */}}
{{- define "oidc-authz.validate" -}}
{{- $shutdownMs := include "oidc-authz.shutdownTimeoutMs" . | int64 -}}
{{- if le (mul (int64 .Values.terminationGracePeriodSeconds) 1000) $shutdownMs -}}
{{- fail (printf "terminationGracePeriodSeconds: %d must be longer than config.listen.shutdownTimeout (%dms), or Kubernetes kills pods that are still draining" (int64 .Values.terminationGracePeriodSeconds) $shutdownMs) -}}
{{- end -}}
{{- end -}}
