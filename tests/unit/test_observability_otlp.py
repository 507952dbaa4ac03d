"""The fast paths produce what the SDK would: the OTLP encoder the SDK's bytes,
the recorder of after-the-fact spans the SDK's spans."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState

from gateway.observability.batch import BatchExportProcessor
from gateway.observability.otlp import SpanEncoder
from gateway.observability.record import SpanRecorder


def recording(
    sampler: Any = None, *, fast: bool = True
) -> tuple[InMemorySpanExporter, trace.Tracer, SpanRecorder]:
    """A provider with a synchronous in-memory exporter, its tracer and a
    recorder over it (``fast=False``: the recorder takes the SDK's path)."""
    exporter = InMemorySpanExporter()
    processor = SimpleSpanProcessor(exporter)
    provider = TracerProvider(
        resource=Resource.create({"service.name": "dbx-gateway"}),
        **({"sampler": sampler} if sampler is not None else {}),
    )
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("dbx-gateway")
    return exporter, tracer, SpanRecorder(tracer, provider, [processor], direct=fast)


def make_spans() -> list[ReadableSpan]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": "dbx-gateway", "deployment.environment": "t"})
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("dbx-gateway")
    other = provider.get_tracer("other", "1.2.3", schema_url="https://example.test/s")
    remote = SpanContext(
        0x1234,
        0x5678,
        is_remote=True,
        trace_flags=TraceFlags(1),
        trace_state=TraceState([("vendor", "v1"), ("x", "y")]),
    )
    root = tracer.start_span(
        "POST /graphql",
        context=trace.set_span_in_context(trace.NonRecordingSpan(remote)),
        kind=SpanKind.SERVER,
    )
    root.set_attribute("http.response.status_code", 200)
    ctx = trace.set_span_in_context(root)
    for i in range(3):
        s = tracer.start_span(
            "SELECT",
            context=ctx,
            kind=SpanKind.CLIENT,
            start_time=10 + i,
            attributes={
                "db.system.name": "postgresql",
                "db.query.text": "select é from t where id = any($1)" + "x" * 200,
                "server.port": 55433,
                "db.dbx.pool_wait_s": 0.000123,
                "db.dbx.replica_lag_s": 0.0,
                "neg": -5,
                "flag": i == 1,
                "codes": ["A", "B"],
                "ints": [1, 2],
            },
        )
        if i == 2:
            s.set_status(Status(StatusCode.ERROR, "TimeoutError"))
            s.add_event("exception", {"exception.type": "TimeoutError"}, timestamp=99)
        s.end(end_time=2**62 + i)
    loader = other.start_span(
        "loader aircraft",
        context=ctx,
        links=[Link(root.get_span_context(), {"dbx.link.kind": "waiter"}), Link(remote)],
    )
    loader.set_status(Status(StatusCode.OK))
    loader.end()
    root.end()
    return list(exporter.get_finished_spans())


def test_fast_encoding_decodes_to_the_sdk_encoding() -> None:
    spans = make_spans()
    encoder = SpanEncoder()
    for _ in range(2):  # second round from the caches
        mine = ExportTraceServiceRequest.FromString(encoder.encode_request(spans))
        assert mine == encode_spans(spans)
    assert len(mine.resource_spans[0].scope_spans) == 2


def test_empty_batch() -> None:
    assert SpanEncoder().encode_request([]) == encode_spans([]).SerializeToString()


def _recorded(fast: bool) -> list[ReadableSpan]:
    exporter, tracer, recorder = recording(fast=fast)
    parent = tracer.start_span("parent")
    recorder.record(
        "SELECT",
        parent,
        100,
        250,
        {"db.system.name": "postgresql", "db.response.returned_rows": 3},
        kind=SpanKind.CLIENT,
        status=Status(StatusCode.ERROR, "TimeoutError"),
    )
    recorder.record("resolve A.b", parent, 300, 400, {"graphql.field.path": "a.0.b"})
    parent.end()
    return list(exporter.get_finished_spans())


def test_recorded_spans_equal_sdk_spans() -> None:
    fast, slow = _recorded(True), _recorded(False)
    assert [s.name for s in fast] == [s.name for s in slow] == ["SELECT", "resolve A.b", "parent"]
    for a, b in zip(fast[:2], slow[:2], strict=True):
        assert a.parent is not None and b.parent is not None
        assert a.parent.span_id == fast[2].context.span_id
        assert a.context.trace_id == fast[2].context.trace_id
        assert a.context.trace_flags == b.context.trace_flags
        assert (a.kind, a.start_time, a.end_time) == (b.kind, b.start_time, b.end_time)
        assert dict(a.attributes or {}) == dict(b.attributes or {})
        assert (a.status.status_code, a.status.description) == (
            b.status.status_code,
            b.status.description,
        )
        assert a.resource == b.resource
        assert a.instrumentation_scope == b.instrumentation_scope
    # encoded together, the recorded spans share the tracer's scope group
    request = ExportTraceServiceRequest.FromString(SpanEncoder().encode_request(fast))
    assert request == encode_spans(fast)
    assert [len(s.spans) for s in request.resource_spans[0].scope_spans] == [3]


def test_unsampled_parent_records_nothing() -> None:
    exporter, tracer, recorder = recording(ALWAYS_OFF)
    parent = tracer.start_span("parent")
    recorder.record("SELECT", parent, 1, 2, {})
    parent.end()
    assert exporter.get_finished_spans() == ()


class _Collecting(InMemorySpanExporter):
    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.fail = fail
        self.batches: list[int] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.batches.append(len(spans))
        if self.fail:
            raise RuntimeError("collector down")
        return super().export(spans)


def _ended(tracer: trace.Tracer, n: int) -> None:
    for i in range(n):
        tracer.start_span(f"s{i}").end()


def test_batch_processor_exports_in_batches_and_on_shutdown() -> None:
    exporter = _Collecting()
    processor = BatchExportProcessor(
        exporter, max_queue_size=100, schedule_delay_millis=60_000, max_export_batch_size=10
    )
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("t")
    _ended(tracer, 25)
    assert processor.force_flush(5000)
    assert [s.name for s in exporter.get_finished_spans()] == [f"s{i}" for i in range(25)]
    assert max(exporter.batches) == 10
    _ended(tracer, 3)
    provider.shutdown()  # what is queued goes out at shutdown
    assert len(exporter.get_finished_spans()) == 28
    _ended(tracer, 1)  # after shutdown: ignored, no error
    assert len(exporter.get_finished_spans()) == 28


def test_batch_processor_drops_oldest_when_full_and_survives_failures() -> None:
    exporter = _Collecting(fail=True)
    processor = BatchExportProcessor(
        exporter, max_queue_size=5, schedule_delay_millis=60_000, max_export_batch_size=5
    )
    # a queue filled faster than the (blocked) export thread drains it
    with processor._lock:  # noqa: SLF001 - hold the export back
        for i in range(8):
            span = ReadableSpan(
                name=f"s{i}",
                context=SpanContext(1, i + 1, False, TraceFlags(1)),
            )
            processor.on_end(span)
        assert [s.name for s in processor._queue] == ["s3", "s4", "s5", "s6", "s7"]  # noqa: SLF001
    assert processor.dropped == 3
    assert processor.force_flush(5000)  # the exporter raised; nothing else did
    assert exporter.batches
    processor.shutdown()


def _live(fast: bool) -> list[ReadableSpan]:
    """The same live child spans through ``SpanRecorder.start`` (fast) and
    through the SDK's tracer (``direct=False``)."""
    exporter, tracer, recorder = recording(fast=fast)
    root = tracer.start_span("POST /graphql", kind=SpanKind.SERVER)
    with trace.use_span(root, end_on_exit=True):
        op = recorder.start("graphql", start_time=1000)
        with trace.use_span(op, end_on_exit=False):
            batch = recorder.start(
                "loader aircraft_by_id",
                attributes={"dbx.loader.name": "aircraft_by_id", "dbx.loader.batch_size": 2},
                links=[Link(root.get_span_context(), {"dbx.link.kind": "waiter"})],
                start_time=1100,
            )
            batch.set_status(Status(StatusCode.ERROR, "TimeoutError"))
            batch.set_status(StatusCode.UNSET)  # ignored, as in the SDK
            batch.end(end_time=1200)
            batch.set_attribute("late", 1)  # after end: ignored
        op.update_name("query Fleet")
        op.set_attributes({"graphql.operation.name": "Fleet", "dbx.codes": ["A", "B"]})
        op.add_event("marker", {"n": 1}, timestamp=1250)
        op.set_status(StatusCode.OK)
        op.set_status(Status(StatusCode.ERROR))  # OK is final, as in the SDK
        op.end(end_time=1300)
        op.end(end_time=9999)  # a second end changes nothing
    return list(exporter.get_finished_spans())


def test_live_spans_equal_sdk_spans() -> None:
    fast, slow = _live(True), _live(False)
    assert [s.name for s in fast] == [s.name for s in slow]
    assert [s.name for s in fast] == ["loader aircraft_by_id", "query Fleet", "POST /graphql"]
    assert type(fast[0]).__name__ == "LiveSpan" and type(slow[0]).__name__ != "LiveSpan"
    root = fast[2].context
    for a, b in zip(fast[:2], slow[:2], strict=True):
        assert a.parent is not None and a.context.trace_id == root.trace_id
        assert (a.kind, a.start_time, a.end_time) == (b.kind, b.start_time, b.end_time)
        assert dict(a.attributes or {}) == dict(b.attributes or {})
        assert (a.status.status_code, a.status.description) == (
            b.status.status_code,
            b.status.description,
        )
        assert [(e.name, dict(e.attributes or {}), e.timestamp) for e in a.events] == [
            (e.name, dict(e.attributes or {}), e.timestamp) for e in b.events
        ]
        assert [dict(lk.attributes or {}) for lk in a.links] == [
            dict(lk.attributes or {}) for lk in b.links
        ]
        assert a.resource == b.resource
        assert a.instrumentation_scope == b.instrumentation_scope
    assert [lk.context for lk in fast[0].links] == [root]
    assert [lk.context for lk in slow[0].links] == [slow[2].context]
    assert fast[0].parent is not None and fast[0].parent.span_id == fast[1].context.span_id
    assert fast[1].parent is not None and fast[1].parent.span_id == root.span_id
    request = ExportTraceServiceRequest.FromString(SpanEncoder().encode_request(fast))
    assert request == encode_spans(fast)


def test_live_span_under_unsampled_parent_is_not_recorded() -> None:
    exporter, tracer, recorder = recording(ALWAYS_OFF)
    with trace.use_span(tracer.start_span("root"), end_on_exit=True):
        child = recorder.start("graphql")
        assert not child.is_recording()
        child.end()
    assert exporter.get_finished_spans() == ()


def test_spans_encoded_at_end_reach_the_collector_as_the_sdk_encodes_them() -> None:
    """The processor with the gateway's exporter encodes each span when it
    ends; what an OTLP/HTTP endpoint receives equals the SDK's encoding."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from gateway.observability.otlp import FastOTLPSpanExporter

    received: list[bytes] = []

    class Sink(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            received.append(self.rfile.read(int(self.headers.get("content-length", 0))))
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    sink = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    try:
        exporter = FastOTLPSpanExporter(
            endpoint=f"http://127.0.0.1:{sink.server_address[1]}/v1/traces"
        )
        processor = BatchExportProcessor(
            exporter, max_queue_size=1000, schedule_delay_millis=60_000, max_export_batch_size=500
        )
        spans = make_spans()
        for span in spans:
            processor.on_end(span)
        assert all(type(item) is tuple for item in processor._queue)  # noqa: SLF001
        assert processor.force_flush(5000)
        processor.shutdown()
    finally:
        sink.shutdown()
    (body,) = received
    assert ExportTraceServiceRequest.FromString(body) == encode_spans(spans)


def test_plain_spans_of_every_value_shape_encode_as_the_sdk() -> None:
    """The encoder's path for plain spans (``ReadableSpan``s built after the
    fact, ``LiveSpan``s): values of every type and size, a status with a
    description, links with attributes, a remote parent; the same attribute
    pair as a span attribute and a link attribute (different fields)."""
    resource = Resource.create({"service.name": "dbx-gateway"})
    remote = SpanContext(7, 8, is_remote=True, trace_flags=TraceFlags(1))
    values: dict[str, Any] = {
        "s": "x",
        "long": "q" * 300,
        "zero": 0,
        "small": 127,
        "big": 128,
        "huge": 2**62,
        "neg": -5,
        "f": 0.25,
        "t": True,
        "f0": False,
        "list": ("a", "b"),
        "ints": (1, 2, 3),
        "dbx.link.kind": "waiter",
    }
    spans = [
        ReadableSpan(
            name=f"s{i}",
            context=SpanContext(7, 100 + i, False, TraceFlags(1)),
            parent=remote if i == 0 else SpanContext(7, 99, False, TraceFlags(1)),
            resource=resource,
            attributes=dict(values) if i % 2 == 0 else {"k": i},
            links=(Link(remote, {"dbx.link.kind": "waiter", "n": i}),) if i % 3 == 0 else (),
            kind=SpanKind.CLIENT if i % 2 else SpanKind.INTERNAL,
            status=Status(StatusCode.ERROR, "TimeoutError") if i == 1 else Status(StatusCode.UNSET),
            start_time=10**18 + i,
            end_time=10**18 + 2 * i + 1,
        )
        for i in range(6)
    ]
    encoder = SpanEncoder()
    for _ in range(2):  # from the caches the second time
        assert ExportTraceServiceRequest.FromString(encoder.encode_request(spans)) == encode_spans(
            spans
        )


def _server_span(fast: bool, sampler: Any, parent: SpanContext | None) -> trace.Span:
    _, _, recorder = recording(sampler, fast=fast)
    ctx = trace.set_span_in_context(trace.NonRecordingSpan(parent)) if parent else None
    from opentelemetry.context import Context

    return recorder.start_server(
        "POST", ctx or Context(), kind=SpanKind.SERVER, attributes={"http.request.method": "POST"}
    )


def test_server_span_decided_as_the_sdk_decides() -> None:
    from opentelemetry.sdk.trace.sampling import (
        ALWAYS_OFF,
        ALWAYS_ON,
        DEFAULT_ON,
        ParentBasedTraceIdRatio,
    )

    remote_sampled = SpanContext(
        0xABC,
        0xDEF,
        is_remote=True,
        trace_flags=TraceFlags(1),
        trace_state=TraceState([("v", "1")]),
    )
    remote_unsampled = SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=TraceFlags(0))
    cases = [
        (ALWAYS_ON, None),
        (DEFAULT_ON, None),
        (DEFAULT_ON, remote_sampled),
        (DEFAULT_ON, remote_unsampled),
        (ALWAYS_ON, remote_unsampled),
        (ALWAYS_OFF, None),
        (ParentBasedTraceIdRatio(0.5), remote_sampled),
    ]
    for sampler, parent in cases:
        fast, sdk = _server_span(True, sampler, parent), _server_span(False, sampler, parent)
        assert fast.is_recording() == sdk.is_recording(), (sampler, parent)
        a, b = fast.get_span_context(), sdk.get_span_context()
        assert a.trace_flags == b.trace_flags and a.trace_state == b.trace_state
        if parent is not None:
            assert a.trace_id == b.trace_id == parent.trace_id
        if fast.is_recording():
            assert type(fast).__name__ == "LiveSpan"
            fr, sr = cast(ReadableSpan, fast), cast(ReadableSpan, sdk)
            assert (fr.parent, fr.kind) == (sr.parent, sr.kind)
            assert dict(fr.attributes or {}) == dict(sr.attributes or {})
        fast.end()
        sdk.end()
