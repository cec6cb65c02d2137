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

{{/* Where sessions live: "redis" (config.session.store, or the demo Redis) or "cookie". */}}
{{- define "oidc-authz.sessionStore" -}}
{{- if .Values.redis.demo.enabled -}}
redis
{{- else -}}
{{- (default (dict) .Values.config.session).store | default "cookie" -}}
{{- end -}}
{{- end -}}

{{/* The Secret holding the Redis password: redis.existingSecret, or the demo Redis' own; empty when none. */}}
{{- define "oidc-authz.redisPasswordSecret" -}}
{{- if .Values.redis.existingSecret -}}
{{- .Values.redis.existingSecret -}}
{{- else if .Values.redis.demo.enabled -}}
{{- printf "%s-redis-demo" (include "oidc-authz.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "oidc-authz.redisPasswordKey" -}}
{{- if .Values.redis.existingSecret }}{{ .Values.redis.existingSecretPasswordKey }}{{ else }}redis-password{{ end -}}
{{- end -}}

{{/* The demo Redis (redis.demo): its own labels, so no selector of the service's ever picks its pod. */}}
{{- define "oidc-authz.redisDemoSelectorLabels" -}}
app.kubernetes.io/name: {{ include "oidc-authz.name" . }}-redis-demo
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "oidc-authz.redisDemoLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "oidc-authz.redisDemoSelectorLabels" . }}
app.kubernetes.io/component: session-store
app.kubernetes.io/part-of: oidc-authz
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* config.session with what the chart owns for Redis: the demo's url, the mounted password and CA files. */}}
{{- define "oidc-authz.sessionConfig" -}}
{{- $session := .session -}}
{{- $values := .root.Values -}}
{{- $redis := default (dict) $session.redis -}}
{{- if $values.redis.demo.enabled -}}
{{- if and (hasKey $session "store") (ne (toString $session.store) "redis") -}}
{{- fail (printf "redis.demo.enabled: keeps sessions in the demo Redis, but config.session.store is %q (remove it, or turn the demo off)" (toString $session.store)) -}}
{{- end -}}
{{- if or $redis.url $redis.sentinel $redis.cluster -}}
{{- fail "redis.demo.enabled: points config.session.redis.url at the demo Redis; remove config.session.redis.url/sentinel/cluster (or turn the demo off)" -}}
{{- end -}}
{{- $_ := set $redis "url" (printf "redis://%s-redis-demo.%s.svc.cluster.local:6379" (include "oidc-authz.fullname" .root) .root.Release.Namespace) -}}
{{- $_ := set $session "store" "redis" -}}
{{- end -}}
{{- if not (or $redis.url $redis.sentinel $redis.cluster) -}}
{{- fail "config.session.store: redis needs config.session.redis with one of url, sentinel or cluster (or redis.demo.enabled: true for a demo)" -}}
{{- end -}}
{{- if not $values.config.oidc -}}
{{- fail "config.session.store: redis keeps browser sessions, which need config.oidc" -}}
{{- end -}}
{{- if include "oidc-authz.redisPasswordSecret" .root -}}
{{- if $redis.passwordFile -}}
{{- fail "config.session.redis.passwordFile: the chart sets it to the password of redis.existingSecret (or the demo Redis); remove it" -}}
{{- end -}}
{{- $_ := set $redis "passwordFile" "/etc/oidc-authz/redis/password" -}}
{{- end -}}
{{- if $values.redis.existingSecretSentinelPasswordKey -}}
{{- if not $redis.sentinel -}}
{{- fail "redis.existingSecretSentinelPasswordKey: only for config.session.redis.sentinel" -}}
{{- end -}}
{{- if not $values.redis.existingSecret -}}
{{- fail "redis.existingSecretSentinelPasswordKey: a key of redis.existingSecret, which is not set" -}}
{{- end -}}
{{- $_ := set $redis.sentinel "passwordFile" "/etc/oidc-authz/redis/sentinel-password" -}}
{{- end -}}
{{- if or $values.redis.tls.caSecret $values.redis.tls.caConfigMap -}}
{{- if and $values.redis.tls.caSecret $values.redis.tls.caConfigMap -}}
{{- fail "redis.tls: set caSecret or caConfigMap, not both" -}}
{{- end -}}
{{- $tls := default (dict) $redis.tls -}}
{{- if $tls.caFile -}}
{{- fail "config.session.redis.tls.caFile: the chart sets it to the CA of redis.tls.caSecret/caConfigMap; remove it" -}}
{{- end -}}
{{- $_ := set $tls "caFile" "/etc/oidc-authz/redis-ca/ca.crt" -}}
{{- $_ := set $redis "tls" $tls -}}
{{- end -}}
{{- $_ := set $session "redis" $redis -}}
{{- end -}}

{{/* The service's config.yaml: values.config plus what the chart owns (ports, secret file paths, Redis files). */}}
{{- define "oidc-authz.config" -}}
{{- $config := deepCopy .Values.config -}}
{{- $listen := dict "host" "0.0.0.0" "port" (int .Values.service.port) "metricsPort" (int .Values.service.metricsPort) -}}
{{- $_ := set $config "listen" (merge $listen (default (dict) $config.listen)) -}}
{{- $session := default (dict) $config.session -}}
{{- $_ := set $session "secretsFile" "/etc/oidc-authz/secrets/cookie-secrets" -}}
{{- if eq (include "oidc-authz.sessionStore" .) "redis" -}}
{{- $_ := include "oidc-authz.sessionConfig" (dict "session" $session "root" .) -}}
{{- end -}}
{{- $_ := set $config "session" $session -}}
{{- /* Hot reload follows the chart's choice (reload.enabled) unless the config says otherwise. */ -}}
{{- $reload := default (dict) $config.reload -}}
{{- if not (hasKey $reload "watch") -}}
{{- $_ := set $reload "watch" .Values.reload.enabled -}}
{{- end -}}
{{- $_ := set $config "reload" $reload -}}
{{- if .Values.tracing.headersSecret -}}
{{- $tracing := default (dict) $config.tracing -}}
{{- $_ := set $tracing "headersFile" "/etc/oidc-authz/tracing/headers" -}}
{{- $_ := set $config "tracing" $tracing -}}
{{- end -}}
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

{{/*
The service's config without the fields a hot reload applies (files/reload-contract.json, generated from
src/reload/contract.ts): its checksum changes only with a change that needs a restart.
*/}}
{{- define "oidc-authz.restartOnlyConfig" -}}
{{- $config := include "oidc-authz.config" . | fromYaml -}}
{{- $contract := .Files.Get "files/reload-contract.json" | fromJson -}}
{{- range $contract.reloadableFields -}}
{{- $path := splitList "." . -}}
{{- if eq (len $path) 1 -}}
{{- $_ := unset $config (index $path 0) -}}
{{- else if eq (len $path) 2 -}}
{{- $parent := index $config (index $path 0) -}}
{{- if kindIs "map" $parent -}}
{{- $_ := unset $parent (index $path 1) -}}
{{- /* Written or not, an object left empty is the same config (log: { level: debug } vs no log). */ -}}
{{- if eq (len $parent) 0 }}{{ $_ := unset $config (index $path 0) }}{{ end -}}
{{- end -}}
{{- else -}}
{{- fail (printf "files/reload-contract.json: %s is deeper than the chart's restart-only checksum follows" .) -}}
{{- end -}}
{{- end -}}
{{- toJson $config -}}
{{- end -}}

{{/* The Istio extension provider, from files/envoy-contract.json (generated from src/envoy-contract.ts). */}}
{{- define "oidc-authz.extensionProvider" -}}
{{- $contract := .Files.Get "files/envoy-contract.json" | fromJson -}}
{{- $identity := default (dict) .Values.config.identity -}}
{{- $upstream := list (default "kubeflow-userid" $identity.userIdHeader) (default "kubeflow-groups" $identity.groupsHeader) -}}
{{- range $contract.authRequestHeaders }}{{ $upstream = append $upstream . }}{{ end -}}
{{- $exchanges := false -}}
{{- range (default (list) .Values.config.rules) }}{{ if .upstreamToken }}{{ $exchanges = true }}{{ end }}{{ end -}}
{{- /* authorization: forwarded ID tokens, and rules' exchanged tokens (upstreamHeaderPlan in src/envoy-contract.ts). */ -}}
{{- if or $identity.forwardIdToken $exchanges }}{{ $upstream = append $upstream "authorization" }}{{ end -}}
{{- /* Rules' offlineToken headers, each once (offlineTokenHeaders). */ -}}
{{- range (default (list) .Values.config.rules) }}{{ if .offlineToken }}{{ if not (has .offlineToken.header $upstream) }}{{ $upstream = append $upstream .offlineToken.header }}{{ end }}{{ end }}{{ end -}}
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

{{/* The ports the service reaches Redis on (networkPolicy.egress.redis.ports, else from config.session.redis), as JSON. */}}
{{- define "oidc-authz.redisPorts" -}}
{{- $ports := list -}}
{{- if .Values.networkPolicy.egress.redis.ports -}}
{{- $ports = .Values.networkPolicy.egress.redis.ports -}}
{{- else -}}
{{- $redis := (include "oidc-authz.config" . | fromYaml).session.redis -}}
{{- if $redis.url -}}
{{- $host := (urlParse $redis.url).host -}}
{{- $ports = list (ternary (regexFind "[0-9]+$" $host) "6379" (regexMatch ":[0-9]+$" $host) | int) -}}
{{- else if $redis.sentinel -}}
{{- range $redis.sentinel.nodes }}{{ $ports = append $ports (regexFind "[0-9]+$" . | int) }}{{ end -}}
{{- /* The master and replicas the Sentinels name: Redis' default port (set networkPolicy.egress.redis.ports otherwise). */ -}}
{{- $ports = append $ports 6379 -}}
{{- else if $redis.cluster -}}
{{- range $redis.cluster.nodes }}{{ $ports = append $ports (regexFind "[0-9]+$" . | int) }}{{ end -}}
{{- end -}}
{{- end -}}
{{- toJson (uniq $ports) -}}
{{- end -}}
