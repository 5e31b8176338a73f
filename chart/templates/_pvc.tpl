{{/* A ReadWriteOnce PVC: (dict "ctx" $ "name" "x" "component" "mlflow" "persistence" .Values.mlflow.persistence). */}}
{{- define "thunderhelm.pvc" -}}
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: {{ .name }}
  labels:
    {{- include "thunderhelm.componentLabels" (dict "ctx" .ctx "component" .component) | nindent 4 }}
spec:
  accessModes:
    - ReadWriteOnce
  {{- with .persistence.storageClass }}
  storageClassName: {{ . | quote }}
  {{- end }}
  resources:
    requests:
      storage: {{ .persistence.size }}
{{- end -}}
