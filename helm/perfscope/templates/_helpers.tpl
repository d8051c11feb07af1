{{/* The chart name, truncated to 63 characters. */}}
{{- define "perfscope.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The full name: release-chart, truncated to 63 characters. */}}
{{- define "perfscope.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Selector labels. */}}
{{- define "perfscope.selectorLabels" -}}
app.kubernetes.io/name: {{ include "perfscope.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Common labels. */}}
{{- define "perfscope.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "perfscope.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The ServiceAccount's name. */}}
{{- define "perfscope.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "perfscope.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret holding credentials: the existing one, or the chart's. */}}
{{- define "perfscope.secretName" -}}
{{- default (include "perfscope.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{/* Whether there is a Secret to read from at all. */}}
{{- define "perfscope.hasSecret" -}}
{{- if or .Values.secrets.existingSecret (include "perfscope.createSecret" .) }}true{{- end }}
{{- end }}

{{/* Whether the chart creates the Secret (quick start values given). */}}
{{- define "perfscope.createSecret" -}}
{{- if not .Values.secrets.existingSecret }}
{{- range $k, $v := .Values.secrets.values }}{{ if $v }}true{{ end }}{{ end }}
{{- end }}
{{- end }}

{{/* The image reference. */}}
{{- define "perfscope.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
