{{/* Artifact destination served by MLflow's proxy (--artifacts-destination). */}}
{{- define "thunderhelm.mlflow.artifactsDestination" -}}
{{- if .Values.mlflow.artifactRoot -}}
{{- .Values.mlflow.artifactRoot -}}
{{- else if include "thunderhelm.store.endpoint" . -}}
{{- printf "s3://%s/mlflow" (include "thunderhelm.store.bucket" .) -}}
{{- else -}}
/data/artifacts
{{- end -}}
{{- end -}}

{{/* Host headers MLflow 3's security middleware accepts: the Service under every in-cluster name, with and
without a port, loopback (kubectl port-forward), and mlflow.allowedHosts. The list replaces MLflow's defaults. */}}
{{- define "thunderhelm.mlflow.allowedHosts" -}}
{{- $svc := printf "%s-mlflow" (include "thunderhelm.fullname" .) -}}
{{- $ns := .Release.Namespace -}}
{{- $hosts := list -}}
{{- range (list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.%s" $svc $ns (include "thunderhelm.clusterDomain" .)) "localhost" "127.0.0.1") -}}
{{- $hosts = append (append $hosts .) (printf "%s:*" .) -}}
{{- end -}}
{{- range .Values.mlflow.allowedHosts -}}
{{- $hosts = append $hosts . -}}
{{- end -}}
{{- join "," $hosts -}}
{{- end -}}
