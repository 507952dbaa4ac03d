"""Operator commands run as the schema owner: migrate, seed, maintain.

Must not: be used by the serving gateway (it connects as the owner, which
bypasses row-level security).
"""
