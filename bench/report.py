"""The benchmark's Markdown report: machine, settings, the read-path table
with ratios, the per-worker CPU split and the ingest rates.

Must not: measure anything; it only formats what ``run.py`` collected.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.cpu import COMPONENTS
from bench.ingest import IngestRate
from bench.load import Measurement
from bench.queries import TITLES

SERVERS = ("dbx", "postgraphile", "raw", "floor")


@dataclass
class Results:
    title: str
    command: str
    machine: list[str]
    settings: list[str]
    cells: dict[str, dict[str, Measurement | str]] = field(default_factory=dict)
    ingest: list[IngestRate] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def put(self, query: str, server: str, value: Measurement | str) -> None:
        self.cells.setdefault(query, {})[server] = value


def _ratio(a: Measurement | str | None, b: Measurement | str | None) -> str:
    if isinstance(a, Measurement) and isinstance(b, Measurement) and b.rate > 0:
        return f"{a.rate / b.rate:.2f}x"
    return "n/a"


def _cell(v: Measurement | str | None, unit: str) -> str:
    if v is None:
        return "not run"
    if isinstance(v, str):
        return v
    return v.cell(unit)


# issue 7's targets: (query, against, lowest DBX rate / other rate)
TARGETS = (
    ("Q1", "postgraphile", 1.5),
    ("Q2", "postgraphile", 1.0),
    ("Q3", "raw", 1 / 1.1),
    ("Q4", "raw", 1 / 1.1),
    ("Q5", "raw", 1 / 1.1),
    ("Q6", "raw", 1 / 1.1),
)


def _targets(r: Results) -> list[str]:
    out = []
    for q, other, lowest in TARGETS:
        row = r.cells.get(q, {})
        dbx, them = row.get("dbx"), row.get(other)
        if not (isinstance(dbx, Measurement) and isinstance(them, Measurement) and them.rate):
            continue
        ratio = dbx.rate / them.rate
        verdict = "met" if ratio >= lowest and not dbx.errors else "not met"
        out.append(f"- {q}: DBX / {other} = {ratio:.2f}x, target >= {lowest:.2f}x: **{verdict}**")
    return out


def _split(m: Measurement | str | None, seconds: float) -> str:
    if not isinstance(m, Measurement) or not m.cpu_split:
        return "n/a"
    total = sum(m.cpu_split)
    if total <= 0:
        return "no CPU used"
    shares = "/".join(f"{100 * c / total:.0f}" for c in m.cpu_split)
    return f"{shares} % of {total / seconds:.2f} cores"


def _busy(m: Measurement | str | None) -> str:
    if not isinstance(m, Measurement) or m.machine_busy is None:
        return "n/a"
    return f"{100 * m.machine_busy:.0f} %"


def _cpu_table(r: Results, labels: dict[str, str]) -> list[str]:
    rows = []
    for q, row in r.cells.items():
        for server in SERVERS:
            m = row.get(server)
            if not isinstance(m, Measurement) or not m.cpu_us:
                continue
            cells = " | ".join(f"{m.cpu_us.get(c, 0.0):,.0f}" for c in COMPONENTS)
            total = sum(m.cpu_us.values())
            rows.append(f"| {q} | {labels[server]} | {cells} | {total:,.0f} |")
    if not rows:
        return []
    return [
        "",
        "CPU time per answered request (µs), by component, during the measured runs."
        " *server*: the server's worker processes (none for raw asyncpg); *client*: wrk,"
        " or for raw asyncpg the benchmark process running the 32 tasks; *PostgreSQL*: all"
        " nodes with their background processes (WAL replay included); *other*: the rest"
        " of the machine's busy time, including processes that came and went during the"
        " run, such as PostgreSQL's parallel query workers. With 2 cores, 2,000,000 / total is"
        " about the rate the machine allows:",
        "",
        f"| query | measured | {' | '.join(COMPONENTS)} | total |",
        "| --- | --- |" + " --- |" * (len(COMPONENTS) + 1),
        *rows,
    ]


def render(r: Results, *, labels: dict[str, str], seconds: float) -> str:
    lines = [f"# {r.title}", "", f"Command: `{r.command}`", "", "## Machine", "", *r.machine]
    lines += ["", "## Settings", "", *r.settings, "", "## Read path", ""]
    lines.append(
        f"| query | {labels['dbx']} | {labels['postgraphile']} | {labels['raw']}"
        f" | {labels['floor']} | DBX / PostGraphile | DBX / raw | floor / raw | DBX / floor |"
    )
    lines.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for q, row in r.cells.items():
        dbx, pgl, raw, floor = (row.get(s) for s in SERVERS)
        lines.append(
            f"| {TITLES[q]} | {_cell(dbx, 'req/s')} | {_cell(pgl, 'req/s')}"
            f" | {_cell(raw, 'ops/s')} | {_cell(floor, 'req/s')} | {_ratio(dbx, pgl)}"
            f" | {_ratio(dbx, raw)} | {_ratio(floor, raw)} | {_ratio(dbx, floor)} |"
        )
    targets = _targets(r)
    if targets:
        lines += ["", "Targets of issue 7 (errors count as a miss):", "", *targets]
    lines += [
        "",
        "CPU time of each worker process during the measured run (share per worker,"
        " and cores used on average), and how busy the whole machine was meanwhile"
        " (the load generator, PostgreSQL, PgBouncer and anything else running; near 100 %"
        " is expected while wrk saturates the machine):",
        "",
        "| query | DBX workers | machine busy | PostGraphile workers | machine busy |",
        "| --- | --- | --- | --- | --- |",
    ]
    for q, row in r.cells.items():
        dbx, pgl = row.get("dbx"), row.get("postgraphile")
        lines.append(
            f"| {q} | {_split(dbx, seconds)} | {_busy(dbx)}"
            f" | {_split(pgl, seconds)} | {_busy(pgl)} |"
        )
    lines += _cpu_table(r, labels)
    if r.ingest:
        copy_rate = r.ingest[0].rate
        lines += [
            "",
            "## Telemetry ingest",
            "",
            "| path | points | seconds | points/s | vs COPY |",
            "| --- | --- | --- | --- | --- |",
        ]
        for i in r.ingest:
            rel = f"{i.rate / copy_rate:.0%}" if copy_rate > 0 and i.accepted else "n/a"
            note = f" ({i.note})" if i.note else ""
            lines.append(
                f"| {i.path}{note} | {i.accepted:,} of {i.points:,} | {i.seconds:.2f}"
                f" | {i.rate:,.0f} | {rel} |"
            )
    if r.notes:
        lines += ["", "## Notes", "", *(f"- {n}" for n in r.notes)]
    return "\n".join(lines) + "\n"
