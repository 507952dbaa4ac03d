"""``dbx-gateway``: thin commands, each calling one function elsewhere.

Must not: hold logic.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from gateway.config import ConfigError, Settings


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as exc:
        sys.exit(f"configuration error: {exc}")


def cmd_migrate(args: argparse.Namespace) -> int:
    from gateway.admin.migrate import MigrationError, migrate

    try:
        applied = asyncio.run(migrate(_settings().owner_dsn))
    except MigrationError as exc:
        print(f"migrate: {exc}", file=sys.stderr)
        return 1
    print("migrate: up to date" if not applied else "migrate: applied " + ", ".join(applied))
    return 0


def cmd_seed(args: argparse.Namespace) -> int:
    from gateway.admin.seed import SeedSize, seed

    size = SeedSize(
        orgs=args.orgs, aircraft=args.aircraft, flights=args.flights, points=args.points
    )
    report = asyncio.run(seed(_settings().owner_dsn, size, if_empty=args.if_empty))
    print(report)
    return 0


def cmd_maintain(args: argparse.Namespace) -> int:
    from gateway.admin.maintain import maintain

    print(asyncio.run(maintain(_settings().owner_dsn, months_ahead=args.months_ahead)))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from gateway.serving import serve

    _settings()  # fail fast with a clear message
    serve(host=args.host, port=args.port, workers=args.workers)
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from gateway.admin.orgs import resolve_org
    from gateway.auth import mint_token

    settings = _settings()
    org_id = asyncio.run(resolve_org(settings.owner_dsn, args.org))
    if org_id is None:
        print(f"token: no organization {args.org!r}", file=sys.stderr)
        return 1
    sub = args.sub or f"dev-{args.role}"
    print(mint_token(settings, org_id=org_id, role=args.role, subject=sub, ttl_s=args.ttl))
    return 0


def cmd_print_schema(args: argparse.Namespace) -> int:
    from gateway.api.schema import print_sdl

    sys.stdout.write(print_sdl())
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dbx-gateway", description="DBX Gateway")
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("migrate", help="apply pending schema migrations").set_defaults(fn=cmd_migrate)

    s = sub.add_parser("seed", help="load deterministic demo data")
    s.add_argument("--orgs", type=int, default=3)
    s.add_argument("--aircraft", type=int, default=8, help="aircraft per organization")
    s.add_argument("--flights", type=int, default=6, help="flights per aircraft")
    s.add_argument("--points", type=int, default=120, help="telemetry points per flight")
    s.add_argument("--if-empty", action="store_true", help="do nothing when data exists")
    s.set_defaults(fn=cmd_seed)

    s = sub.add_parser("serve", help="serve the gateway")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--workers", type=int, default=1)
    s.set_defaults(fn=cmd_serve)

    s = sub.add_parser("token", help="mint a signed dev JWT")
    s.add_argument("--org", required=True, help="organization slug, name or id")
    s.add_argument("--role", required=True, choices=["viewer", "analyst", "operator", "admin"])
    s.add_argument("--sub")
    s.add_argument("--ttl", type=int, default=12 * 3600)
    s.set_defaults(fn=cmd_token)

    s = sub.add_parser("maintain", help="partitions ahead, views, retention")
    s.add_argument("--months-ahead", type=int, default=3)
    s.set_defaults(fn=cmd_maintain)

    sub.add_parser("print-schema", help="print the GraphQL SDL").set_defaults(fn=cmd_print_schema)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.fn(args))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
