"""schema/schema.graphql is the checked-in output of `dbx-gateway print-schema`."""

from __future__ import annotations

from pathlib import Path

from gateway.api.schema import print_sdl

SDL = Path(__file__).resolve().parents[2] / "schema" / "schema.graphql"


def test_checked_in_sdl_matches_the_schema() -> None:
    assert SDL.read_text() == print_sdl(), "run: dbx-gateway print-schema > schema/schema.graphql"


def test_contract_root_fields_exist() -> None:
    sdl = print_sdl()
    for name in (
        "viewer: Viewer!",
        "fleet(",
        "flights(",
        "analytics: Analytics!",
        "createAircraft(",
        "updateAircraft(",
        "retireAircraft(",
        "startFlight(",
        "completeFlight(",
        "ingestTelemetry(",
        "recordMaintenance(",
    ):
        assert name in sdl, name
