"""SQL, one module per domain: plain async functions taking a
``TenantConnection`` and typed arguments, returning rows. Every statement is
parameterised and filters by ``org_id`` explicitly (row-level security is the
second wall, not the only one).

Must not: choose a database node, or know about HTTP or GraphQL.
"""
