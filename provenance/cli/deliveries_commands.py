"""`provenance deliveries list | dead-letters | replay`: outbound delivery destinations, what they
gave up on, and sending again from a block (docs/deliveries.md)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from provenance.errors import ProvenanceError

if TYPE_CHECKING:
    from provenance.index.delivery_store import DeliveryStore

deliveries_app = typer.Typer(
    help="Outbound deliveries: destinations, dead letters, replays.", no_args_is_help=True
)


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


@contextmanager
def _store() -> Iterator[DeliveryStore]:
    from provenance.bootstrap import index_engine
    from provenance.config import Settings
    from provenance.index.db import check_current
    from provenance.index.delivery_store import DeliveryStore

    engine = index_engine(Settings().effective_database_url)
    try:
        check_current(engine)
        yield DeliveryStore(engine)
    finally:
        engine.dispose()


@deliveries_app.command("list")
def list_destinations(
    all_: Annotated[bool, typer.Option("--all", help="Deleted destinations too.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object a line.")] = False,
) -> None:
    """Every destination: id, kind, owner, cursor block, pending events, dead letters, last error."""
    try:
        with _store() as store:
            destinations = store.destinations(active_only=not all_)
            lags = {lag.destination_id: lag for lag in store.lags(destinations)}
    except (ProvenanceError, OSError) as error:
        _fail(str(error))
    for destination in destinations:
        lag = lags[destination.id]
        row = {
            "id": destination.id,
            "kind": destination.kind,
            "owner": destination.owner,
            "url": destination.url,
            "active": destination.active,
            "cursor_block": destination.cursor.block_number,
            "delivered": destination.delivered_count,
            "pending_events": lag.pending_events,
            "retractions_pending": lag.retractions_pending,
            "dead_letters": lag.dead_letters,
            "failures": destination.failures,
            "last_error": destination.last_error,
        }
        if as_json:
            typer.echo(json.dumps(row))
        else:
            typer.echo(
                f"{destination.id}  {destination.kind}  {'active' if destination.active else 'deleted'}  "
                f"block {row['cursor_block']}  delivered {row['delivered']}  pending {row['pending_events']}  "
                f"dead {row['dead_letters']}  failures {row['failures']}  {destination.url}"
                + (f"  last error: {destination.last_error}" if destination.last_error else "")
            )
    if not destinations:
        typer.echo("no destinations")


@deliveries_app.command("dead-letters")
def dead_letters(
    destination: Annotated[str | None, typer.Option(help="Only this destination's.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object a line.")] = False,
) -> None:
    """Messages given up after failing for PROVENANCE_DELIVERY_GIVE_UP_AFTER_S; exit 1 if any."""
    try:
        with _store() as store:
            entries = store.dead_letters(destination, limit)
    except (ProvenanceError, OSError) as error:
        _fail(str(error))
    for entry in entries:
        event = entry.event
        if as_json:
            typer.echo(
                json.dumps(
                    {
                        "destination": entry.destination_id,
                        "message_id": entry.message_id,
                        "event": event.name,
                        "lot_id": event.lot_id,
                        "block_number": event.block_number,
                        "tx_hash": event.tx_hash,
                        "log_index": event.log_index,
                        "attempts": entry.attempts,
                        "error": entry.error,
                    }
                )
            )
        else:
            typer.echo(
                f"{entry.destination_id}  {entry.message_id}  {event.name} {event.lot_id or ''}  "
                f"block {event.block_number}  attempts {entry.attempts}  {entry.error}"
            )
    if entries:
        raise typer.Exit(1)
    typer.echo("no dead letters")


@deliveries_app.command("replay")
def replay(
    destination: Annotated[str, typer.Option(help="The destination's id (`provenance deliveries list`).")],
    from_block: Annotated[int, typer.Option("--from-block", min=0, help="Send again from this block on.")],
) -> None:
    """Send a destination everything it wants from a block on again, dead letters included (with
    the same message ids, so a receiver that de-duplicates changes nothing it has)."""
    try:
        with _store() as store:
            forgotten = store.replay(destination, from_block)
    except LookupError:
        _fail(f"no destination {destination}; see `provenance deliveries list --all`")
    except (ProvenanceError, OSError) as error:
        _fail(str(error))
    typer.echo(
        f"destination {destination} goes back to block {from_block}: {forgotten} logged message(s) will be "
        "sent again by the running deliverer"
    )
