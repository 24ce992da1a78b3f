{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "stancewatch.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: RELEASE-stancewatch, or RELEASE when it already contains the chart name. */}}
{{- define "stancewatch.fullname" -}}
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

{{- define "stancewatch.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "stancewatch.selectorLabels" -}}
app.kubernetes.io/name: {{ include "stancewatch.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "stancewatch.labels" -}}
helm.sh/chart: {{ include "stancewatch.chart" . }}
{{ include "stancewatch.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/component: stream-processor
app.kubernetes.io/part-of: stancewatch
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "stancewatch.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "stancewatch.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "stancewatch.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/*
Seconds between SIGTERM and SIGKILL. stancewatch drains in-flight work for
config.processing.shutdown_drain_timeout_ms, then commits, leaves the group and closes its clients: the grace
period must cover the drain plus shutdownMarginSeconds. Derived when terminationGracePeriodSeconds is empty; a
value set below that sum fails the render.
*/}}
{{- define "stancewatch.terminationGracePeriodSeconds" -}}
{{- $drainMs := int64 (required "config.processing.shutdown_drain_timeout_ms is required" .Values.config.processing.shutdown_drain_timeout_ms) }}
{{- $drainS := div (add $drainMs 999) 1000 }}
{{- $minimum := add $drainS (int64 .Values.shutdownMarginSeconds) }}
{{- if .Values.terminationGracePeriodSeconds }}
{{- $grace := int64 .Values.terminationGracePeriodSeconds }}
{{- if lt $grace $minimum }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must be at least config.processing.shutdown_drain_timeout_ms in seconds (%d) plus shutdownMarginSeconds (%d) = %d, or stancewatch is killed before it has committed its drained work" $grace $drainS (int64 .Values.shutdownMarginSeconds) $minimum) }}
{{- end }}
{{- $grace }}
{{- else }}
{{- $minimum }}
{{- end }}
{{- end }}

{{/* security.protocol implied by kafka.sasl.enabled and kafka.tls.enabled, empty when neither is. */}}
{{- define "stancewatch.securityProtocol" -}}
{{- if and .Values.kafka.sasl.enabled .Values.kafka.tls.enabled }}SASL_SSL
{{- else if .Values.kafka.sasl.enabled }}SASL_PLAINTEXT
{{- else if .Values.kafka.tls.enabled }}SSL
{{- end }}
{{- end }}

{{/* Checks across values that no single template owns. */}}
{{- define "stancewatch.validate" -}}
{{- if and .Values.autoscaling.hpa.enabled .Values.autoscaling.keda.enabled }}
{{- fail "enable at most one of autoscaling.hpa and autoscaling.keda: both would scale the same Deployment" }}
{{- end }}
{{- if and .Values.kafka.sasl.enabled (not .Values.kafka.sasl.existingSecret) }}
{{- fail "kafka.sasl.enabled needs kafka.sasl.existingSecret: the Secret holding the SASL user name and password" }}
{{- end }}
{{- if and .Values.kafka.tls.enabled (or .Values.kafka.tls.certKey .Values.kafka.tls.keyKey) (not .Values.kafka.tls.existingSecret) }}
{{- fail "kafka.tls.certKey and kafka.tls.keyKey need kafka.tls.existingSecret" }}
{{- end }}
{{- if and .Values.kafka.sasl.enabled (not (has .Values.kafka.sasl.mechanism (list "PLAIN" "SCRAM-SHA-256" "SCRAM-SHA-512"))) }}
{{- fail (printf "kafka.sasl.mechanism %q is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512" .Values.kafka.sasl.mechanism) }}
{{- end }}
{{- if and .Values.podDisruptionBudget.enabled .Values.podDisruptionBudget.maxUnavailable .Values.podDisruptionBudget.minAvailable }}
{{- fail "set one of podDisruptionBudget.maxUnavailable and podDisruptionBudget.minAvailable, not both" }}
{{- end }}
{{- with .Values.config.traces }}
{{- if or (lt (float64 .sample_ratio) 0.0) (gt (float64 .sample_ratio) 1.0) }}
{{- fail (printf "config.traces.sample_ratio must be between 0 and 1, not %v" .sample_ratio) }}
{{- end }}
{{- if and .otlp_endpoint (not (hasPrefix "http://" (lower .otlp_endpoint))) }}
{{- fail (printf "config.traces.otlp_endpoint must be the http:// URL of an OTLP/HTTP receiver (e.g. http://otel-collector.observability:4318), not %q" .otlp_endpoint) }}
{{- end }}
{{- end }}
{{- range $k, $v := .Values.config.kafka.consumer }}
{{- if has $k (list "bootstrap.servers" "group.id" "enable.auto.commit" "enable.auto.offset.store") }}
{{- fail (printf "config.kafka.consumer must not set %s: stancewatch manages it" $k) }}
{{- end }}
{{- end }}
{{- range $k, $v := .Values.config.kafka.producer }}
{{- if has $k (list "bootstrap.servers" "enable.idempotence" "acks" "message.max.bytes") }}
{{- fail (printf "config.kafka.producer must not set %s: stancewatch manages it" $k) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The container's environment: librdkafka security settings for the consumer and the producer alike
(STANCEWATCH__KAFKA__{CONSUMER,PRODUCER}__<property>), credentials from Secret references, then extraEnv.
Empty when there is nothing to set.
*/}}
{{- define "stancewatch.env" -}}
{{- $protocol := include "stancewatch.securityProtocol" . }}
{{- range $client := list "CONSUMER" "PRODUCER" }}
{{- if $protocol }}
- name: STANCEWATCH__KAFKA__{{ $client }}__SECURITY.PROTOCOL
  value: {{ $protocol | quote }}
{{- end }}
{{- if $.Values.kafka.sasl.enabled }}
- name: STANCEWATCH__KAFKA__{{ $client }}__SASL.MECHANISM
  value: {{ $.Values.kafka.sasl.mechanism | quote }}
- name: STANCEWATCH__KAFKA__{{ $client }}__SASL.USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ $.Values.kafka.sasl.existingSecret }}
      key: {{ $.Values.kafka.sasl.usernameKey }}
- name: STANCEWATCH__KAFKA__{{ $client }}__SASL.PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $.Values.kafka.sasl.existingSecret }}
      key: {{ $.Values.kafka.sasl.passwordKey }}
{{- end }}
{{- if and $.Values.kafka.tls.enabled $.Values.kafka.tls.existingSecret }}
{{- if $.Values.kafka.tls.caKey }}
- name: STANCEWATCH__KAFKA__{{ $client }}__SSL.CA.LOCATION
  value: {{ printf "%s/%s" $.Values.kafka.tls.mountPath $.Values.kafka.tls.caKey | quote }}
{{- end }}
{{- if $.Values.kafka.tls.certKey }}
- name: STANCEWATCH__KAFKA__{{ $client }}__SSL.CERTIFICATE.LOCATION
  value: {{ printf "%s/%s" $.Values.kafka.tls.mountPath $.Values.kafka.tls.certKey | quote }}
{{- end }}
{{- if $.Values.kafka.tls.keyKey }}
- name: STANCEWATCH__KAFKA__{{ $client }}__SSL.KEY.LOCATION
  value: {{ printf "%s/%s" $.Values.kafka.tls.mountPath $.Values.kafka.tls.keyKey | quote }}
{{- end }}
{{- if $.Values.kafka.tls.keyPasswordSecret }}
- name: STANCEWATCH__KAFKA__{{ $client }}__SSL.KEY.PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $.Values.kafka.tls.keyPasswordSecret }}
      key: {{ $.Values.kafka.tls.keyPasswordKey }}
{{- end }}
{{- end }}
{{- end }}
{{- with .Values.extraEnv }}
{{- toYaml . | nindent 0 }}
{{- end }}
{{- end }}
