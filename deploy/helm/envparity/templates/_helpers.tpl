{{/* Names, labels and image references shared by every template. */}}

{{- define "envparity.name" -}}
{{- .Chart.Name -}}
{{- end -}}

{{/* The release's prefix: the release name, plus the chart name unless it already holds it. */}}
{{- define "envparity.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Selector labels of one component: (dict "ctx" $ "component" "agent"). */}}
{{- define "envparity.selectorLabels" -}}
app.kubernetes.io/name: {{ include "envparity.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Every label of one component: (dict "ctx" $ "component" "agent"). */}}
{{- define "envparity.labels" -}}
{{ include "envparity.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: envparity
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* An image reference, by digest when one is set: (dict "ctx" $ "image" .Values.image.agent). */}}
{{- define "envparity.image" -}}
{{- $registry := .ctx.Values.image.registry | trimSuffix "/" -}}
{{- if .image.digest -}}
{{- printf "%s/%s@%s" $registry .image.name .image.digest -}}
{{- else -}}
{{- printf "%s/%s:%s" $registry .image.name (.ctx.Values.image.tag | default .ctx.Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{- define "envparity.aggregatorName" -}}
{{- printf "%s-aggregator" (include "envparity.fullname" .) -}}
{{- end -}}

{{- define "envparity.agentName" -}}
{{- printf "%s-agent" (include "envparity.fullname" .) -}}
{{- end -}}

{{/* The config-file key that holds a sink's secret file, by sink type. */}}
{{- define "envparity.sinkSecretKey" -}}
{{- if eq .type "slack" -}}url_file{{- else if eq .type "pagerduty" -}}routing_key_file{{- else -}}secret_file{{- end -}}
{{- end -}}

{{/* True (non-empty) when any sink takes a secret. */}}
{{- define "envparity.sinkSecrets" -}}
{{- range .Values.alerts.sinks -}}{{- if .secret -}}yes{{- end -}}{{- end -}}
{{- end -}}

{{/* Non-empty when the aggregator reads secret files (sink secrets, the store's password), copied owner-only by its init container. */}}
{{- define "envparity.secretFiles" -}}
{{- include "envparity.sinkSecrets" . -}}
{{- if and .Values.aggregator.postgres.url .Values.aggregator.postgres.passwordSecret.name -}}yes{{- end -}}
{{- end -}}

{{/* Fails unless exactly one transport is chosen: TLS (the default) or, explicitly, plain text. */}}
{{- define "envparity.checkTransport" -}}
{{- if and .Values.tls.enabled .Values.insecurePlaintext -}}
{{- fail "tls.enabled and insecurePlaintext are both true: choose one (docs/deploy.md, \"Transport security\")" -}}
{{- end -}}
{{- if not (or .Values.tls.enabled .Values.insecurePlaintext) -}}
{{- fail "tls.enabled=false needs insecurePlaintext=true: reports and queries would travel unencrypted and unauthenticated (docs/deploy.md, \"Transport security\")" -}}
{{- end -}}
{{- end -}}

{{/* The nodes' container runtime (agent.runtime): docker, podman or containerd; fails on anything else. */}}
{{- define "envparity.agentRuntime" -}}
{{- $runtime := .Values.agent.runtime | default "docker" -}}
{{- if not (has $runtime (list "docker" "podman" "containerd")) -}}
{{- fail (printf "agent.runtime %q: choose docker, podman or containerd (docs/deploy.md, \"Container runtimes\")" $runtime) -}}
{{- end -}}
{{- $runtime -}}
{{- end -}}

{{/* Where the agent finds its runtime's socket in its container: the node's socket under /host, or, for containerd, the allowlist's. */}}
{{- define "envparity.agentSocket" -}}
{{- $runtime := include "envparity.agentRuntime" . -}}
{{- if eq $runtime "containerd" -}}
/run/envparity/cri/cri.sock
{{- else -}}
{{- $socket := get .Values.agent $runtime -}}
{{- printf "/host%s/%s" ($socket.socketDir | trimSuffix "/") $socket.socketName -}}
{{- end -}}
{{- end -}}
