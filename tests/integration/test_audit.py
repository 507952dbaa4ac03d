"""Audit rows record who (``dbx.user_id``), which org, which table, the
operation, and the old and new values, for changes made by the gateway role
through PgBouncer in a tenant transaction."""

from __future__ import annotations

import uuid

import asyncpg

from tests.integration.dbx_fixtures import gateway_connect
from tests.support.orgs import OrgFactory


async def test_insert_and_update_of_aircraft_are_audited_with_user_org_and_values(
    gateway_dsns: dict[str, str], make_org: OrgFactory, owner_conn: asyncpg.Connection
) -> None:
    org = await make_org()
    user = f"auditor-{uuid.uuid4().hex[:8]}"
    conn = await gateway_connect(gateway_dsns["gateway_primary_tx"])
    try:
        async with conn.transaction():
            await conn.execute(
                "select set_config('dbx.org_id', $1, true), set_config('dbx.user_id', $2, true)",
                str(org),
                user,
            )
            aircraft = await conn.fetchval(
                "insert into dbx_aviation.aircraft (org_id, registration, manufacturer, model) "
                "values ($1, 'G-AUDT', 'Airbus', 'A320neo') returning id",
                org,
            )
            await conn.execute(
                "update dbx_aviation.aircraft set status = 'maintenance', version = version + 1 "
                "where id = $1",
                aircraft,
            )
    finally:
        await conn.close()

    rows = await owner_conn.fetch(
        "select org_id, user_id, db_role, table_name, operation, row_id, old_values, new_values, "
        "txid from dbx_audit.audit_log where row_id = $1 order by id",
        aircraft,
    )
    assert [r["operation"] for r in rows] == ["INSERT", "UPDATE"]
    ins, upd = rows
    for r in rows:
        assert r["org_id"] == org
        assert r["user_id"] == user
        assert r["table_name"] == "aircraft"
        assert r["db_role"] == "dbx_gateway"  # the login role, not the trigger's owner
    assert ins["old_values"] is None
    new = asyncpg_json(ins["new_values"])
    assert new["registration"] == "G-AUDT" and new["status"] == "active"
    old, after = asyncpg_json(upd["old_values"]), asyncpg_json(upd["new_values"])
    assert (old["status"], after["status"]) == ("active", "maintenance")
    assert (old["version"], after["version"]) == (1, 2)
    assert ins["txid"] == upd["txid"]  # one tenant transaction


def asyncpg_json(value: object) -> dict[str, object]:
    import json

    assert isinstance(value, str)
    loaded = json.loads(value)
    assert isinstance(loaded, dict)
    return loaded
