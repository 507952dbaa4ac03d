"""Per-request DataLoaders: every nested field asks a loader, and a loader
batch turns many keys into one ``gateway.data`` call in its own short read
transaction, so a nested query costs a fixed number of SQL statements
whatever its page sizes.

Page loaders take keys ``(parent_id, *page_args)``; keys are grouped by
their page arguments and each group is one statement (in practice one
group per field in a query).

Built in the context getter for each operation and never shared, so one
tenant's cache can never answer another's.

Must not: write SQL (``gateway.data``) or open connections (``DbSession``).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any

import asyncpg
from aiodataloader import DataLoader

from gateway.data import aircraft as aircraft_data
from gateway.data import flights as flight_data
from gateway.data import maintenance as maintenance_data
from gateway.data import telemetry as telemetry_data
from gateway.dataloader import SharedDataLoader
from gateway.db.database import DbSession

Rows = list[asyncpg.Record]


def _by(rows: Sequence[asyncpg.Record], column: str) -> dict[Any, Rows]:
    out: dict[Any, Rows] = defaultdict(list)
    for r in rows:
        out[r[column]].append(r)
    return out


async def _grouped(
    keys: Sequence[tuple[Any, ...]],
    load_group: Callable[[list[uuid.UUID], tuple[Any, ...]], Awaitable[dict[Any, Rows]]],
) -> list[Rows]:
    """Keys ``(id, *args)``: one ``load_group(ids, args)`` per distinct args."""
    groups: dict[tuple[Any, ...], list[uuid.UUID]] = defaultdict(list)
    for k in keys:
        groups[k[1:]].append(k[0])
    items = list(groups.items())
    results = await asyncio.gather(*(load_group(ids, args) for args, ids in items))
    found = {args: res for (args, _), res in zip(items, results, strict=True)}
    return [found[k[1:]].get(k[0], []) for k in keys]


MakeLoader = Callable[..., Any]  # (name, batch_fn) -> DataLoader


def _plain_loader(
    name: str, fn: Callable[[list[Any]], Awaitable[list[Any]]]
) -> DataLoader[Any, Any]:
    return SharedDataLoader(fn)  # type: ignore[arg-type]  # any awaitable will do


class Loaders:
    """``make`` builds each loader (``Observability.dataloader`` traces them)."""

    def __init__(self, db: DbSession, org_id: uuid.UUID, make: MakeLoader | None = None) -> None:
        self._db = db
        self._org = org_id
        mk = make or _plain_loader
        self.aircraft: DataLoader[Any, Any] = mk("aircraft", self._aircraft)
        self.flight: DataLoader[Any, Any] = mk("flight", self._flight)
        self.aircraft_flights: DataLoader[Any, Any] = mk("aircraft_flights", self._aircraft_flights)
        self.aircraft_flight_count: DataLoader[Any, Any] = mk(
            "aircraft_flight_count", self._aircraft_flight_count
        )
        self.maintenance: DataLoader[Any, Any] = mk("maintenance", self._maintenance)
        self.telemetry: DataLoader[Any, Any] = mk("telemetry", self._telemetry)
        self.telemetry_summary: DataLoader[Any, Any] = mk(
            "telemetry_summary", self._telemetry_summary
        )
        self.telemetry_count: DataLoader[Any, Any] = mk("telemetry_count", self._telemetry_count)

    def prime_aircraft(self, rows: Sequence[asyncpg.Record]) -> None:
        for r in rows:
            self.aircraft.prime(r["id"], r)

    def prime_flights(self, rows: Sequence[asyncpg.Record]) -> None:
        for r in rows:
            self.flight.prime(r["id"], r)

    async def _aircraft(self, keys: list[uuid.UUID]) -> list[asyncpg.Record | None]:
        rows = await self._db.read(aircraft_data.by_ids, self._org, keys)
        found = {r["id"]: r for r in rows}
        return [found.get(k) for k in keys]

    async def _flight(self, keys: list[uuid.UUID]) -> list[asyncpg.Record | None]:
        rows = await self._db.read(flight_data.by_ids, self._org, keys)
        found = {r["id"]: r for r in rows}
        return [found.get(k) for k in keys]

    async def _aircraft_flights(self, keys: list[tuple[Any, ...]]) -> list[Rows]:
        async def load(ids: list[uuid.UUID], args: tuple[Any, ...]) -> dict[Any, Rows]:
            limit, after = args
            rows = await self._db.read(
                flight_data.pages_by_aircraft, self._org, ids, limit=limit, after=after
            )
            self.prime_flights(rows)
            return _by(rows, "aircraft_id")

        return await _grouped(keys, load)

    async def _aircraft_flight_count(self, keys: list[uuid.UUID]) -> list[int]:
        counts = await self._db.read(flight_data.counts_by_aircraft, self._org, keys)
        return [counts.get(k, 0) for k in keys]

    async def _maintenance(self, keys: list[tuple[Any, ...]]) -> list[Rows]:
        async def load(ids: list[uuid.UUID], args: tuple[Any, ...]) -> dict[Any, Rows]:
            (limit,) = args
            rows = await self._db.read(
                maintenance_data.latest_by_aircraft, self._org, ids, limit=limit
            )
            return _by(rows, "aircraft_id")

        return await _grouped(keys, load)

    async def _telemetry(self, keys: list[tuple[Any, ...]]) -> list[Rows]:
        async def load(ids: list[uuid.UUID], args: tuple[Any, ...]) -> dict[Any, Rows]:
            limit, after, time_from, time_to = args
            rows = await self._db.read(
                telemetry_data.pages_by_flight,
                self._org,
                ids,
                limit=limit,
                after=after,
                time_from=time_from,
                time_to=time_to,
            )
            return _by(rows, "flight_id")

        return await _grouped(keys, load)

    async def _telemetry_count(self, keys: list[tuple[Any, ...]]) -> list[int]:
        groups: dict[tuple[Any, ...], list[uuid.UUID]] = defaultdict(list)
        for k in keys:
            groups[k[1:]].append(k[0])
        items = list(groups.items())
        results = await asyncio.gather(
            *(
                self._db.read(
                    telemetry_data.counts_by_flight,
                    self._org,
                    ids,
                    time_from=args[0],
                    time_to=args[1],
                )
                for args, ids in items
            )
        )
        found = {args: res for (args, _), res in zip(items, results, strict=True)}
        return [found[k[1:]].get(k[0], 0) for k in keys]

    async def _telemetry_summary(self, keys: list[uuid.UUID]) -> list[asyncpg.Record | None]:
        rows = await self._db.read(telemetry_data.summaries, self._org, keys)
        found = {r["flight_id"]: r for r in rows}
        return [found.get(k) for k in keys]


def page_key(parent: uuid.UUID, *args: Hashable) -> tuple[Any, ...]:
    return (parent, *args)
