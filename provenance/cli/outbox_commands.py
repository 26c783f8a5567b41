"""`provenance outbox conflicts | resume`: what holds the outbox, and a person's decision on it.

A chain conflict is an acknowledged operation the chain accepted, lost with a block and then
refused (`provenance.domain.outbox.ChainConflict`); while one is open the outbox worker sends
nothing. Look first (`provenance audit`), then decide: `--held fail` fails the held operations with
the error the chain gave, `--held retry` tries them once more as new writes.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from provenance.errors import ProvenanceError

if TYPE_CHECKING:
    from provenance.index.outbox import OutboxStore

outbox_app = typer.Typer(help="The transaction outbox: chain conflicts that hold it.", no_args_is_help=True)


class Held(enum.StrEnum):
    FAIL = "fail"
    RETRY = "retry"


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _store() -> OutboxStore:
    from provenance.bootstrap import index_engine
    from provenance.config import Settings
    from provenance.index.db import check_current
    from provenance.index.outbox import OutboxStore

    engine = index_engine(Settings().effective_database_url)
    check_current(engine)
    return OutboxStore(engine)


@outbox_app.command("conflicts")
def conflicts() -> None:
    """The open chain conflicts, one a line; exit 1 if there is any."""
    try:
        found = _store().open_conflicts()
    except (ProvenanceError, OSError) as error:
        _fail(str(error))
    for conflict in found:
        typer.echo(f"{conflict.detected_at}  {conflict.describe()}")
    if found:
        raise typer.Exit(1)
    typer.echo("no open chain conflicts: the outbox is sending")


@outbox_app.command("resume")
def resume(
    held: Annotated[
        Held, typer.Option(help="fail: the held operations fail; retry: they are tried once more.")
    ],
) -> None:
    """Resolve every open chain conflict as `--held` says; the outbox sends again."""
    try:
        resolved = _store().resolve_conflicts(fail_held=held is Held.FAIL)
    except (ProvenanceError, OSError) as error:
        _fail(str(error))
    if not resolved:
        typer.echo("no open chain conflicts")
        return
    for conflict in resolved:
        typer.echo(f"{'failed' if held is Held.FAIL else 'retried'}: {conflict.describe()}")
    typer.echo("the outbox sends again")
