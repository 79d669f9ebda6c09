{{/* DATABASE_URL: all the migration Job gets (it needs nothing else). */}}
{{- define "kubegate.databaseEnv" -}}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      {{- if .Values.database.existingSecret }}
      name: {{ .Values.database.existingSecret | quote }}
      key: {{ .Values.database.existingSecretKey | quote }}
      {{- else }}
      name: {{ include "kubegate.secretName" . }}
      key: DATABASE_URL
      {{- end }}
{{- end -}}

{{/* The proxy's secret env: database URL, master key, OIDC client secret. */}}
{{- define "kubegate.secretEnv" -}}
{{ include "kubegate.databaseEnv" . }}
- name: KUBEGATE_MASTER_KEY
  valueFrom:
    secretKeyRef:
      {{- if .Values.masterKey.existingSecret }}
      name: {{ .Values.masterKey.existingSecret | quote }}
      key: {{ .Values.masterKey.existingSecretKey | quote }}
      {{- else }}
      name: {{ include "kubegate.secretName" . }}
      key: KUBEGATE_MASTER_KEY
      {{- end }}
{{- if or .Values.oidc.existingSecret .Values.oidc.clientSecret }}
- name: KUBEGATE_OIDC_CLIENT_SECRET
  valueFrom:
    secretKeyRef:
      {{- if .Values.oidc.existingSecret }}
      name: {{ .Values.oidc.existingSecret | quote }}
      key: {{ .Values.oidc.existingSecretKey | quote }}
      {{- else }}
      name: {{ include "kubegate.secretName" . }}
      key: KUBEGATE_OIDC_CLIENT_SECRET
      {{- end }}
{{- end }}
{{- end -}}

{{/* The proxy's plain settings. */}}
{{- define "kubegate.commonEnv" -}}
- name: KUBEGATE_PUBLIC_URL
  value: {{ .Values.publicUrl | quote }}
- name: KUBEGATE_TUNNEL_ADDRESS
  value: {{ .Values.tunnelAddress | quote }}
- name: KUBEGATE_ENROLL_ADDRESS
  value: {{ include "kubegate.enrollAddress" . | quote }}
- name: KUBEGATE_AGENT_IMAGE
  value: {{ default (include "kubegate.image" .) .Values.agentImage | quote }}
{{- range $k, $v := .Values.config }}
- name: {{ $k }}
  {{- /* YAML numbers arrive as float64; print whole numbers without an exponent. */}}
  value: {{ (kindIs "float64" $v) | ternary (int64 $v | toString) (toString $v) | quote }}
{{- end }}
{{- end -}}
