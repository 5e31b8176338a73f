{{/*
The Thunderline pod template shared by the web and worker Deployments:
(dict "ctx" $ "component" "web" "values" .Values.web).
*/}}
{{- define "thunderhelm.thunderline.podTemplate" -}}
{{- $ := .ctx -}}
{{- $c := .values -}}
{{- $component := .component -}}
{{- $bridge := $.Values.cerebrosRunner.bridge -}}
{{- $secrets := $.Values.env.secrets -}}
metadata:
  labels:
    {{- include "thunderhelm.componentSelector" (dict "ctx" $ "component" $component) | nindent 4 }}
    {{- with $c.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") $ | sha256sum }}
    checksum/secret: {{ include (print $.Template.BasePath "/secret.yaml") $ | sha256sum }}
    {{- with $c.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "thunderhelm.serviceAccountName" $ }}
  automountServiceAccountToken: false
  {{- include "thunderhelm.nindentIf" (dict "n" 2 "text" (include "thunderhelm.imagePullSecrets" $)) }}
  securityContext:
    {{- toYaml $c.podSecurityContext | nindent 4 }}
  {{- if $bridge.enabled }}
  initContainers:
    - name: install-cerebros-bridge
      image: {{ include "thunderhelm.image" (dict "image" $.Values.cerebrosRunner.image "default" $.Chart.AppVersion) | quote }}
      imagePullPolicy: {{ $.Values.cerebrosRunner.image.pullPolicy }}
      command:
        {{- toYaml $bridge.copyCommand | nindent 8 }}
      securityContext:
        {{- $initSc := dict "runAsNonRoot" true "runAsUser" ($.Values.cerebrosRunner.podSecurityContext.runAsUser | default 10001) }}
        {{- toYaml (merge (deepCopy $.Values.cerebrosRunner.securityContext) $initSc) | nindent 8 }}
      resources:
        {{- toYaml $bridge.resources | nindent 8 }}
      volumeMounts:
        - name: cerebros-bridge
          mountPath: {{ $bridge.mountPath }}
  {{- end }}
  containers:
    - name: {{ $component }}
      image: {{ include "thunderhelm.image" (dict "image" $.Values.image "default" $.Chart.AppVersion) | quote }}
      imagePullPolicy: {{ $.Values.image.pullPolicy }}
      securityContext:
        {{- toYaml $c.securityContext | nindent 8 }}
      envFrom:
        - configMapRef:
            name: {{ include "thunderhelm.fullname" $ }}-env
        - secretRef:
            name: {{ include "thunderhelm.fullname" $ }}-secrets
      env:
        {{- if not (hasKey $c.env "TMPDIR") }}
        - name: TMPDIR
          value: /tmp
        {{- end }}
        {{- if not (hasKey $c.env "RELEASE_TMP") }}
        - name: RELEASE_TMP
          value: /tmp
        {{- end }}
        {{- if and (eq $component "web") (not (hasKey $c.env "PORT")) }}
        - name: PORT
          value: {{ $.Values.web.service.port | toString | quote }}
        {{- end }}
        {{- if and $.Values.postgresql.enabled (not $secrets.DATABASE_URL) }}
        {{- include "thunderhelm.nindentIf" (dict "n" 8 "text" (include "thunderhelm.postgresql.passwordEnv" (dict "ctx" $ "name" "THUNDERHELM_DB_PASSWORD"))) }}
        - name: DATABASE_URL
          value: {{ include "thunderhelm.postgresql.url" (dict "ctx" $ "scheme" "ecto" "database" $.Values.postgresql.auth.database "passwordVar" "THUNDERHELM_DB_PASSWORD") | quote }}
        {{- end }}
        {{- if and (include "thunderhelm.store.secretName" $) (not $secrets.MINIO_ACCESS_KEY) (not $secrets.MINIO_SECRET_KEY) }}
        {{- include "thunderhelm.nindentIf" (dict "n" 8 "text" (include "thunderhelm.store.credentialEnv" (dict "ctx" $ "access" "MINIO_ACCESS_KEY" "secret" "MINIO_SECRET_KEY"))) }}
        {{- end }}
        {{- include "thunderhelm.nindentIf" (dict "n" 8 "text" (include "thunderhelm.runner.tokenEnv" $)) }}
        {{- include "thunderhelm.nindentIf" (dict "n" 8 "text" (include "thunderhelm.envList" (dict "env" $c.env))) }}
      {{- if eq $component "web" }}
      ports:
        - name: http
          containerPort: {{ $.Values.web.service.port }}
          protocol: TCP
      livenessProbe:
        httpGet:
          path: {{ $.Values.probes.web.liveness.path }}
          port: http
        {{- include "thunderhelm.probeTiming" $.Values.probes.web.liveness | nindent 8 }}
      readinessProbe:
        httpGet:
          path: {{ $.Values.probes.web.readiness.path }}
          port: http
        {{- include "thunderhelm.probeTiming" $.Values.probes.web.readiness | nindent 8 }}
      {{- else }}
      livenessProbe:
        exec:
          command:
            {{- toYaml $.Values.probes.worker.liveness.command | nindent 12 }}
        {{- include "thunderhelm.probeTiming" $.Values.probes.worker.liveness | nindent 8 }}
      readinessProbe:
        exec:
          command:
            {{- toYaml $.Values.probes.worker.readiness.command | nindent 12 }}
        {{- include "thunderhelm.probeTiming" $.Values.probes.worker.readiness | nindent 8 }}
      {{- end }}
      resources:
        {{- toYaml $c.resources | nindent 8 }}
      volumeMounts:
        - name: tmp
          mountPath: /tmp
        {{- if $bridge.enabled }}
        - name: cerebros-bridge
          mountPath: {{ $bridge.mountPath }}
          readOnly: true
        {{- end }}
  volumes:
    - name: tmp
      emptyDir: {}
    {{- if $bridge.enabled }}
    - name: cerebros-bridge
      emptyDir:
        sizeLimit: 256Mi
    {{- end }}
  {{- include "thunderhelm.nindentIf" (dict "n" 2 "text" (include "thunderhelm.scheduling" $c)) }}
{{- end -}}

{{/* Probe timing fields from a probe's values. */}}
{{- define "thunderhelm.probeTiming" -}}
initialDelaySeconds: {{ .initialDelaySeconds | default 0 }}
periodSeconds: {{ .periodSeconds | default 10 }}
timeoutSeconds: {{ .timeoutSeconds | default 1 }}
failureThreshold: {{ .failureThreshold | default 3 }}
{{- end -}}
