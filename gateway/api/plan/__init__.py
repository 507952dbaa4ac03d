"""Planned reads: a validated query operation whose every field lies in the
plannable subset (aircraft, fleet, flight, flights and their scalar,
connection and related fields; or ``analytics`` with its ``fleetDailyStats``,
``fleetStats``, ``telemetryStats`` and ``telemetrySeries``) is answered by one
SQL statement that builds the response JSON in PostgreSQL. ``compile`` turns
a selection into a plan tree, ``sql`` binds arguments and writes the
statement, ``run`` caches plans and executes them. Everything else goes to
the resolvers.

Must not: open connections (``gateway.db``) or hold SQL pieces of its own
domain tables (``gateway.data.planned``).
"""

from __future__ import annotations

from gateway.api.plan.run import Planner

__all__ = ["Planner"]
