{{/*
The chart name, or nameOverride.
*/}}
{{- define "gateway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The fully qualified app name, truncated to 63 characters (the DNS label limit). The release name
alone when it already contains the chart name.
*/}}
{{- define "gateway.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "gateway.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels on every resource. helm.sh/chart and the version change on upgrade, so they never go
into selectors (those are immutable on Deployments).
*/}}
{{- define "gateway.labels" -}}
helm.sh/chart: {{ include "gateway.chart" . }}
{{ include "gateway.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: {{ include "gateway.name" . }}
{{- end }}

{{/*
The stable subset of labels used in selectors.
*/}}
{{- define "gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
The ServiceAccount the pods run as.
*/}}
{{- define "gateway.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "gateway.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The image reference: a digest wins over a tag; the tag defaults to the appVersion.
*/}}
{{- define "gateway.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
The Secret holding provider credentials, API-key hashes and the Redis URL.
*/}}
{{- define "gateway.secretName" -}}
{{- default (include "gateway.fullname" .) .Values.existingSecret }}
{{- end }}

{{/*
The Secret key of one provider's credential. Call with (list $name $provider).
*/}}
{{- define "gateway.credentialKey" -}}
{{- $name := index . 0 }}{{- $p := index . 1 }}
{{- default $name $p.secretKey }}
{{- end }}

{{/*
The environment variable carrying one provider's credential when credentialsAs is "env".
Not GATEWAY_-prefixed, so the gateway's own settings never read it.
*/}}
{{- define "gateway.credentialEnv" -}}
{{- printf "PROVIDER_CREDENTIAL_%s" (. | upper | replace "-" "_") }}
{{- end }}

{{/*
Where the config file is mounted; credential files sit beside it, under credentials/.
*/}}
{{- define "gateway.configDir" -}}
/etc/gateway
{{- end }}

{{/*
The Redis URL the gateway uses: the internal Redis when enabled, else redis.url.
*/}}
{{- define "gateway.redisUrl" -}}
{{- if .Values.redis.internal.enabled }}
{{- printf "redis://%s-redis:6379/0" (include "gateway.fullname" .) }}
{{- else }}
{{- .Values.redis.url }}
{{- end }}
{{- end }}

{{/*
The API keys in the gateway's own format (a list), from the apiKeys map.
*/}}
{{- define "gateway.apiKeys" -}}
{{- $keys := list }}
{{- range $id, $k := .Values.apiKeys }}
{{- $keys = append $keys (merge (dict "id" $id) $k) }}
{{- end }}
{{- toJson $keys }}
{{- end }}

{{/*
The Secret key of one JWT key. Call with (list $kid $key).
*/}}
{{- define "gateway.jwtSecretKey" -}}
{{- $kid := index . 0 }}{{- $k := index . 1 }}
{{- default (printf "jwt-%s" $kid) $k.secretKey }}
{{- end }}

{{/*
The Secret key of one webhook signing secret. Call with (list $name $secret).
*/}}
{{- define "gateway.webhookSecretKey" -}}
{{- $name := index . 0 }}{{- $w := index . 1 }}
{{- default (printf "webhook-%s" $name) $w.secretKey }}
{{- end }}

{{/*
gateway.yaml: config plus what the chart owns (providers with their credential source,
api_keys when kept in the ConfigMap, redis.url and redis.prefix, JWT keys from jwtKeys,
webhook signing secrets from webhookSecrets).
Rendered with toYaml, so any value is quoted correctly; `gateway check-config` validates it
in the chart tests.
*/}}
{{- define "gateway.config" -}}
{{- $cfg := deepCopy .Values.config }}
{{- $providers := list }}
{{- range $name, $p := .Values.providers }}
{{- $entry := omit $p "secretKey" }}
{{- $_ := set $entry "name" $name }}
{{- if eq $.Values.credentialsAs "env" }}
{{- $_ := set $entry "credential" (dict "env" (include "gateway.credentialEnv" $name)) }}
{{- else }}
{{- $_ := set $entry "credential" (dict "file" (printf "credentials/%s" $name)) }}
{{- end }}
{{- $providers = append $providers $entry }}
{{- end }}
{{- $_ := set $cfg "providers" $providers }}
{{- if eq .Values.apiKeysIn "configMap" }}
{{- $_ := set $cfg "api_keys" (include "gateway.apiKeys" . | fromJsonArray) }}
{{- end }}
{{- $redis := deepCopy (default dict $cfg.redis) }}
{{- $_ := set $redis "prefix" .Values.redis.prefix }}
{{- $url := include "gateway.redisUrl" . }}
{{- if and $url (not .Values.redis.urlFromSecret) }}
{{- $_ := set $redis "url" $url }}
{{- end }}
{{- $_ := set $cfg "redis" $redis }}
{{- if .Values.metrics.port }}
{{- $server := deepCopy $cfg.server }}
{{- $_ := set $server "metrics_port" (int .Values.metrics.port) }}
{{- $_ := set $server "metrics_on_main_port" false }}
{{- $_ := set $cfg "server" $server }}
{{- end }}
{{- if .Values.jwtKeys }}
{{- $keys := list }}
{{- range $kid, $k := .Values.jwtKeys }}
{{- $field := ternary "public_key_file" "secret_file" (eq $k.type "publicKey") }}
{{- $keys = append $keys (dict "kid" $kid "algorithms" $k.algorithms $field (printf "jwt/%s" $kid)) }}
{{- end }}
{{- $_ := set $cfg.auth.jwt "keys" $keys }}
{{- end }}
{{- if .Values.webhookSecrets }}
{{- $webhooks := deepCopy (default dict $cfg.webhooks) }}
{{- $secrets := list }}
{{- range $name, $w := .Values.webhookSecrets }}
{{- $secrets = append $secrets (dict "tenant" $w.tenant "file" (printf "webhooks/%s" $name)) }}
{{- end }}
{{- $_ := set $webhooks "secrets" $secrets }}
{{- $_ := set $cfg "webhooks" $webhooks }}
{{- end }}
{{- toYaml $cfg }}
{{- end }}

{{/*
Refuse contradictory values, with every problem in one message.
*/}}
{{- define "gateway.validateValues" -}}
{{- $errors := list }}
{{- range $key := list "providers" "api_keys" }}
{{- if hasKey $.Values.config $key }}
{{- $errors = append $errors (printf "config.%s is set by the chart: use the top-level providers and apiKeys values" $key) }}
{{- end }}
{{- end }}
{{- range $key := list "url" "prefix" }}
{{- if hasKey (default dict $.Values.config.redis) $key }}
{{- $errors = append $errors (printf "config.redis.%s is set by the chart: use redis.%s" $key $key) }}
{{- end }}
{{- end }}
{{- range $key := list "metrics_port" "metrics_on_main_port" }}
{{- if hasKey $.Values.config.server $key }}
{{- $errors = append $errors (printf "config.server.%s is set by the chart: use metrics.port" $key) }}
{{- end }}
{{- end }}
{{- if and .Values.metrics.port (eq (int .Values.metrics.port) (int .Values.config.server.port)) }}
{{- $errors = append $errors (printf "metrics.port (%d) must differ from config.server.port" (int .Values.metrics.port)) }}
{{- end }}
{{- if .Values.jwtKeys }}
{{- if not (dig "auth" "jwt" "" .Values.config) }}
{{- $errors = append $errors "jwtKeys needs config.auth.jwt (at least issuer and audience)" }}
{{- else if hasKey .Values.config.auth.jwt "keys" }}
{{- $errors = append $errors "set JWT keys either in jwtKeys or in config.auth.jwt.keys, not both" }}
{{- end }}
{{- end }}
{{- if hasKey (default dict $.Values.config.webhooks) "secrets" }}
{{- $errors = append $errors "config.webhooks.secrets is set by the chart: use webhookSecrets" }}
{{- end }}
{{- $drain := include "gateway.drainSeconds" . | int }}
{{- if and (not (kindIs "invalid" .Values.terminationGracePeriodSeconds)) (le (int .Values.terminationGracePeriodSeconds) $drain) }}
{{- $errors = append $errors (printf "terminationGracePeriodSeconds (%d) must exceed preStopSleepSeconds + config.server.shutdown_timeout + the engine's shutdown grace + 2 (%d); leave it null to have it derived" (int .Values.terminationGracePeriodSeconds) $drain) }}
{{- end }}
{{- if and .Values.redis.internal.enabled (or .Values.redis.url .Values.redis.urlFromSecret) }}
{{- $errors = append $errors "redis.internal.enabled and an external Redis (redis.url or redis.urlFromSecret) exclude each other" }}
{{- end }}
{{- if and .Values.redis.url .Values.redis.urlFromSecret }}
{{- $errors = append $errors "set either redis.url or redis.urlFromSecret, not both" }}
{{- end }}
{{- if .Values.existingSecret }}
{{- if .Values.secretValues.providers }}
{{- $errors = append $errors "secretValues.providers is unused with existingSecret: put the credentials in that Secret" }}
{{- end }}
{{- if .Values.secretValues.redisUrl }}
{{- $errors = append $errors "secretValues.redisUrl is unused with existingSecret: put redis-url in that Secret" }}
{{- end }}
{{- if .Values.secretValues.jwtKeys }}
{{- $errors = append $errors "secretValues.jwtKeys is unused with existingSecret: put the JWT keys in that Secret" }}
{{- end }}
{{- if .Values.secretValues.webhookSecrets }}
{{- $errors = append $errors "secretValues.webhookSecrets is unused with existingSecret: put the webhook secrets in that Secret" }}
{{- end }}
{{- if and .Values.apiKeys (eq .Values.apiKeysIn "secret") }}
{{- $errors = append $errors "apiKeys is unused with existingSecret and apiKeysIn=secret: put api-keys.json in that Secret, or set apiKeysIn=configMap" }}
{{- end }}
{{- else }}
{{- range $name, $p := .Values.providers }}
{{- $key := include "gateway.credentialKey" (list $name $p) }}
{{- if not (hasKey $.Values.secretValues.providers $key) }}
{{- $errors = append $errors (printf "providers.%s: no credential; set secretValues.providers.%s or use existingSecret" $name $key) }}
{{- end }}
{{- end }}
{{- range $kid, $k := .Values.jwtKeys }}
{{- $key := include "gateway.jwtSecretKey" (list $kid $k) }}
{{- if not (hasKey $.Values.secretValues.jwtKeys $key) }}
{{- $errors = append $errors (printf "jwtKeys.%s: no key material; set secretValues.jwtKeys.%s or use existingSecret" $kid $key) }}
{{- end }}
{{- end }}
{{- range $name, $w := .Values.webhookSecrets }}
{{- $key := include "gateway.webhookSecretKey" (list $name $w) }}
{{- if not (hasKey $.Values.secretValues.webhookSecrets $key) }}
{{- $errors = append $errors (printf "webhookSecrets.%s: no secret; set secretValues.webhookSecrets.%s or use existingSecret" $name $key) }}
{{- end }}
{{- end }}
{{- if and .Values.redis.urlFromSecret (not .Values.secretValues.redisUrl) }}
{{- $errors = append $errors "redis.urlFromSecret needs secretValues.redisUrl (or existingSecret with a redis-url key)" }}
{{- end }}
{{- end }}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) }}
{{- $errors = append $errors "autoscaling.minReplicas must not exceed autoscaling.maxReplicas" }}
{{- end }}
{{- if and .Values.autoscaling.enabled (not (dig "requests" "cpu" "" .Values.resources)) }}
{{- $errors = append $errors "autoscaling needs resources.requests.cpu (utilization is a share of the request)" }}
{{- end }}
{{- if $errors }}
{{- fail (printf "\n\nVALUES VALIDATION:\n  - %s" (join "\n  - " $errors)) }}
{{- end }}
{{- end }}

{{/*
Labels of the metrics Service, which the ServiceMonitor selects (the API Service lacks the
component label, so it is never scraped twice).
*/}}
{{- define "gateway.metricsServiceLabels" -}}
{{ include "gateway.selectorLabels" . }}
app.kubernetes.io/component: metrics
{{- end }}

{{/*
Selector labels of the internal Redis: its own name, so the gateway's selectors never match it.
*/}}
{{- define "gateway.redisSelectorLabels" -}}
app.kubernetes.io/name: {{ include "gateway.name" . }}-redis
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Labels on the internal Redis resources.
*/}}
{{- define "gateway.redisLabels" -}}
helm.sh/chart: {{ include "gateway.chart" . }}
{{ include "gateway.redisSelectorLabels" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: redis
app.kubernetes.io/part-of: {{ include "gateway.name" . }}
{{- end }}

{{/*
Seconds from the pod's termination until the gateway has exited at the latest: the preStop
sleep, then the drain (config.server.shutdown_timeout, counted from SIGTERM), then the
engine's grace for its running checks, then 2 s for the rest of the shutdown.
*/}}
{{- define "gateway.drainSeconds" -}}
{{- $engine := .Values.config.engine | default dict -}}
{{- $grace := 0 -}}
{{- if (dig "enabled" true $engine) -}}
{{- $grace = dig "shutdown_grace_seconds" 5 $engine | ceil | int -}}
{{- end -}}
{{- add (int .Values.preStopSleepSeconds) (ceil .Values.config.server.shutdown_timeout | int) $grace 2 -}}
{{- end -}}

{{/* terminationGracePeriodSeconds: as set, or the drain plus 5 s of margin. */}}
{{- define "gateway.terminationGracePeriod" -}}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds -}}
{{- add (include "gateway.drainSeconds" . | int) 5 -}}
{{- else -}}
{{- .Values.terminationGracePeriodSeconds -}}
{{- end -}}
{{- end -}}
