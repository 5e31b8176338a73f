{{/*
Names and labels. The helper names, the label set and the selector set are the original chart's: Deployment
selectors are immutable, so changing them would break `helm upgrade` from the original chart.
*/}}

{{/* Chart name, or global.nameOverride. */}}
{{- define "thunderhelm.name" -}}
{{- default .Chart.Name .Values.global.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Fully qualified release name: global.fullnameOverride, the release name when it already contains the chart
name, otherwise <release>-<name>. */}}
{{- define "thunderhelm.fullname" -}}
{{- if .Values.global.fullnameOverride -}}
{{- .Values.global.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.global.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* chart-version, for the helm.sh/chart label. */}}
{{- define "thunderhelm.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Common labels. */}}
{{- define "thunderhelm.labels" -}}
helm.sh/chart: {{ include "thunderhelm.chart" . }}
{{ include "thunderhelm.selectorLabels" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
{{- end -}}

{{/* Selector labels (each workload adds app.kubernetes.io/component). */}}
{{- define "thunderhelm.selectorLabels" -}}
app.kubernetes.io/name: {{ include "thunderhelm.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of a component's resources: (dict "ctx" $ "component" "web"). */}}
{{- define "thunderhelm.componentLabels" -}}
{{ include "thunderhelm.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Selector of a component's pods: (dict "ctx" $ "component" "web"). */}}
{{- define "thunderhelm.componentSelector" -}}
{{ include "thunderhelm.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* The ServiceAccount pods run as. When the chart does not create one and none is named, the namespace's
"default" account (which always exists) rather than a name that does not. */}}
{{- define "thunderhelm.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "thunderhelm.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* image reference: (dict "image" .Values.x.image "default" "tag-if-empty"). A digest pins the image. */}}
{{- define "thunderhelm.image" -}}
{{- $tag := default .default .image.tag | toString -}}
{{- if .image.digest -}}
{{- printf "%s@%s" .image.repository .image.digest -}}
{{- else -}}
{{- printf "%s:%s" .image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* imagePullSecrets block of a pod spec. */}}
{{- define "thunderhelm.imagePullSecrets" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Scheduling fields of a pod spec from a component's values. */}}
{{- define "thunderhelm.scheduling" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* A plain env list from a map, values stringified: (dict "env" $map "skip" $listOfNames). */}}
{{- define "thunderhelm.envList" -}}
{{- $skip := default (list) .skip -}}
{{- range $k, $v := .env }}
{{- if not (has $k $skip) }}
- name: {{ $k }}
  value: {{ toString $v | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Stable random value for a Secret key: the value already stored in the live Secret (so `helm upgrade` keeps
it), else a fresh random one. (dict "ctx" $ "secret" name "key" key "length" n). */}}
{{- define "thunderhelm.stableRandom" -}}
{{- $existing := lookup "v1" "Secret" .ctx.Release.Namespace .secret -}}
{{- $stored := "" -}}
{{- if and $existing $existing.data -}}
{{- $stored = index $existing.data .key | default "" -}}
{{- end -}}
{{- if $stored -}}
{{- $stored | b64dec -}}
{{- else -}}
{{- randAlphaNum (int .length) -}}
{{- end -}}
{{- end -}}

{{/* Indented block, or nothing at all when the text is blank: (dict "n" 8 "text" $text). Lets optional env
snippets sit in a list without leaving blank lines. */}}
{{- define "thunderhelm.nindentIf" -}}
{{- $t := trim .text -}}
{{- if $t -}}
{{- $t | nindent (int .n) -}}
{{- end -}}
{{- end -}}
