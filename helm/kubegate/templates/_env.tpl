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
{{- $s3 := .Values.recording.s3 }}
{{- if or $s3.existingSecret $s3.accessKeyId }}
{{- $name := $s3.existingSecret | default (include "kubegate.secretName" .) }}
- name: KUBEGATE_RECORDING_S3_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ $name | quote }}
      key: {{ ternary $s3.existingSecretAccessKeyIdKey "KUBEGATE_RECORDING_S3_ACCESS_KEY_ID" (not (empty $s3.existingSecret)) | quote }}
- name: KUBEGATE_RECORDING_S3_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $name | quote }}
      key: {{ ternary $s3.existingSecretSecretAccessKeyKey "KUBEGATE_RECORDING_S3_SECRET_ACCESS_KEY" (not (empty $s3.existingSecret)) | quote }}
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
- name: KUBEGATE_RECORDING_STORAGE
  value: {{ .Values.recording.storage | quote }}
- name: KUBEGATE_RECORDING_RETENTION
  value: {{ .Values.recording.retention | toString | quote }}
{{- if eq .Values.recording.storage "s3" }}
{{- with .Values.recording.s3 }}
{{- if .endpoint }}
- name: KUBEGATE_RECORDING_S3_ENDPOINT
  value: {{ .endpoint | quote }}
{{- end }}
- name: KUBEGATE_RECORDING_S3_BUCKET
  value: {{ .bucket | quote }}
- name: KUBEGATE_RECORDING_S3_REGION
  value: {{ .region | quote }}
- name: KUBEGATE_RECORDING_S3_PREFIX
  value: {{ .prefix | quote }}
- name: KUBEGATE_RECORDING_S3_FORCE_PATH_STYLE
  value: {{ .forcePathStyle | toString | quote }}
{{- if .sse }}
- name: KUBEGATE_RECORDING_S3_SSE
  value: {{ .sse | quote }}
{{- end }}
{{- if .sseKmsKeyId }}
- name: KUBEGATE_RECORDING_S3_SSE_KMS_KEY_ID
  value: {{ .sseKmsKeyId | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- range $k, $v := .Values.config }}
- name: {{ $k }}
  {{- /* YAML numbers arrive as float64; print whole numbers without an exponent. */}}
  value: {{ (kindIs "float64" $v) | ternary (int64 $v | toString) (toString $v) | quote }}
{{- end }}
{{- end -}}
