{{/*
config.toml for stancewatch, from .Values.config. Key for key the layout of config/default.toml (tests/deploy.rs
checks that every key of that file is rendered here). Strings go through toJson (a JSON string is a valid TOML
basic string), whole numbers through int64 (Helm reads YAML numbers as floats, which TOML would write as 256.0),
the one fraction (traces.sample_ratio) through float64 (1.0 renders as 1, which the loader takes), and
librdkafka properties are rendered as strings, sorted by key.
*/}}
{{- define "stancewatch.configToml" -}}
{{- $c := .Values.config -}}
# Rendered by the stancewatch Helm chart from .Values.config; see config/default.toml for every key.
# Environment variables STANCEWATCH__SECTION__KEY override it (SASL/TLS settings come that way).

[kafka]
brokers = {{ required "config.kafka.brokers is required" $c.kafka.brokers | toJson }}
group_id = {{ required "config.kafka.group_id is required" $c.kafka.group_id | toJson }}
input_topic = {{ required "config.kafka.input_topic is required" $c.kafka.input_topic | toJson }}
enriched_topic = {{ required "config.kafka.enriched_topic is required" $c.kafka.enriched_topic | toJson }}
entity_stances_topic = {{ required "config.kafka.entity_stances_topic is required" $c.kafka.entity_stances_topic | toJson }}
dlq_topic = {{ required "config.kafka.dlq_topic is required" $c.kafka.dlq_topic | toJson }}
statistics_interval_ms = {{ required "config.kafka.statistics_interval_ms is required" $c.kafka.statistics_interval_ms | int64 }}

[kafka.consumer]
{{- range $k, $v := $c.kafka.consumer }}
{{ $k | toJson }} = {{ $v | toString | toJson }}
{{- end }}

[kafka.producer]
{{- range $k, $v := $c.kafka.producer }}
{{ $k | toJson }} = {{ $v | toString | toJson }}
{{- end }}

[processing]
max_in_flight = {{ required "config.processing.max_in_flight is required" $c.processing.max_in_flight | int64 }}
max_in_flight_bytes = {{ required "config.processing.max_in_flight_bytes is required" $c.processing.max_in_flight_bytes | int64 }}
workers = {{ required "config.processing.workers is required" $c.processing.workers | int64 }}
max_article_bytes = {{ required "config.processing.max_article_bytes is required" $c.processing.max_article_bytes | int64 }}
commit_interval_ms = {{ required "config.processing.commit_interval_ms is required" $c.processing.commit_interval_ms | int64 }}
rebalance_drain_timeout_ms = {{ required "config.processing.rebalance_drain_timeout_ms is required" $c.processing.rebalance_drain_timeout_ms | int64 }}
shutdown_drain_timeout_ms = {{ required "config.processing.shutdown_drain_timeout_ms is required" $c.processing.shutdown_drain_timeout_ms | int64 }}
retry_backoff_initial_ms = {{ required "config.processing.retry_backoff_initial_ms is required" $c.processing.retry_backoff_initial_ms | int64 }}
retry_backoff_max_ms = {{ required "config.processing.retry_backoff_max_ms is required" $c.processing.retry_backoff_max_ms | int64 }}
io_sched_batch = {{ ternary "false" "true" (eq (toString $c.processing.io_sched_batch) "false") }}
on_undeliverable = {{ required "config.processing.on_undeliverable is required" $c.processing.on_undeliverable | toJson }}

[output]
max_record_bytes = {{ required "config.output.max_record_bytes is required" $c.output.max_record_bytes | int64 }}
max_entities = {{ required "config.output.max_entities is required" $c.output.max_entities | int64 }}
max_mentions_per_entity = {{ required "config.output.max_mentions_per_entity is required" $c.output.max_mentions_per_entity | int64 }}
max_relations = {{ $c.output.max_relations | int64 }}

[nlp]
mode = {{ required "config.nlp.mode is required" $c.nlp.mode | toJson }}
knowledge_base_files = {{ $c.nlp.knowledge_base_files | default list | toJson }}

[nlp.accurate]
base_dir = {{ required "config.nlp.accurate.base_dir is required" $c.nlp.accurate.base_dir | toJson }}
max_batch = {{ required "config.nlp.accurate.max_batch is required" $c.nlp.accurate.max_batch | int }}
max_sentences = {{ $c.nlp.accurate.max_sentences | int }}
max_tokens = {{ required "config.nlp.accurate.max_tokens is required" $c.nlp.accurate.max_tokens | int }}

[metrics]
watchlist = {{ $c.metrics.watchlist | default list | toJson }}
sources = {{ $c.metrics.sources | default list | toJson }}
max_sources = {{ $c.metrics.max_sources | int }}

[http]
listen = {{ printf "%s:%d" .Values.metrics.listenAddress (int64 .Values.metrics.port) | toJson }}

[log]
format = {{ required "config.log.format is required" $c.log.format | toJson }}
level = {{ required "config.log.level is required" $c.log.level | toJson }}

[traces]
otlp_endpoint = {{ $c.traces.otlp_endpoint | default "" | toJson }}
sample_ratio = {{ $c.traces.sample_ratio | float64 }}
service_name = {{ required "config.traces.service_name is required" $c.traces.service_name | toJson }}
{{ end -}}
