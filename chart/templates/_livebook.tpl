{{/* Secret Livebook reads LIVEBOOK_PASSWORD, LIVEBOOK_SECRET_KEY_BASE and LIVEBOOK_COOKIE from. */}}
{{- define "thunderhelm.livebook.secretName" -}}
{{- default (printf "%s-livebook" (include "thunderhelm.fullname" .)) .Values.livebook.secrets.existingSecret -}}
{{- end -}}

{{/* TLS Secret of the cert-manager Certificate. */}}
{{- define "thunderhelm.livebook.tlsSecretName" -}}
{{- default (printf "%s-livebook-tls" (include "thunderhelm.fullname" .)) .Values.livebook.ingress.certManager.secretName -}}
{{- end -}}

{{/* DNS names of the Certificate: certManager.dnsNames, else the ingress hosts. JSON list. */}}
{{- define "thunderhelm.livebook.dnsNames" -}}
{{- $names := .Values.livebook.ingress.certManager.dnsNames -}}
{{- if not $names -}}
{{- $names = list -}}
{{- range .Values.livebook.ingress.hosts -}}
{{- $names = append $names .host -}}
{{- end -}}
{{- end -}}
{{- toJson $names -}}
{{- end -}}
