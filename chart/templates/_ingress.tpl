{{/* An Ingress to one Service: (dict "ctx" $ "component" "web" "ingress" .Values.web.ingress "port" 4000 "tls" $tlsList). */}}
{{- define "thunderhelm.ingress" -}}
{{- $ := .ctx -}}
{{- $ing := .ingress -}}
{{- $svc := printf "%s-%s" (include "thunderhelm.fullname" $) .component -}}
{{- $port := .port -}}
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {{ $svc }}
  labels:
    {{- include "thunderhelm.componentLabels" (dict "ctx" $ "component" .component) | nindent 4 }}
  {{- with $ing.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  {{- with $ing.className }}
  ingressClassName: {{ . }}
  {{- end }}
  {{- with .tls }}
  tls:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  rules:
    {{- range $ing.hosts }}
    - host: {{ .host | quote }}
      http:
        paths:
          {{- range .paths }}
          - path: {{ .path }}
            pathType: {{ .pathType | default "Prefix" }}
            backend:
              service:
                name: {{ $svc }}
                port:
                  number: {{ $port }}
          {{- end }}
    {{- end }}
{{- end -}}
