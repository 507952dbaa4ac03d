"""Telemetry ingest shared by ``ingestTelemetry`` and the NDJSON route, in
two phases so that a slow or hostile client costs the database nothing until
its data is all there:

1. No transaction is open. One short read fetches the flight, the
   organization's retention and the telemetry partitions that exist. Every
   point is then validated in Python and each accepted one is encoded at
   once into a spool in PostgreSQL's binary COPY format (kept in memory up
   to ``DBX_INGEST_SPOOL_MEMORY_BYTES``, then in a temporary file). Rejected
   points are listed up to ``DBX_INGEST_MAX_REJECTIONS`` and counted beyond.
   The NDJSON body is split into lines here in linear time; a line longer
   than ``DBX_INGEST_MAX_LINE_BYTES`` is rejected without being buffered.
2. Once every point is in, one short write transaction stages the spool
   chunk by chunk with binary COPY and moves each chunk into the partitioned
   table with ``ON CONFLICT DO NOTHING`` (duplicates counted, never stored
   twice). All accepted points land, or none.

Which months a point may fall in: a point older than the organization's
telemetry retention, or older than the oldest telemetry partition (months
the deployment does not keep), or later than the future-skew window, is the
client's problem: a per-point rejection. A point inside that range whose
month has no partition is the operator's: the batch fails with
``UNAVAILABLE``, a metric and a log line (``dbx-gateway maintain`` makes
the partitions).

Must not: write SQL (``gateway.data.telemetry``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import logging
import math
import struct
import tempfile
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson

from gateway.api.telemetry_points import (
    METRICS,
    BadLine,
    KeptMonths,
    Record,
    Rejection,
    point_validator,
)
from gateway.auth import Principal
from gateway.config import Settings
from gateway.data import telemetry as telemetry_data
from gateway.db.database import DbSession
from gateway.errors import NotFound, Unavailable

log = logging.getLogger("dbx.ingest")

INGEST_CHUNK = 20_000  # points staged and moved at a time


@dataclass
class IngestOutcome:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[Rejection] = field(default_factory=list)  # the first ones only
    rejected_count: int = 0  # all of them

    def as_json(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": [{"index": r.index, "reason": r.reason} for r in self.rejected],
            "rejectedCount": self.rejected_count,
        }


PG_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
COPY_TRAILER = struct.pack(">h", -1)
_FIELDS = 1 + len(METRICS)
_ROW_HEAD = struct.Struct(">hiq")  # field count; recorded_at: length 8, microseconds
_FLOAT = struct.Struct(">id")  # length 8, float8
_NULL = struct.pack(">i", -1)
_FULL_ROW = struct.Struct(">hiq" + "id" * len(METRICS))


class Spool:
    """Accepted points as binary COPY rows, cut into chunks of
    ``INGEST_CHUNK`` rows; in memory up to ``memory_bytes``, then in a
    temporary file. Also keeps the days (since 2000-01-01 UTC) the points
    fall on, for the partition check."""

    def __init__(self, memory_bytes: int) -> None:
        self._file = tempfile.SpooledTemporaryFile(max_size=memory_bytes)  # noqa: SIM115 - closed by close()
        self._buf = bytearray()
        self._in_buf = 0
        self._written = 0
        self._chunks: list[tuple[int, int]] = []  # (offset, length) in the file
        self.rows = 0
        self.days: set[int] = set()

    def add(self, rec: Record) -> None:
        d = rec[0] - PG_EPOCH
        us = (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds
        self.days.add(d.days)
        if None in rec:
            parts = [_ROW_HEAD.pack(_FIELDS, 8, us)]
            for v in rec[1:]:
                parts.append(_NULL if v is None else _FLOAT.pack(8, v))
            self._buf += b"".join(parts)
        else:
            _, a, b, c, e, f, g, h, k = rec
            self._buf += _FULL_ROW.pack(
                _FIELDS, 8, us, 8, a, 8, b, 8, c, 8, e, 8, f, 8, g, 8, h, 8, k
            )
        self.rows += 1
        self._in_buf += 1
        if self._in_buf >= INGEST_CHUNK:
            self._flush()

    def _flush(self) -> None:
        if self._in_buf:
            self._file.write(self._buf)
            self._chunks.append((self._written, len(self._buf)))
            self._written += len(self._buf)
            self._buf = bytearray()
            self._in_buf = 0

    def chunks(self) -> Iterator[bytes]:
        """Each chunk as one complete binary COPY stream."""
        self._flush()
        for offset, length in self._chunks:
            self._file.seek(offset)
            yield COPY_HEADER + self._file.read(length) + COPY_TRAILER

    def months(self) -> list[str]:
        return sorted({f"{PG_EPOCH + dt.timedelta(days=d):%Y-%m}" for d in self.days})

    def missing_months(self, kept: KeptMonths) -> list[str]:
        """Months with a day whose start and end both lie outside every
        partition (a day only partly covered is left to the database)."""
        out: set[str] = set()
        for d in self.days:
            start = PG_EPOCH + dt.timedelta(days=d)
            end = start + dt.timedelta(days=1, microseconds=-1)
            if not kept.covers(start) and not kept.covers(end):
                out.add(f"{start:%Y-%m}")
        return sorted(out)

    def close(self) -> None:
        self._file.close()


# -- NDJSON lines --------------------------------------------------------------

LINES_PER_BATCH = 256


async def ndjson_points(
    chunks: AsyncIterable[bytes], max_line_bytes: int
) -> AsyncIterator[list[tuple[int, Any]]]:
    """``(line index, decoded value or BadLine)`` for the lines each body
    chunk completes, in batches of at most ``LINES_PER_BATCH`` lines, in
    linear time: only the unfinished tail of a line is carried over, and a
    line past ``max_line_bytes`` is skipped to its end without being kept.
    Blank lines are skipped but keep their index."""
    too_long = BadLine(f"line is longer than {max_line_bytes} bytes")
    pending = bytearray()
    skipping = False  # inside a line already too long
    index = 0
    async for chunk in chunks:
        out: list[tuple[int, Any]] = []
        first = index
        start = 0
        find = chunk.find
        while (nl := find(b"\n", start)) >= 0:
            if index - first >= LINES_PER_BATCH:
                yield out  # the consumer lets the event loop run between batches
                out, first = [], index
            if skipping:
                out.append((index, too_long))
                skipping = False
            else:
                if pending:
                    pending += memoryview(chunk)[start:nl]
                    line: bytes | bytearray = pending
                else:
                    line = chunk[start:nl]
                if len(line) > max_line_bytes:
                    out.append((index, too_long))
                elif line.strip():
                    out.append((index, _decode_line(line)))
                if pending:
                    pending = bytearray()
            index += 1
            start = nl + 1
        rest = len(chunk) - start
        if rest and not skipping:
            if len(pending) + rest > max_line_bytes:
                skipping = True
                pending = bytearray()
            else:
                pending += memoryview(chunk)[start:]
        if out:
            yield out
    if skipping:
        yield [(index, too_long)]
    elif pending.strip():
        yield [(index, _decode_line(pending))]


def _decode_line(line: bytes | bytearray) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return BadLine("line is not valid JSON")


# -- ingest --------------------------------------------------------------------


def _is_missing_partition(exc: BaseException) -> bool:
    # 23514 with no constraint: the row matched no partition (a table's own
    # CHECK constraints always carry a name).
    return (
        isinstance(exc, asyncpg.exceptions.CheckViolationError)
        and exc.sqlstate == "23514"
        and getattr(exc, "constraint_name", None) is None
    )


def _missing_partition(
    months: list[str], flight_id: uuid.UUID, on_missing_partition: Callable[[], None] | None
) -> Unavailable:
    if on_missing_partition is not None:
        on_missing_partition()
    month_list = ", ".join(months[:24]) or "?"
    log.error(
        "telemetry partition missing", extra={"months": month_list, "flight_id": str(flight_id)}
    )
    return Unavailable(
        f"The telemetry partition for {month_list} is missing; nothing was stored."
        " This is a server-side problem: an operator must create the partition"
        " (dbx-gateway maintain)."
    )


async def _kept_months(
    session: DbSession, principal: Principal, flight_id: uuid.UUID
) -> KeptMonths:
    row = await session.read(telemetry_data.ingest_context, principal.org_id, flight_id)
    if row is None:
        # a replica may not have replayed a just-created flight yet
        row = await session.db.run(
            principal, "write", None, telemetry_data.ingest_context, principal.org_id, flight_id
        )
    if row is None:
        raise NotFound("Flight not found")
    return KeptMonths(
        retention_days=int(row["telemetry_retention_days"]),
        lowers=tuple(row["lowers"]),
        uppers=tuple(row["uppers"]),
    )


async def ingest(
    session: DbSession,
    principal: Principal,
    settings: Settings,
    flight_id: uuid.UUID,
    points: AsyncIterable[Iterable[tuple[int, Any]]] | Iterable[tuple[int, Any]],
    *,
    source: str,
    on_missing_partition: Callable[[], None] | None = None,
    max_rejections: int | None = None,
) -> IngestOutcome:
    """Validate and store ``(index, raw point)`` pairs for one flight:
    ``points`` is either those pairs or, streamed, batches of them. Only the
    first ``max_rejections`` rejections are listed (all: None); all are
    counted."""
    kept = await _kept_months(session, principal, flight_id)
    check = point_validator(dt.datetime.now(dt.UTC), settings.telemetry_future_skew_s, kept)
    limits = settings.limits
    out = IngestOutcome()
    spool = Spool(limits.ingest_spool_memory_bytes)
    listed = math.inf if max_rejections is None else max_rejections
    add = spool.add

    def take(batch: Iterable[tuple[int, Any]]) -> None:
        for index, raw in batch:
            if type(raw) is BadLine:
                reason = raw.reason
            else:
                rec = check(raw)
                if type(rec) is not str:
                    add(rec)  # type: ignore[arg-type]
                    continue
                reason = rec
            out.rejected_count += 1
            if len(out.rejected) < listed:
                out.rejected.append(Rejection(index, reason))

    try:
        if isinstance(points, AsyncIterable):
            async for batch in points:
                take(batch)
                await asyncio.sleep(0)  # a large body chunk does not hold the loop
        else:
            items = iter(points)
            while batch := list(itertools.islice(items, INGEST_CHUNK)):
                take(batch)
                await asyncio.sleep(0)  # a large batch does not hold the loop
        missing = spool.missing_months(kept)
        if missing:
            raise _missing_partition(missing, flight_id, on_missing_partition)
        await _store(session, principal, flight_id, spool, out, source, on_missing_partition)
    finally:
        spool.close()
    return out


async def _store(
    session: DbSession,
    principal: Principal,
    flight_id: uuid.UUID,
    spool: Spool,
    out: IngestOutcome,
    source: str,
    on_missing_partition: Callable[[], None] | None,
) -> None:
    """The write transaction: everything it needs is already in ``spool``."""
    inserted = 0
    try:
        async with session.write() as conn:
            flight = await telemetry_data.flight_for_ingest(conn, principal.org_id, flight_id)
            if flight is None:
                raise NotFound("Flight not found")
            if spool.rows:
                await telemetry_data.create_staging(conn)
                for i, data in enumerate(spool.chunks()):
                    # later chunks see earlier ones (same transaction), so a
                    # repeat across chunks is a conflict like any other
                    if i:
                        await telemetry_data.clear_staging(conn)
                    await telemetry_data.stage_binary(conn, data)
                    inserted += await telemetry_data.insert_staged(
                        conn, principal.org_id, flight_id, flight["aircraft_id"]
                    )
            out.accepted = inserted
            out.duplicates = spool.rows - inserted
            await telemetry_data.record_batch(
                conn,
                principal.org_id,
                flight_id,
                accepted=out.accepted,
                duplicates=out.duplicates,
                rejected=out.rejected_count,
                source=source,
                user_id=principal.subject,
            )
    except asyncpg.exceptions.CheckViolationError as exc:
        # a partition went missing after the check above (or covers only
        # part of a day): still the operator's fault
        if not _is_missing_partition(exc):
            raise
        raise _missing_partition(spool.months(), flight_id, on_missing_partition) from None
