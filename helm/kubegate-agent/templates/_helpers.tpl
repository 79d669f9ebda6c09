{{/*
Everything fixed about the agent (labels, RBAC rules) comes from
files/bootstrap-shared.json, generated from proxy/clusters/bootstrap-yaml.ts by
`make docs`, so the chart and the bootstrap YAML cannot drift. Helm's own
labels (helm.sh/chart, app.kubernetes.io/instance) are deliberately not added:
the objects must be identical to the bootstrap YAML's.
*/}}

{{- define "kubegate-agent.shared" -}}
{{- .Files.Get "files/bootstrap-shared.json" -}}
{{- end -}}

{{- define "kubegate-agent.labels" -}}
{{- (include "kubegate-agent.shared" . | fromJson).labels | toYaml -}}
{{- end -}}

{{- define "kubegate-agent.bootstrapSecret" -}}
{{- default "kubegate-agent-bootstrap" .Values.bootstrap.existingSecret -}}
{{- end -}}

{{- define "kubegate-agent.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The host part of host:port or [v6]:port, as the CLI derives the tunnel server name. */}}
{{- define "kubegate-agent.tunnelServerName" -}}
{{- if .Values.tunnelServerName -}}
{{- .Values.tunnelServerName -}}
{{- else -}}
{{- regexReplaceAll "^\\[?([^\\]]*?)\\]?:[0-9]+$" .Values.tunnelAddress "${1}" -}}
{{- end -}}
{{- end -}}

{{/* Clear messages for what the values schema cannot express. */}}
{{- define "kubegate-agent.validate" -}}
{{- if not .Values.bootstrap.existingSecret -}}
{{- if not .Values.cluster -}}
{{- fail "kubegate-agent: set cluster to the name registered with `kubegate admin cluster add NAME` (or bootstrap.existingSecret)" -}}
{{- end -}}
{{- if not .Values.tunnelAddress -}}
{{- fail "kubegate-agent: set tunnelAddress to the host:port of the proxy tunnel listener (the tunnel-address key of the bootstrap Secret)" -}}
{{- end -}}
{{- if not .Values.enrollAddress -}}
{{- fail "kubegate-agent: set enrollAddress to the host:port of the proxy enrollment listener (the enroll-address key of the bootstrap Secret)" -}}
{{- end -}}
{{- if not .Values.bootstrap.token -}}
{{- fail "kubegate-agent: set bootstrap.token to the one-time token from `kubegate admin cluster bootstrap NAME` (or bootstrap.existingSecret)" -}}
{{- end -}}
{{- if not (contains "BEGIN CERTIFICATE" .Values.bootstrap.proxyCa) -}}
{{- fail "kubegate-agent: set bootstrap.proxyCa to the proxy CA certificate in PEM (the ca.crt key of the bootstrap Secret), e.g. --set-file bootstrap.proxyCa=ca.crt" -}}
{{- end -}}
{{- end -}}
{{- end -}}
