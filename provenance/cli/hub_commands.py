"""`provenance hub register-models | publish`: the city data hub (NGSI-LD; docs/ngsi-ld.md).

`register-models` registers our data models, datasets and dataset flows with KETI's data manager;
`publish` adds (or moves) the hub destination, which `provenance serve`'s deliveries child then
publishes to continuously. The hub's URLs and OAuth client come from PROVENANCE_HUB_* settings;
the client secret is never printed."""

from __future__ import annotations

import time
from typing import Annotated, NoReturn

import typer

from provenance.errors import ProvenanceError

hub_app = typer.Typer(
    help="The city data hub (NGSI-LD): register our data models, publish.", no_args_is_help=True
)


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


@hub_app.command("register-models")
def register_models() -> None:
    """Registers OreLot, MiningSite and DLTtxReceipt with KETI's data manager, a dataset for each
    and its flow to the data service broker (each created, or updated if it exists). Exit 1 if
    any was refused."""
    from provenance.config import Settings
    from provenance.deliveries.hub import DataManager, HubConfig

    try:
        manager = DataManager(HubConfig.from_settings(Settings()))
    except ProvenanceError as error:
        _fail(str(error))
    failed = False
    for registered in manager.register():
        line = f"{registered.what}: {registered.outcome}"
        typer.echo(line + (f" ({registered.detail})" if registered.detail else ""))
        failed = failed or registered.outcome == "failed"
    if failed:
        raise typer.Exit(1)


@hub_app.command("publish")
def publish(
    from_block: Annotated[
        int | None,
        typer.Option(
            "--from-block", min=0, help="Publish again from this block (default: all history for a new hub)."
        ),
    ] = None,
    from_now: Annotated[
        bool, typer.Option("--from-now", help="A new hub gets only what the index stores from now on.")
    ] = False,
) -> None:
    """Adds the hub (PROVENANCE_HUB_INGEST_URL) as a delivery destination; `provenance serve`
    then publishes every lot fact to it as it reaches the index. A destination for another hub
    URL is retired. Running it again changes nothing unless --from-block is given."""
    from provenance.bootstrap import index_engine
    from provenance.config import Settings
    from provenance.deliveries.hub import KIND, HubConfig
    from provenance.domain.deliveries import SubscriptionFilter
    from provenance.index.db import check_current
    from provenance.index.delivery_store import DeliveryStore

    if from_now and from_block is not None:
        _fail("--from-now and --from-block exclude each other")
    settings = Settings()
    try:
        config = HubConfig.from_settings(settings)
    except ProvenanceError as error:
        _fail(str(error))
    engine = index_engine(settings.effective_database_url)
    try:
        check_current(engine)
        store = DeliveryStore(engine)
        current = None
        for destination in store.destinations():
            if destination.kind != KIND:
                continue
            if destination.url == config.ingest_url and current is None:
                current = destination
            else:
                store.deactivate(destination.id, time.time())
                typer.echo(f"retired {destination.id} ({destination.url})")
        if current is None:
            current = store.create(
                kind=KIND,
                url=config.ingest_url,
                secret="",  # the OAuth client secret stays in the settings, never in the database
                filter=SubscriptionFilter(),
                owner=None,
                credential_id=None,
                now=time.time(),
                prefix="hub_",
            )
            start = None if from_now else (from_block or 0)
            typer.echo(f"publishing to {config.ingest_url} as {current.id}")
        else:
            start = from_block
            typer.echo(f"already publishing to {config.ingest_url} as {current.id}")
        if start is not None:
            forgotten = store.replay(current.id, start)
            typer.echo(f"from block {start} ({forgotten} sent facts forgotten, to be sent again)")
    except (ProvenanceError, OSError) as error:
        _fail(str(error))
    finally:
        engine.dispose()
    if not settings.hub_token_url:
        typer.echo("note: PROVENANCE_HUB_TOKEN_URL is not set: requests carry no token", err=True)
