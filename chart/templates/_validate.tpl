{{/*
Render-time checks for combinations values.schema.json cannot express. Each failure names the value to change.
Included once, from configmap.yaml (always rendered).
*/}}

{{/* Names of plain env entries that are credentials and belong in a Secret. */}}
{{- define "thunderhelm.credentialNamePattern" -}}
(?i)(PASSWORD|PASSWD|SECRET|TOKEN|ACCESS_KEY|ACCESS_KEY_ID|SECRET_KEY|KEY_BASE|COOKIE|PRIVATE_KEY|API_KEY|CREDENTIALS)$
{{- end -}}

{{/* A URL carrying a literal password (user:password@); $(VAR) references are fine. */}}
{{- define "thunderhelm.credentialUrlPattern" -}}
://[^/@:\s]+:[^/@\s$][^/@\s]*@
{{- end -}}

{{/* Refuse credentials in a plain env map: (dict "path" "web.env" "env" $map "hint" "env.secrets"). */}}
{{- define "thunderhelm.assertPlainEnv" -}}
{{- $namePattern := include "thunderhelm.credentialNamePattern" . -}}
{{- $urlPattern := include "thunderhelm.credentialUrlPattern" . -}}
{{- $hint := .hint -}}
{{- $path := .path -}}
{{- range $k, $v := .env -}}
{{- if and (ne $k "secrets") (toString $v) -}}
{{- if regexMatch $namePattern $k -}}
{{- fail (printf "%s.%s is a credential: plain env is visible in the pod spec; set it in %s instead" $path $k $hint) -}}
{{- end -}}
{{- if regexMatch $urlPattern (toString $v) -}}
{{- fail (printf "%s.%s holds a URL with a password: set it in %s instead" $path $k $hint) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "thunderhelm.validate" -}}
{{- $v := .Values -}}

{{/* Credentials never in plain env. */}}
{{- include "thunderhelm.assertPlainEnv" (dict "path" "env" "env" $v.env "hint" "env.secrets") -}}
{{- include "thunderhelm.assertPlainEnv" (dict "path" "web.env" "env" $v.web.env "hint" "env.secrets") -}}
{{- include "thunderhelm.assertPlainEnv" (dict "path" "worker.env" "env" $v.worker.env "hint" "env.secrets") -}}
{{- include "thunderhelm.assertPlainEnv" (dict "path" "cerebrosRunner.env" "env" $v.cerebrosRunner.env "hint" "cerebrosRunner.secrets") -}}
{{- include "thunderhelm.assertPlainEnv" (dict "path" "mlflow.env" "env" $v.mlflow.env "hint" "mlflow.secrets") -}}
{{- include "thunderhelm.assertPlainEnv" (dict "path" "livebook.env" "env" $v.livebook.env "hint" "livebook.secrets") -}}
{{- include "thunderhelm.assertPlainEnv" (dict "path" "federation.env" "env" $v.federation.env "hint" "a Secret of your own") -}}

{{/* Livebook. */}}
{{- if $v.livebook.enabled -}}
{{- $pw := toString $v.livebook.secrets.password -}}
{{- if and $v.livebook.ingress.enabled (not $pw) (not $v.livebook.secrets.existingSecret) -}}
{{- fail "livebook.secrets.password is required when livebook.ingress.enabled is true (at least 12 characters), or name a Secret in livebook.secrets.existingSecret" -}}
{{- end -}}
{{- if and $pw (lt (len $pw) 12) -}}
{{- fail (printf "livebook.secrets.password must be at least 12 characters (Livebook refuses shorter ones); it has %d" (len $pw)) -}}
{{- end -}}
{{- $skb := toString $v.livebook.secrets.secretKeyBase -}}
{{- if and $skb (lt (len $skb) 64) -}}
{{- fail (printf "livebook.secrets.secretKeyBase must be at least 64 characters; it has %d" (len $skb)) -}}
{{- end -}}
{{- if and $v.livebook.ingress.enabled (not $v.livebook.service.enabled) -}}
{{- fail "livebook.ingress.enabled needs livebook.service.enabled: the Ingress routes to the Livebook Service" -}}
{{- end -}}
{{- $cm := $v.livebook.ingress.certManager -}}
{{- if and $v.livebook.ingress.enabled $cm.enabled -}}
{{- if not $cm.clusterIssuer -}}
{{- fail "livebook.ingress.certManager.clusterIssuer is required when livebook.ingress.certManager.enabled is true (the issuer of the Certificate)" -}}
{{- end -}}
{{- range $key, $_ := $v.livebook.ingress.annotations -}}
{{- if has $key (list "cert-manager.io/cluster-issuer" "cert-manager.io/issuer") -}}
{{- fail (printf "livebook.ingress.annotations[%s] makes cert-manager's ingress-shim create a second Certificate for the same Secret as livebook.ingress.certManager; use one of them" $key) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Ingresses need a host to route. */}}
{{- if and $v.web.ingress.enabled (not $v.web.ingress.hosts) -}}
{{- fail "web.ingress.hosts must list at least one host when web.ingress.enabled is true" -}}
{{- end -}}
{{- if and $v.livebook.enabled $v.livebook.ingress.enabled (not $v.livebook.ingress.hosts) -}}
{{- fail "livebook.ingress.hosts must list at least one host when livebook.ingress.enabled is true" -}}
{{- end -}}

{{/* Web. */}}
{{- if and $v.web.ingress.enabled (not (and $v.web.enabled $v.web.service.enabled)) -}}
{{- fail "web.ingress.enabled needs web.enabled and web.service.enabled: the Ingress routes to the web Service" -}}
{{- end -}}

{{/* Runner and bridge. */}}
{{- if $v.cerebrosRunner.pipPackages -}}
{{- fail "cerebrosRunner.pipPackages is no longer supported: the runner is a prebuilt image (cerebrosRunner.image) and installs nothing at start; remove the list" -}}
{{- end -}}
{{- if and (not $v.cerebrosRunner.bridge.enabled) (not $v.env.CEREBROS_SCRIPT) -}}
{{- fail "env.CEREBROS_SCRIPT is required when cerebrosRunner.bridge.enabled is false: Thunderline's release refuses to boot without it" -}}
{{- end -}}
{{- if $v.cerebrosRunner.enabled -}}
{{- $db := $v.cerebrosRunner.database -}}
{{- $shared := or $v.postgresql.enabled $db.url $db.existingSecret -}}
{{- if and (gt (int $v.cerebrosRunner.replicas) 1) (not $shared) -}}
{{- fail "cerebrosRunner.replicas > 1 needs a shared Postgres (postgresql.enabled, cerebrosRunner.database.url or cerebrosRunner.database.existingSecret): each replica would otherwise keep its own SQLite state" -}}
{{- end -}}
{{- if and (gt (int $v.cerebrosRunner.replicas) 1) $v.cerebrosRunner.persistence.enabled -}}
{{- fail "cerebrosRunner.replicas > 1 cannot share the ReadWriteOnce data volume of cerebrosRunner.persistence; disable it (state lives in Postgres, artifacts in S3)" -}}
{{- end -}}
{{- if and $db.url $db.existingSecret -}}
{{- fail "set either cerebrosRunner.database.url or cerebrosRunner.database.existingSecret, not both" -}}
{{- end -}}
{{- end -}}

{{/* MLflow. */}}
{{- if $v.mlflow.enabled -}}
{{- $sqlite := or (hasPrefix "sqlite:" (toString $v.mlflow.backendStoreUri)) (and (not $v.mlflow.backendStoreUri) (not $v.mlflow.backendStore.existingSecret) (not $v.postgresql.enabled)) -}}
{{- if and (gt (int $v.mlflow.replicas) 1) $sqlite -}}
{{- fail "mlflow.replicas > 1 needs a database backend store: SQLite on one volume cannot be shared (enable postgresql or set mlflow.backendStoreUri)" -}}
{{- end -}}
{{- if and $v.mlflow.backendStoreUri $v.mlflow.backendStore.existingSecret -}}
{{- fail "set either mlflow.backendStoreUri or mlflow.backendStore.existingSecret, not both" -}}
{{- end -}}
{{- end -}}

{{/* Object store. */}}
{{- if $v.minio.enabled -}}
{{- $pw := toString $v.minio.auth.rootPassword -}}
{{- if and $pw (lt (len $pw) 8) -}}
{{- fail "minio.auth.rootPassword must be at least 8 characters (the S3 server refuses shorter secret keys)" -}}
{{- end -}}
{{- if lt (len (toString $v.minio.auth.rootUser)) 3 -}}
{{- fail "minio.auth.rootUser must be at least 3 characters" -}}
{{- end -}}
{{- end -}}

{{/* Flags the chart has nothing to do for. */}}
{{- if $v.rbac.create -}}
{{- fail "rbac.create: the chart's pods call no Kubernetes API, so there is no Role to create; set it to false" -}}
{{- end -}}
{{- end -}}
