{{- define "kubegate.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "kubegate.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
app.kubernetes.io/component: proxy
{{- end -}}

{{/* Labels of everything the release renders; components add app.kubernetes.io/component. */}}
{{- define "kubegate.commonLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kubegate
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "kubegate.labels" -}}
{{ include "kubegate.commonLabels" . }}
app.kubernetes.io/component: proxy
{{- end -}}

{{- define "kubegate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "kubegate.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "kubegate.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The Secret the chart renders for values given inline (database URL, master key, OIDC secret). */}}
{{- define "kubegate.secretName" -}}
{{- include "kubegate.fullname" . -}}
{{- end -}}

{{- define "kubegate.hostOf" -}}
{{- regexReplaceAll "^\\[?([^\\]]*?)\\]?:[0-9]+$" . "${1}" -}}
{{- end -}}

{{/* host:port agents enroll at: enrollAddress, or the tunnel host with the enrollment service port. */}}
{{- define "kubegate.enrollAddress" -}}
{{- if .Values.enrollAddress -}}
{{- .Values.enrollAddress -}}
{{- else -}}
{{- $host := include "kubegate.hostOf" .Values.tunnelAddress -}}
{{- printf "%s:%d" (ternary (printf "[%s]" $host) $host (contains ":" $host)) (int .Values.service.enroll.port) -}}
{{- end -}}
{{- end -}}

{{/*
Names the internally issued serving certificate covers: the public host, the
tunnel and enrollment hosts (agents check them as TLS server names) and the
service names. The first one is the certificate's common name.
*/}}
{{- define "kubegate.tlsHosts" -}}
{{- $full := include "kubegate.fullname" . -}}
{{- $ns := .Release.Namespace -}}
{{- $hosts := list (urlParse .Values.publicUrl).hostname (include "kubegate.hostOf" .Values.tunnelAddress) (include "kubegate.hostOf" (include "kubegate.enrollAddress" .)) -}}
{{- $hosts = concat $hosts (list $full (printf "%s.%s.svc" $full $ns) (printf "%s-tunnel.%s.svc" $full $ns) (printf "%s-enroll.%s.svc" $full $ns)) -}}
{{- $hosts = concat $hosts .Values.tlsHosts -}}
{{- $hosts | uniq | join "," -}}
{{- end -}}

{{/* The last peer port of a pod: one per worker (auto: up to 8); empty with one worker. */}}
{{- define "kubegate.peerEndPort" -}}
{{- $w := toString .Values.workers -}}
{{- $n := ternary 8 (atoi $w) (eq $w "auto") -}}
{{- if gt $n 1 -}}{{ add (int .Values.ports.peer) (sub $n 1) }}{{- end -}}
{{- end -}}

{{/* Env vars the chart sets itself; config: may not set them (the schema says so too). */}}
{{- define "kubegate.managedEnv" -}}
DATABASE_URL KUBEGATE_MASTER_KEY KUBEGATE_OIDC_CLIENT_SECRET KUBEGATE_WORKERS KUBEGATE_LISTEN KUBEGATE_TUNNEL_LISTEN KUBEGATE_ENROLL_LISTEN KUBEGATE_PEER_LISTEN KUBEGATE_PEER_ADDRESS KUBEGATE_METRICS_LISTEN KUBEGATE_PUBLIC_URL KUBEGATE_TUNNEL_ADDRESS KUBEGATE_ENROLL_ADDRESS KUBEGATE_TLS_HOSTS KUBEGATE_TLS_CERT_FILE KUBEGATE_TLS_KEY_FILE KUBEGATE_REPLICA_ID KUBEGATE_AGENT_IMAGE KUBEGATE_MIGRATE_ON_START KUBEGATE_CONFIG KUBEGATE_AUDIT_SPOOL_DIR KUBEGATE_AUDIT_POLICY_FILE KUBEGATE_RECORDING_STORAGE KUBEGATE_RECORDING_RETENTION KUBEGATE_RECORDING_S3_ENDPOINT KUBEGATE_RECORDING_S3_BUCKET KUBEGATE_RECORDING_S3_REGION KUBEGATE_RECORDING_S3_PREFIX KUBEGATE_RECORDING_S3_FORCE_PATH_STYLE KUBEGATE_RECORDING_S3_SSE KUBEGATE_RECORDING_S3_SSE_KMS_KEY_ID KUBEGATE_RECORDING_S3_ACCESS_KEY_ID KUBEGATE_RECORDING_S3_SECRET_ACCESS_KEY
{{- end -}}

{{/* Clear messages for what the values schema cannot express. */}}
{{- define "kubegate.validate" -}}
{{- if not .Values.publicUrl -}}
{{- fail "kubegate: set publicUrl to the https:// URL users reach the proxy at, e.g. --set publicUrl=https://kubegate.example.com" -}}
{{- end -}}
{{- if not .Values.tunnelAddress -}}
{{- fail "kubegate: set tunnelAddress to the host:port agents dial (the address of service.tunnel), e.g. --set tunnelAddress=kubegate-tunnel.example.com:8444" -}}
{{- end -}}
{{- if and (not .Values.database.url) (not .Values.database.existingSecret) -}}
{{- fail "kubegate: set database.url (postgres://…) or database.existingSecret (a Secret with the key database.existingSecretKey)" -}}
{{- end -}}
{{- if and (not .Values.masterKey.value) (not .Values.masterKey.existingSecret) -}}
{{- fail "kubegate: set masterKey.existingSecret (recommended) or masterKey.value: 32 random bytes in base64, e.g. `openssl rand -base64 32`; back it up, the CAs cannot be opened without it" -}}
{{- end -}}
{{- if .Values.masterKey.value -}}
{{- if ne (len (b64dec .Values.masterKey.value)) 32 -}}
{{- fail "kubegate: masterKey.value must be exactly 32 random bytes in base64 (44 characters), e.g. `openssl rand -base64 32`" -}}
{{- end -}}
{{- end -}}
{{- $s3 := .Values.recording.s3 -}}
{{- if and (eq .Values.recording.storage "s3") (not $s3.bucket) -}}
{{- fail "kubegate: recording.storage is s3: set recording.s3.bucket (an existing bucket) too" -}}
{{- end -}}
{{- if ne (not $s3.accessKeyId) (not $s3.secretAccessKey) -}}
{{- fail "kubegate: set recording.s3.accessKeyId and recording.s3.secretAccessKey together, or neither (recording.s3.existingSecret, or the AWS SDK's default chain)" -}}
{{- end -}}
{{- if and $s3.sseKmsKeyId (ne $s3.sse "aws:kms") -}}
{{- fail "kubegate: recording.s3.sseKmsKeyId needs recording.s3.sse: aws:kms" -}}
{{- end -}}
{{- $managed := splitList " " (include "kubegate.managedEnv" .) -}}
{{- range $k, $_ := .Values.config -}}
{{- if has $k $managed -}}
{{- fail (printf "kubegate: config.%s is managed by the chart; use its dedicated value instead (see values.yaml)" $k) -}}
{{- end -}}
{{- end -}}
{{- range $k, $_ := .Values.podLabels -}}
{{- if or (hasPrefix "app.kubernetes.io/" $k) (eq $k "helm.sh/chart") -}}
{{- fail (printf "kubegate: podLabels.%s would override a label the chart sets itself; use another key" $k) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) -}}
{{- fail "kubegate: autoscaling.minReplicas must not exceed autoscaling.maxReplicas" -}}
{{- end -}}
{{- end -}}
