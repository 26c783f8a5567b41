"""The smart-mining testbed: `provenance simulate trucks`, `provenance devices add`,
`provenance ingest trips`.

    provenance devices add --site SH2 --trucks 3 --token $REGISTRAR      # once: the scales' keys on chain
    provenance simulate trucks --trucks 3 --hours 2 --site SH2 --out shift.jsonl
    provenance ingest trips shift.jsonl --token $REGISTRAR               # or: ... | provenance ingest trips -

Exit codes of `ingest trips`: 0 every record registered (or already registered), 1 some were
rejected (each listed on stderr with its line and reason), 2 bad arguments or an unusable API.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, BinaryIO, NoReturn

import typer

from provenance.errors import DomainError, ProvenanceError
from provenance.wording import counted

simulate_app = typer.Typer(help="Simulate the testbed's machines.", no_args_is_help=True)
devices_app = typer.Typer(help="Devices (truck scales) that sign loads.", no_args_is_help=True)
ingest_app = typer.Typer(help="Bring machine records in through the API.", no_args_is_help=True)

CREDENTIAL_HELP = "API token of a registrar of the site (default: PROVENANCE_API_TOKEN)."


def _fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _api_url(api: str | None) -> str:
    from provenance.config import Settings

    if api is not None:
        return api
    settings = Settings()
    return f"http://{settings.api_host}:{settings.api_port}"


@simulate_app.command("trucks")
def simulate_trucks(
    trucks: Annotated[int, typer.Option(min=1, max=99, help="How many haul trucks.")] = 3,
    hours: Annotated[float, typer.Option(min=0.01, max=744, help="How long the fleet runs.")] = 2.0,
    site: Annotated[
        str, typer.Option(help="The site (at most 10 characters: lot ids derive from it).")
    ] = "SH2",
    seed: Annotated[int, typer.Option(help="Random seed: the same seed and start give the same trips.")] = 1,
    commodity: Annotated[
        str | None,
        typer.Option(help="What every face yields, as a label (default: the testbed's table; COAL at SH2)."),
    ] = None,
    start: Annotated[
        str | None, typer.Option(help="When the shift starts, ISO date-time in UTC (default: HOURS ago).")
    ] = None,
    out: Annotated[str, typer.Option(help="JSON Lines file to write, or - for stdout.")] = "-",
    deployment: Annotated[
        Path | None, typer.Option(help="Deployment record (default: the data directory's).")
    ] = None,
) -> None:
    """Trip records of an unmanned fleet, one JSON object a line, each signed by its truck's scale.

    Each truck's scale key is the development key `device-<site>-<truck>` of the data directory;
    register the scales once with `provenance devices add` before ingesting."""
    from provenance.bootstrap import recorded_deployment
    from provenance.clients.fleet import signed_trips, trip_lines
    from provenance.config import Settings
    from provenance.domain.trace import parse_time
    from provenance.domain.trips import FleetPlan

    settings = Settings()
    try:
        begins = parse_time("--start", start) if start else int(time.time() - hours * 3600) // 60 * 60
        plan = FleetPlan(site=site, trucks=trucks, hours=hours, start=begins, seed=seed, commodity=commodity)
        record = recorded_deployment(deployment or settings.deployment_path)
    except ProvenanceError as error:
        _fail(str(error))
    if begins + hours * 3600 > time.time() + 600:
        _fail("--start: the shift must be over (the chain refuses loads more than 15 minutes ahead)")
    lines = trip_lines(signed_trips(plan, settings.data_dir, record))
    count = 0
    if out == "-":
        for line in lines:
            sys.stdout.write(line)
            count += 1
        sys.stdout.flush()
    else:
        with open(out, "w", encoding="utf-8") as handle:
            for line in lines:
                handle.write(line)
                count += 1
    moment = datetime.fromtimestamp(begins, UTC).strftime("%Y-%m-%d %H:%M")
    typer.echo(
        f"{counted(count, 'trip')} of {counted(trucks, 'truck')} at {site} from {moment} UTC for {hours:g} h",
        err=True,
    )


@devices_app.command("add")
def devices_add(
    site: Annotated[str, typer.Option(help="The site the scales belong to.")] = "SH2",
    trucks: Annotated[int, typer.Option(min=1, max=99, help="Trucks T01..Tnn of the simulation.")] = 3,
    api: Annotated[
        str | None, typer.Option(help="The running API (default: PROVENANCE_API_HOST/PORT).")
    ] = None,
    token: Annotated[str | None, typer.Option(envvar="PROVENANCE_API_TOKEN", help=CREDENTIAL_HELP)] = None,
) -> None:
    """Register each simulated truck's scale key as a device of the site, through the API's write
    path (the registrar's token signs `addDevice`); devices already active are left alone."""
    from provenance.clients.fleet import register_devices, wait_for_devices
    from provenance.clients.ingest import HttpApi
    from provenance.config import Settings

    if not token:
        _fail("--token: a registrar's API token is needed (or PROVENANCE_API_TOKEN)")
    client, data_dir = HttpApi(_api_url(api), token), Settings().data_dir
    try:
        done = register_devices(client, data_dir, site, trucks)
        for device in done:
            typer.echo(f"{device.truck} {device.device} {device.status}")
        if any(device.status not in ("added", "already active") for device in done):
            raise typer.Exit(1)
        wait_for_devices(client, data_dir, site, trucks)
    except ProvenanceError as error:
        _fail(str(error))
    typer.echo("the index shows every device: trips signed by them can be ingested")


def utf8_lines(handle: BinaryIO, name: str) -> Iterator[str]:
    """The lines of a byte stream as text; a byte that is not UTF-8 ends it with an error naming
    the file, the line and the byte offset (from the start of the stream)."""
    offset = 0
    for number, raw in enumerate(handle, start=1):
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise DomainError(
                "FILE",
                f"{name} is not UTF-8 text: byte {offset + error.start} (line {number}) is "
                f"0x{raw[error.start]:02x}",
            ) from None
        offset += len(raw)


@ingest_app.command("trips")
def ingest_trips(
    source: Annotated[str, typer.Argument(help="JSON Lines file of trip records, or - for stdin.")],
    api: Annotated[
        str | None, typer.Option(help="The running API (default: PROVENANCE_API_HOST/PORT).")
    ] = None,
    token: Annotated[str | None, typer.Option(envvar="PROVENANCE_API_TOKEN", help=CREDENTIAL_HELP)] = None,
    batch: Annotated[int, typer.Option(min=1, max=1000, help="Lots per batch (one operation each).")] = 1000,
    weighbridge_tolerance: Annotated[
        str, typer.Option(help="How far the weighbridge may differ from the onboard scale, percent.")
    ] = "1%",
) -> None:
    """Validate trip records and register them as device-attested lots, in batches, skipping those
    already registered; prints a summary (JSON) and every rejected record with its reason."""
    from provenance.cli.progress import ProgressReport
    from provenance.clients.ingest import HttpApi, TripIngest
    from provenance.domain.site_balance import parse_tolerance

    if not token:
        _fail("--token: a registrar's API token is needed (or PROVENANCE_API_TOKEN)")
    try:
        tolerance_ppm = parse_tolerance(weighbridge_tolerance, "--weighbridge-tolerance")
    except ProvenanceError as error:
        _fail(str(error))
    if source != "-" and not Path(source).is_file():
        _fail(f"FILE: no file {source}")
    run = TripIngest(
        HttpApi(_api_url(api), token),
        batch_size=batch,
        weighbridge_tolerance_ppm=tolerance_ppm,
        say=lambda text: typer.echo(text, err=True),
    )
    try:
        with ProgressReport() as report:
            if source == "-":
                run.feed(_reported(utf8_lines(sys.stdin.buffer, "stdin"), None, report))
            else:
                with open(source, "rb") as handle:  # checked whole first: a bad byte sends nothing
                    total = sum(1 for _ in utf8_lines(handle, source))
                    handle.seek(0)
                    run.feed(_reported(utf8_lines(handle, source), total, report))
            summary = run.finish()
    except ProvenanceError as error:
        _fail(str(error))
    typer.echo(json.dumps(summary.counts(), indent=1))
    raise typer.Exit(summary.exit_code)


def _reported(
    lines: Iterable[str], total: int | None, report: Callable[[str, int, int | None, str], None]
) -> Iterator[str]:
    for number, line in enumerate(lines, start=1):
        yield line
        report("trip records", number, total, "lines")
