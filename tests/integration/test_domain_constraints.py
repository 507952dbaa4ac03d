"""The database itself refuses bad aviation data, whoever writes it: the
gateway role through PgBouncer in a tenant transaction here."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.integration.dbx_fixtures import TenantData, create_tenant, gateway_connect

INSERT_POINT = (
    "insert into dbx_aviation.flight_telemetry (flight_id, recorded_at, org_id, aircraft_id, "
    "altitude_m, airspeed_ms) values ($1, $2, $3, $4, $5, $6)"
)
INSERT_FLIGHT = (
    "insert into dbx_aviation.flights (org_id, aircraft_id, flight_number, origin, destination, "
    "departed_at, arrived_at, status) values ($1, $2, $3, $4, $5, $6, $7, $8) returning id"
)


@pytest.fixture(scope="module")
async def tenant(owner_dsn: str) -> TenantData:
    conn = await asyncpg.connect(owner_dsn)
    try:
        return await create_tenant(conn, aircraft=1, points=3)
    finally:
        await conn.close()


@pytest.fixture
async def tenant_tx(
    gateway_dsns: dict[str, str], tenant: TenantData
) -> AsyncIterator[asyncpg.Connection]:
    """A gateway-role connection through transaction-mode PgBouncer, inside a
    tenant transaction that is rolled back at the end."""
    conn = await gateway_connect(gateway_dsns["gateway_primary_tx"])
    tx = conn.transaction()
    await tx.start()
    await conn.execute("select set_config('dbx.org_id', $1, true)", str(tenant.org_id))
    try:
        yield conn
    finally:
        await tx.rollback()
        await conn.close()


def recent() -> dt.datetime:
    return dt.datetime.now(dt.UTC) - dt.timedelta(minutes=30)


async def point(
    conn: asyncpg.Connection, t: TenantData, at: dt.datetime, altitude: float, airspeed: float
) -> None:
    await conn.execute(INSERT_POINT, t.flights[0], at, t.org_id, t.aircraft[0], altitude, airspeed)


async def test_altitude_above_20000_m_is_refused(
    tenant_tx: asyncpg.Connection, tenant: TenantData
) -> None:
    with pytest.raises(asyncpg.CheckViolationError) as err:
        await point(tenant_tx, tenant, recent(), 25000, 100)
    assert err.value.sqlstate == "23514"
    assert "altitude_m" in (err.value.constraint_name or "")


async def test_negative_airspeed_is_refused(
    tenant_tx: asyncpg.Connection, tenant: TenantData
) -> None:
    with pytest.raises(asyncpg.CheckViolationError) as err:
        await point(tenant_tx, tenant, recent(), 1000, -1)
    assert "airspeed_ms" in (err.value.constraint_name or "")


async def test_valid_point_is_accepted(tenant_tx: asyncpg.Connection, tenant: TenantData) -> None:
    await point(tenant_tx, tenant, recent(), 19999, 199)


@pytest.mark.parametrize("code", ["EGL", "egll", "EG1L", "EGLLX", ""])
async def test_bad_icao_code_is_refused(
    code: str, tenant_tx: asyncpg.Connection, tenant: TenantData
) -> None:
    with pytest.raises(asyncpg.CheckViolationError):
        await tenant_tx.fetchval(
            INSERT_FLIGHT,
            tenant.org_id,
            tenant.aircraft[0],
            "TS1",
            code,
            "LFPG",
            recent(),
            None,
            "scheduled",
        )


async def test_arrival_before_departure_is_refused(
    tenant_tx: asyncpg.Connection, tenant: TenantData
) -> None:
    departed = recent()
    with pytest.raises(asyncpg.CheckViolationError) as err:
        await tenant_tx.fetchval(
            INSERT_FLIGHT,
            tenant.org_id,
            tenant.aircraft[0],
            "TS2",
            "EGLL",
            "LFPG",
            departed,
            departed - dt.timedelta(minutes=1),
            "completed",
        )
    assert err.value.constraint_name == "flights_arrival_after_departure"


async def test_duplicate_telemetry_point_hits_the_primary_key(
    tenant_tx: asyncpg.Connection, tenant: TenantData
) -> None:
    at = recent()
    await point(tenant_tx, tenant, at, 1000, 100)
    with pytest.raises(asyncpg.UniqueViolationError) as err:
        await point(tenant_tx, tenant, at, 1200, 110)
    assert (err.value.constraint_name or "").endswith("_pkey")


async def test_point_in_a_month_without_partition_is_a_clear_error_and_lands_nowhere(
    tenant_tx: asyncpg.Connection, tenant: TenantData, owner_conn: asyncpg.Connection
) -> None:
    far = dt.datetime(2199, 1, 15, tzinfo=dt.UTC)
    assert (
        await owner_conn.fetchval(
            "select count(*) from dbx_aviation.telemetry_partitions() where upper_bound > $1", far
        )
        == 0
    )
    with pytest.raises(asyncpg.PostgresError) as err:
        await point(tenant_tx, tenant, far, 1000, 100)
    assert err.value.sqlstate == "23514"
    assert "no partition" in str(err.value)
    # no default partition exists that could have swallowed it
    assert (
        await owner_conn.fetchval(
            "select partdefid from pg_partitioned_table "
            "where partrelid = 'dbx_aviation.flight_telemetry'::regclass"
        )
        == 0
    )
    assert (
        await owner_conn.fetchval(
            "select count(*) from dbx_aviation.flight_telemetry where flight_id = $1 and "
            "recorded_at >= $2",
            tenant.flights[0],
            far,
        )
        == 0
    )


async def test_a_point_for_another_orgs_flight_is_refused(
    tenant_tx: asyncpg.Connection, tenant: TenantData, owner_conn: asyncpg.Connection
) -> None:
    other = await create_tenant(owner_conn, aircraft=1, points=1)
    with pytest.raises(asyncpg.InsufficientPrivilegeError):  # RLS WITH CHECK, 42501
        await tenant_tx.execute(
            INSERT_POINT, other.flights[0], recent(), other.org_id, other.aircraft[0], 1000, 100
        )
