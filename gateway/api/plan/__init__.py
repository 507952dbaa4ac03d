"""The planner: a validated query operation whose every field declares a
plan (``fields``: aircraft, fleet, flight, flights and their scalar,
connection and related fields; ``analytics`` with its ``fleetDailyStats``,
``fleetStats``, ``telemetryStats`` and ``telemetrySeries``) is answered by
one SQL statement that builds the response JSON in PostgreSQL. ``compile``
walks the schema from the selection to a plan tree, ``bind`` binds the
request's arguments, ``emit`` nests the data layer's pieces into the
statement, ``run`` caches plans and executes them. Everything else goes to
the resolvers.

Must not: open connections (``gateway.db``), write SQL text (its pieces are
``gateway.data.planned*``), or keep a list of fields or types of its own.
"""

from __future__ import annotations

from gateway.api.plan.run import Planner

__all__ = ["Planner"]
