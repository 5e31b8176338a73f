{{/* A `helm test` Pod running a shell script in the curl image: (dict "ctx" $ "name" "x" "script" "..."
"env" $envYaml). */}}
{{- define "thunderhelm.testPod" -}}
{{- $ := .ctx -}}
{{- $t := $.Values.tests -}}
apiVersion: v1
kind: Pod
metadata:
  name: {{ include "thunderhelm.fullname" $ }}-test-{{ .name }}
  labels:
    {{- include "thunderhelm.componentLabels" (dict "ctx" $ "component" "test") | nindent 4 }}
  annotations:
    helm.sh/hook: test
    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
spec:
  restartPolicy: Never
  automountServiceAccountToken: false
  {{- include "thunderhelm.nindentIf" (dict "n" 2 "text" (include "thunderhelm.imagePullSecrets" $)) }}
  securityContext:
    runAsNonRoot: true
    runAsUser: 100
    runAsGroup: 101
    seccompProfile:
      type: RuntimeDefault
  containers:
    - name: {{ .name }}
      image: {{ include "thunderhelm.image" (dict "image" $t.image "default" "latest") | quote }}
      imagePullPolicy: {{ $t.image.pullPolicy }}
      securityContext:
        allowPrivilegeEscalation: false
        readOnlyRootFilesystem: true
        capabilities:
          drop: ["ALL"]
      command: ["/bin/sh", "-ec"]
      args:
        - |
          {{- .script | trim | nindent 10 }}
      {{- with trim (default "" .env) }}
      env:
        {{- . | nindent 8 }}
      {{- end }}
      resources:
        {{- toYaml $t.resources | nindent 8 }}
{{- end -}}
