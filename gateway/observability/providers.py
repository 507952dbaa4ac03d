"""The tracer provider, built from the standard ``OTEL_*`` environment for one
app instance (never installed as the global provider, so two apps in one
process, e.g. tests, keep their spans apart).

Read here: ``OTEL_SDK_DISABLED``, ``OTEL_SERVICE_NAME`` (default
``dbx-gateway``), ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_EXPORTER``
(``otlp``, ``console``, ``none``; comma list), ``OTEL_TRACES_SAMPLER`` and
``OTEL_TRACES_SAMPLER_ARG``. The OTLP exporter (HTTP/protobuf) reads its own
``OTEL_EXPORTER_OTLP_*`` variables and is used only when an endpoint is set,
so a laptop without a collector does not log export failures forever; its
spans go through the SDK's ``BatchSpanProcessor``, sized per the
``OTEL_BSP_*`` variables (``BSP_DEFAULTS`` where unset).

Must not: raise on a bad value at request time (it is all decided here, once).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    DEFAULT_OFF,
    DEFAULT_ON,
    ParentBasedTraceIdRatio,
    Sampler,
    TraceIdRatioBased,
)

log = logging.getLogger("dbx.observability")

SERVICE_NAME = "dbx-gateway"


def sampler_from_env(env: Mapping[str, str]) -> Sampler:
    name = env.get("OTEL_TRACES_SAMPLER", "parentbased_always_on").strip().lower()
    raw_arg = env.get("OTEL_TRACES_SAMPLER_ARG", "").strip()
    try:
        ratio = float(raw_arg) if raw_arg else 1.0
    except ValueError:
        log.warning("OTEL_TRACES_SAMPLER_ARG is not a number; using 1.0")
        ratio = 1.0
    ratio = min(max(ratio, 0.0), 1.0)
    samplers: dict[str, Sampler] = {
        "always_on": ALWAYS_ON,
        "always_off": ALWAYS_OFF,
        "parentbased_always_on": DEFAULT_ON,
        "parentbased_always_off": DEFAULT_OFF,
        "traceidratio": TraceIdRatioBased(ratio),
        "parentbased_traceidratio": ParentBasedTraceIdRatio(ratio),
    }
    if name not in samplers:
        log.warning("unknown OTEL_TRACES_SAMPLER %r; using parentbased_always_on", name)
        return DEFAULT_ON
    return samplers[name]


def resource_from_env(env: Mapping[str, str]) -> Resource:
    attrs: dict[str, str] = {}
    for pair in env.get("OTEL_RESOURCE_ATTRIBUTES", "").split(","):
        key, sep, value = pair.partition("=")
        if sep and key.strip():
            attrs[key.strip()] = value.strip()
    attrs["service.name"] = env.get("OTEL_SERVICE_NAME", "").strip() or attrs.get(
        "service.name", SERVICE_NAME
    )
    return Resource.create(attrs)


def exporter_processors(env: Mapping[str, str]) -> list[SpanProcessor]:
    names = [
        n.strip().lower() for n in env.get("OTEL_TRACES_EXPORTER", "otlp").split(",") if n.strip()
    ]
    processors: list[SpanProcessor] = []
    if "none" in names:
        return processors
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    if "otlp" in names and endpoint:
        protocol = env.get(
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "")
        )
        if protocol and protocol != "http/protobuf":
            log.warning("OTLP protocol %r is not supported here; using http/protobuf", protocol)
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        # The endpoint from ``env`` (the exporter alone would read only
        # os.environ); the rest of OTEL_EXPORTER_OTLP_* it reads itself.
        url = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or (endpoint.rstrip("/") + "/v1/traces")
        processors.append(batch_processor(OTLPSpanExporter(endpoint=url), env))
    if "console" in names:
        processors.append(SimpleSpanProcessor(ConsoleSpanExporter()))
    return processors


# Our defaults where the SDK's are tuned for a lighter load: at 100%
# sampling a gateway worker ends several thousand spans a second, and the
# SDK's 2048-span queue drops spans when an export is slow.
BSP_DEFAULTS = {
    "OTEL_BSP_SCHEDULE_DELAY": 5000,
    "OTEL_BSP_MAX_QUEUE_SIZE": 16384,
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": 1024,
}


def _positive_int(env: Mapping[str, str], name: str) -> int:
    default = BSP_DEFAULTS[name]
    raw = env.get(name, "").strip()
    try:
        value = int(raw) if raw else default
    except ValueError:
        log.warning("%s is not an integer; using %d", name, default)
        return default
    return value if value > 0 else default


def batch_processor(exporter: SpanExporter, env: Mapping[str, str]) -> BatchSpanProcessor:
    """The SDK's batching processor sized from ``env`` (it would read
    ``os.environ`` only), with ``BSP_DEFAULTS`` where ``env`` says nothing.
    ``OTEL_BSP_EXPORT_TIMEOUT`` is the exporter's business
    (``OTEL_EXPORTER_OTLP_TIMEOUT``), as in the SDK."""
    queue = _positive_int(env, "OTEL_BSP_MAX_QUEUE_SIZE")
    return BatchSpanProcessor(
        exporter,
        max_queue_size=queue,
        schedule_delay_millis=_positive_int(env, "OTEL_BSP_SCHEDULE_DELAY"),
        max_export_batch_size=min(_positive_int(env, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"), queue),
    )


def build_tracer_provider(
    env: Mapping[str, str], span_exporter: SpanExporter | None = None
) -> TracerProvider | None:
    """The provider with its span processors; None when
    ``OTEL_SDK_DISABLED=true`` (trace ids are then made up per request so
    ``X-Trace-Id`` still identifies it in logs)."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    provider = TracerProvider(sampler=sampler_from_env(env), resource=resource_from_env(env))
    if span_exporter is not None:
        # Tests read spans right after the request: export synchronously.
        processors: list[SpanProcessor] = [SimpleSpanProcessor(span_exporter)]
    else:
        processors = exporter_processors(env)
    for processor in processors:
        provider.add_span_processor(processor)
    return provider
