"""The query mix: for each query its GraphQL document for DBX and for
PostGraphile v5 (names as its Amber preset generates them for our tables), and
the SQL the raw asyncpg column runs; plus per-request argument generators, so
every request of a run asks something different and no cache can answer it.

| query | what |
| --- | --- |
| Q1 | 50 aircraft from a random fleet position, 5 latest flights each (5 fields) |
| Q2 | one random flight by id with its aircraft's registration |
| Q3 | ``analytics.fleetStats(since)``: the fleet statistics SQL function (database-bound) |
| Q4 | ``analytics.fleetDailyStats`` over a random window (DBX vs its raw SQL) |
| Q5 | ``analytics.telemetryStats`` of a random aircraft (DBX vs its raw SQL) |
| Q6 | ``analytics.telemetryStats`` of the fleet, random 7-day window (DBX vs raw; DB-bound) |

Q3's function is ``dbx_analytics.fleet_stats`` (migration 0009); PostGraphile
and the raw column call it through ``dbx_bench.fleet_stats(since)``, a wrapper
for the transaction's org that inlines to the same statement.

A query a server cannot answer has no document for it (its column reads n/a).

Must not: talk to a server or database (``load.py``, ``raw.py`` and
``cursors`` collection in ``run.py`` do).
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.dataset import Dataset
from gateway.data.analytics import daily_stats_query
from gateway.data.analytics_telemetry import TelemetryScope, stats_query

PAGE = 50
ZERO = uuid.UUID(int=0)

DBX_DOCS = {
    "Q1": "query Q1($after: String) { fleet(first: 50, after: $after) { edges { node {"
    " id registration flights(first: 5) { edges { node {"
    " id flightNumber origin destination departedAt } } } } } } }",
    "Q2": "query Q2($id: ID!) { flight(id: $id) { id flightNumber aircraft { registration } } }",
    "Q3": "query Q3($since: DateTime!) { analytics { fleetStats(since: $since) {"
    " aircraftId registration flights completed flightHours lastDepartedAt } } }",
    "Q4": "query Q4($from: Date!, $to: Date!) { analytics { fleetDailyStats(from: $from, to: $to)"
    " { day flights flightHours activeAircraft maxAltitudeM avgAirspeedMs exceedances } } }",
    "Q5": "query Q5($aircraftId: ID!, $from: DateTime!, $to: DateTime!) { analytics {"
    " telemetryStats(metric: ALTITUDE_M, aircraftId: $aircraftId, from: $from, to: $to)"
    " { count min max avg stddev p50 p95 p99 } } }",
    "Q6": "query Q6($from: DateTime!, $to: DateTime!) { analytics {"
    " telemetryStats(metric: ALTITUDE_M, from: $from, to: $to)"
    " { count min max avg stddev p50 p95 p99 } } }",
}

PGL_DOCS = {
    "Q1": "query Q1($after: Cursor) { allAircrafts(first: 50, after: $after,"
    " orderBy: [REGISTRATION_ASC]) { edges { node { rowId registration"
    " flightsByOrgIdAndAircraftId(first: 5, orderBy: [DEPARTED_AT_DESC, ROW_ID_DESC])"
    " { edges { node { rowId flightNumber origin destination departedAt } } } } } } }",
    "Q2": "query Q2($id: UUID!) { flightByRowId(rowId: $id) { rowId flightNumber"
    " aircraftByOrgIdAndAircraftId { registration } } }",
    "Q3": "query Q3($since: Datetime!) { dbxBenchFleetStats(since: $since) { nodes {"
    " aircraftId registration flights completed flightHours lastDepartedAt } } }",
}

# Walk the fleet once per server to learn its cursors (they are opaque).
DBX_WALK = (
    "query W($after: String) { fleet(first: 50, after: $after) { edges { cursor }"
    " pageInfo { hasNextPage endCursor } } }"
)
PGL_WALK = (
    "query W($after: Cursor) { allAircrafts(first: 50, after: $after,"
    " orderBy: [REGISTRATION_ASC]) { edges { cursor } pageInfo { hasNextPage endCursor } } }"
)

RAW_Q1 = """
select a.id, a.registration, f.id as flight_id, f.flight_number, f.origin, f.destination,
       f.departed_at
from (select id, org_id, registration from dbx_aviation.aircraft
      where org_id = $1 and (registration, id) > ($2, $3)
      order by registration, id limit 50) a
left join lateral (
      select id, flight_number, origin, destination, departed_at from dbx_aviation.flights f
      where f.org_id = a.org_id and f.aircraft_id = a.id
      order by departed_at desc, id desc limit 5) f on true
order by a.registration, a.id, f.departed_at desc, f.id desc
"""
RAW_Q2 = """
select f.id, f.flight_number, a.registration
from dbx_aviation.flights f
join dbx_aviation.aircraft a on a.org_id = f.org_id and a.id = f.aircraft_id
where f.org_id = $1 and f.id = $2
"""
RAW_Q3 = (
    "select aircraft_id, registration, flights, completed, flight_hours, last_departed_at"
    " from dbx_bench.fleet_stats($1)"
)


@dataclass
class Mix:
    """Argument generators over one data set; cursors are filled in by run.py."""

    ds: Dataset
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    dbx_cursors: list[str | None] = field(default_factory=list)
    pgl_cursors: list[str | None] = field(default_factory=list)

    # -- shared random choices -------------------------------------------------
    def _page_start(self) -> int:
        """Index of the first aircraft of a full page (0 = no cursor)."""
        return self.rng.randrange(0, max(1, len(self.ds.registrations) - PAGE + 1))

    def _since(self) -> datetime:
        span = (self.ds.last_departure - self.ds.first_departure).total_seconds()
        return self.ds.first_departure + timedelta(seconds=self.rng.uniform(0, span * 0.9))

    def _days(self) -> tuple[str, str]:
        start = self._since().date()
        end = start + timedelta(days=self.rng.randint(7, 60))
        return start.isoformat(), end.isoformat()

    def _window(self) -> tuple[datetime, datetime]:
        # the whole seeded window, so each call reads all of an aircraft's points
        return self.ds.first_departure - timedelta(days=1), datetime.now(UTC)

    def _fleet_window(self) -> tuple[datetime, datetime]:
        # 7 days ending at a random point of the seeded departures (+1 day):
        # ~100k points of the default set, some 90 ms of SQL on an idle replica
        span = (self.ds.last_departure - self.ds.first_departure).total_seconds()
        end = self.ds.first_departure + timedelta(days=1, seconds=self.rng.uniform(0, span))
        return end - timedelta(days=7), end

    # -- GraphQL variables -----------------------------------------------------
    def variables(self, server: str, query: str) -> dict[str, Any]:
        cursors = self.dbx_cursors if server == "dbx" else self.pgl_cursors
        if query == "Q1":
            i = self._page_start()
            return {"after": cursors[i] if cursors else None}
        if query == "Q2":
            return {"id": str(self.rng.choice(self.ds.flight_ids))}
        if query == "Q3":
            return {"since": self._since().isoformat()}
        if query == "Q4":
            start, end = self._days()
            return {"from": start, "to": end}
        if query == "Q5":
            start_t, end_t = self._window()
            return {
                "aircraftId": str(self.rng.choice(self.ds.registrations)[1]),
                "from": start_t.isoformat(),
                "to": end_t.isoformat(),
            }
        if query == "Q6":
            start_t, end_t = self._fleet_window()
            return {"from": start_t.isoformat(), "to": end_t.isoformat()}
        raise ValueError(query)

    def bodies(self, server: str, query: str, n: int) -> list[str]:
        doc = (DBX_DOCS if server == "dbx" else PGL_DOCS)[query]
        return [
            json.dumps({"query": doc, "variables": self.variables(server, query)}) for _ in range(n)
        ]

    # -- raw SQL ---------------------------------------------------------------
    def raw(self, query: str) -> Callable[[], tuple[str, tuple[Any, ...]]]:
        """A generator of (sql, args) for one query, or KeyError when none."""
        org = self.ds.org_id

        def q1() -> tuple[str, tuple[Any, ...]]:
            i = self._page_start()
            key = self.ds.registrations[i - 1] if i > 0 else ("", ZERO)
            return RAW_Q1, (org, key[0], key[1])

        def q2() -> tuple[str, tuple[Any, ...]]:
            return RAW_Q2, (org, self.rng.choice(self.ds.flight_ids))

        def q3() -> tuple[str, tuple[Any, ...]]:
            return RAW_Q3, (self._since(),)

        def q4() -> tuple[str, tuple[Any, ...]]:
            start, end = self._days()
            q = daily_stats_query(
                org, datetime.fromisoformat(start).date(), datetime.fromisoformat(end).date()
            )
            return q.sql, tuple(q.args)

        def q5() -> tuple[str, tuple[Any, ...]]:
            start_t, end_t = self._window()
            aircraft = self.rng.choice(self.ds.registrations)[1]
            q = stats_query(TelemetryScope(org, None, aircraft, start_t, end_t), "ALTITUDE_M")
            return q.sql, tuple(q.args)

        def q6() -> tuple[str, tuple[Any, ...]]:
            start_t, end_t = self._fleet_window()
            q = stats_query(TelemetryScope(org, None, None, start_t, end_t), "ALTITUDE_M")
            return q.sql, tuple(q.args)

        return {"Q1": q1, "Q2": q2, "Q3": q3, "Q4": q4, "Q5": q5, "Q6": q6}[query]


QUERIES = ("Q1", "Q2", "Q3", "Q4", "Q5", "Q6")
TITLES = {
    "Q1": "Q1: 50 aircraft, 5 latest flights each",
    "Q2": "Q2: one flight by id + aircraft registration",
    "Q3": "Q3: fleet statistics SQL function",
    "Q4": "Q4: analytics.fleetDailyStats",
    "Q5": "Q5: analytics.telemetryStats (one aircraft)",
    "Q6": "Q6: analytics.telemetryStats (whole fleet, 7 days; database-bound)",
}
