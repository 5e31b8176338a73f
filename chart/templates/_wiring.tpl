{{/*
Wiring between components. Every computed address names a Service this release renders, on the port that Service
is configured with; a helper yields "" when the target is not rendered, so nothing points at a missing Service.
*/}}

{{- define "thunderhelm.clusterDomain" -}}
{{- default "cluster.local" .Values.global.clusterDomain -}}
{{- end -}}

{{/* Is the runner's Service rendered? "true" or "". */}}
{{- define "thunderhelm.runner.serviceRendered" -}}
{{- if and .Values.cerebrosRunner.enabled .Values.cerebrosRunner.service.enabled -}}true{{- end -}}
{{- end -}}

{{/* http://<fullname>-cerebros:<cerebrosRunner.service.port>, or "". */}}
{{- define "thunderhelm.runner.url" -}}
{{- if include "thunderhelm.runner.serviceRendered" . -}}
{{- printf "http://%s-cerebros:%d" (include "thunderhelm.fullname" .) (int .Values.cerebrosRunner.service.port) -}}
{{- end -}}
{{- end -}}

{{/* Is MLflow's Service rendered? "true" or "". */}}
{{- define "thunderhelm.mlflow.serviceRendered" -}}
{{- if and .Values.mlflow.enabled .Values.mlflow.service.enabled -}}true{{- end -}}
{{- end -}}

{{/* http://<fullname>-mlflow:<mlflow.service.port>, or "". */}}
{{- define "thunderhelm.mlflow.url" -}}
{{- if include "thunderhelm.mlflow.serviceRendered" . -}}
{{- printf "http://%s-mlflow:%d" (include "thunderhelm.fullname" .) (int .Values.mlflow.service.port) -}}
{{- end -}}
{{- end -}}

{{/* OTLP endpoint of the in-release collector for the configured protocol, or "". */}}
{{- define "thunderhelm.otel.endpoint" -}}
{{- $c := .Values.opentelemetryCollector -}}
{{- if $c.enabled -}}
{{- $port := ternary $c.service.grpcPort $c.service.httpPort (eq $c.protocol "grpc") -}}
{{- printf "http://%s-otelcol:%d" (include "thunderhelm.fullname" .) (int $port) -}}
{{- end -}}
{{- end -}}

{{/* ---------------- Postgres ---------------- */}}

{{/* Host of the in-release Postgres Service, or "". */}}
{{- define "thunderhelm.postgresql.host" -}}
{{- if .Values.postgresql.enabled -}}
{{- printf "%s-postgresql" (include "thunderhelm.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* Secret holding the Postgres password (chart-made or postgresql.auth.existingSecret). */}}
{{- define "thunderhelm.postgresql.secretName" -}}
{{- default (printf "%s-postgresql" (include "thunderhelm.fullname" .)) .Values.postgresql.auth.existingSecret -}}
{{- end -}}

{{/* Key of the password in that Secret. */}}
{{- define "thunderhelm.postgresql.passwordKey" -}}
{{- if .Values.postgresql.auth.existingSecret -}}
{{- default "password" .Values.postgresql.auth.existingSecretPasswordKey -}}
{{- else -}}
password
{{- end -}}
{{- end -}}

{{/* An env entry named .name that reads the Postgres password: (dict "ctx" $ "name" "X"). */}}
{{- define "thunderhelm.postgresql.passwordEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ include "thunderhelm.postgresql.secretName" .ctx }}
      key: {{ include "thunderhelm.postgresql.passwordKey" .ctx }}
{{- end -}}

{{/* Connection URL to a database of the in-release Postgres. The password is a $(VAR) reference that Kubernetes
expands from an earlier env entry, so no credential appears in the pod spec.
(dict "ctx" $ "scheme" "postgres" "database" "db" "passwordVar" "VAR"). */}}
{{- define "thunderhelm.postgresql.url" -}}
{{- $pg := .ctx.Values.postgresql -}}
{{- printf "%s://%s:$(%s)@%s:%d/%s" .scheme $pg.auth.username .passwordVar (include "thunderhelm.postgresql.host" .ctx) (int $pg.service.port) .database -}}
{{- end -}}

{{/* ---------------- S3 object store ---------------- */}}

{{/* S3 endpoint: the in-release store's Service, else minio.external.endpoint, else "". */}}
{{- define "thunderhelm.store.endpoint" -}}
{{- if .Values.minio.enabled -}}
{{- printf "http://%s-minio:%d" (include "thunderhelm.fullname" .) (int .Values.minio.service.port) -}}
{{- else -}}
{{- .Values.minio.external.endpoint -}}
{{- end -}}
{{- end -}}

{{/* Secret with the store's access key (root-user) and secret key (root-password), or "" when there is none. */}}
{{- define "thunderhelm.store.secretName" -}}
{{- if .Values.minio.auth.existingSecret -}}
{{- .Values.minio.auth.existingSecret -}}
{{- else if .Values.minio.enabled -}}
{{- printf "%s-minio" (include "thunderhelm.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* The first of minio.defaultBuckets, the bucket the apps use. */}}
{{- define "thunderhelm.store.bucket" -}}
{{- $buckets := include "thunderhelm.store.buckets" . | fromJsonArray -}}
{{- if $buckets -}}{{- first $buckets -}}{{- else -}}{{- .Values.env.MINIO_BUCKET -}}{{- end -}}
{{- end -}}

{{/* minio.defaultBuckets (a comma-separated string or a list) as a JSON list. */}}
{{- define "thunderhelm.store.buckets" -}}
{{- $raw := .Values.minio.defaultBuckets -}}
{{- $list := list -}}
{{- if kindIs "slice" $raw -}}
{{- $list = $raw -}}
{{- else -}}
{{- range (splitList "," (toString $raw)) -}}
{{- if trim . -}}{{- $list = append $list (trim .) -}}{{- end -}}
{{- end -}}
{{- end -}}
{{- toJson $list -}}
{{- end -}}

{{/* Env entries that read the store's credentials under the given names:
(dict "ctx" $ "access" "MINIO_ACCESS_KEY" "secret" "MINIO_SECRET_KEY"). Empty when no credentials exist. */}}
{{- define "thunderhelm.store.credentialEnv" -}}
{{- $secret := include "thunderhelm.store.secretName" .ctx -}}
{{- if $secret }}
- name: {{ .access }}
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: root-user
- name: {{ .secret }}
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: root-password
{{- end }}
{{- end -}}

{{/* ---------------- Runner auth ---------------- */}}

{{/* Secret and key holding the runner's API token, as "name/key", or "" when the runner has no token. */}}
{{- define "thunderhelm.runner.tokenRef" -}}
{{- $auth := .Values.cerebrosRunner.auth -}}
{{- if $auth.existingSecret -}}
{{- printf "%s/%s" $auth.existingSecret (default "token" $auth.existingSecretKey) -}}
{{- else if $auth.token -}}
{{- printf "%s-cerebros-runner/RUNNER_API_TOKEN" (include "thunderhelm.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* Env entry RUNNER_API_TOKEN from the runner's token Secret, when the runner has a token. */}}
{{- define "thunderhelm.runner.tokenEnv" -}}
{{- $ref := include "thunderhelm.runner.tokenRef" . -}}
{{- if $ref }}
- name: RUNNER_API_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ first (splitList "/" $ref) }}
      key: {{ last (splitList "/" $ref) }}
{{- end }}
{{- end -}}

{{/* ---------------- Bridge ---------------- */}}

{{/* Path of the cerebros-bridge binary inside the Thunderline pods. */}}
{{- define "thunderhelm.bridge.binary" -}}
{{- printf "%s/cerebros-bridge" (trimSuffix "/" .Values.cerebrosRunner.bridge.mountPath) -}}
{{- end -}}

{{/* ---------------- Shared environment of the Thunderline pods ---------------- */}}

{{/* Computed defaults of the <fullname>-env ConfigMap, as YAML. A non-empty env.* value wins over each of them. */}}
{{- define "thunderhelm.env.defaults" -}}
{{- $d := dict -}}
{{- with include "thunderhelm.runner.url" . -}}
{{- $_ := set $d "CEREBROS_URL" . -}}
{{- $_ := set $d "CEREBROS_REMOTE_URL" . -}}
{{- end -}}
{{- with include "thunderhelm.mlflow.url" . -}}
{{- $_ := set $d "MLFLOW_TRACKING_URI" . -}}
{{- end -}}
{{- if .Values.cerebrosRunner.bridge.enabled -}}
{{- $bin := include "thunderhelm.bridge.binary" . -}}
{{- $_ := set $d "CEREBROS_PYTHON" $bin -}}
{{- $_ := set $d "CEREBROS_SCRIPT" $bin -}}
{{- $_ := set $d "CEREBROS_REPO" (trimSuffix "/" .Values.cerebrosRunner.bridge.mountPath) -}}
{{- end -}}
{{- $endpoint := include "thunderhelm.store.endpoint" . -}}
{{- if and $endpoint (not .Values.env.secrets.MINIO_ENDPOINT) -}}
{{- $_ := set $d "MINIO_ENDPOINT" $endpoint -}}
{{- end -}}
{{- $otel := include "thunderhelm.otel.endpoint" . -}}
{{- if and $otel (not .Values.env.secrets.OTEL_EXPORTER_OTLP_ENDPOINT) -}}
{{- $_ := set $d "OTEL_EXPORTER_OTLP_ENDPOINT" $otel -}}
{{- $_ := set $d "OTEL_EXPORTER_OTLP_PROTOCOL" .Values.opentelemetryCollector.protocol -}}
{{- end -}}
{{- toYaml $d -}}
{{- end -}}

{{/* Keys of the env map whose empty value means "computed default, or unset". */}}
{{- define "thunderhelm.env.autoKeys" -}}
CEREBROS_URL CEREBROS_REMOTE_URL MLFLOW_TRACKING_URI CEREBROS_PYTHON CEREBROS_SCRIPT CEREBROS_REPO MINIO_ENDPOINT OTEL_EXPORTER_OTLP_ENDPOINT OTEL_EXPORTER_OTLP_PROTOCOL
{{- end -}}

{{/* The final data of <fullname>-env: env.* without env.secrets, computed defaults where the user left a key
empty or absent, auto keys dropped when they stay empty. */}}
{{- define "thunderhelm.env.data" -}}
{{- $data := dict -}}
{{- range $k, $v := omit .Values.env "secrets" -}}
{{- $_ := set $data $k (toString $v) -}}
{{- end -}}
{{- range $k, $v := (include "thunderhelm.env.defaults" . | fromYaml) -}}
{{- if not (get $data $k) -}}
{{- $_ := set $data $k (toString $v) -}}
{{- end -}}
{{- end -}}
{{- range (splitList " " (include "thunderhelm.env.autoKeys" .)) -}}
{{- if and (hasKey $data .) (not (get $data .)) -}}
{{- $_ := unset $data . -}}
{{- end -}}
{{- end -}}
{{- toYaml $data -}}
{{- end -}}
