"""`provenance corrections add` and `provenance stock count`: what a person declares, sent through
the running API's write path with a token (like `devices add`), waiting for the chain.

    provenance corrections add --lot SH2-T03-20261124T0712 --reason incorrect_data --adjustment -200000 --token $T
    provenance stock count --site SH2 --counted 3500000000 --token $REGISTRAR

Exit codes: 0 confirmed on chain, 1 refused (by the API's roles or by the chain) or still pending,
2 bad arguments or no API. Masses are whole grams.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Annotated, Any, NoReturn

import typer

from provenance.errors import DomainError, ProvenanceError

corrections_app = typer.Typer(help="Corrections of lots' recorded mass.", no_args_is_help=True)
stock_app = typer.Typer(help="Physical stock counts of a site.", no_args_is_help=True)

API_HELP = "The running API (default: PROVENANCE_API_HOST/PORT)."
OPTION = {
    "lot_id": "--lot",
    "reason": "--reason",
    "adjustment_g": "--adjustment",
    "record_hash": "--record-hash",
    "site": "--site",
    "counted_g": "--counted",
    "counted_at": "--at",
}


def _fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _record_hash(given: str | None, body: dict[str, Any]) -> str:
    """The given hash, else SHA-256 of the request itself (what was declared, by this command)."""
    if given is not None:
        return given
    return "0x" + hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _send(path: str, body: dict[str, Any], check: Any, api: str | None, token: str | None) -> None:
    from provenance.cli.fleet_commands import _api_url
    from provenance.clients.ingest import HttpApi

    try:
        check(body)
    except DomainError as error:
        _fail(f"{OPTION.get(error.field, error.field)}: {error.message}")
    if not token:
        _fail("--token: an API token is needed (or PROVENANCE_API_TOKEN)")
    key = hashlib.sha256(json.dumps([path, body], sort_keys=True).encode()).hexdigest()
    try:
        status, answer = HttpApi(_api_url(api), token).post(
            path, body, params={"wait": "true", "timeout": 60}, headers={"Idempotency-Key": key}
        )
    except ProvenanceError as error:
        _fail(str(error))
    if status == 422:
        refused = answer.get("error", {})
        _fail(f"{OPTION.get(refused.get('field'), refused.get('field'))}: {refused.get('message')}")
    if status in (401, 403):
        _fail(str(answer.get("error", {}).get("message", status)), 1 if status == 403 else 2)
    if status not in (200, 202):
        _fail(f"the API answered {status}: {answer.get('error', {}).get('message', '')}", 1)
    typer.echo(f"operation {answer['id']}: {answer['status']}")
    if answer["status"] == "failed":
        typer.echo(f"refused on chain: {answer.get('error', {}).get('name')}", err=True)
    if answer["status"] != "confirmed":
        raise typer.Exit(1)


@corrections_app.command("add")
def corrections_add(
    lot: Annotated[str, typer.Option("--lot", help="The lot whose record is wrong.")],
    reason: Annotated[str, typer.Option(help="CBV 2.0 reason: incorrect_data or did_not_occur.")],
    adjustment: Annotated[
        int, typer.Option(help="Signed grams added to the lot's remaining mass (negative: less).")
    ],
    record_hash: Annotated[
        str | None, typer.Option(help="0x-hex hash of the correction record (default: of this request).")
    ] = None,
    api: Annotated[str | None, typer.Option(help=API_HELP)] = None,
    token: Annotated[
        str | None, typer.Option(envvar="PROVENANCE_API_TOKEN", help="Token of the custodian or an admin.")
    ] = None,
) -> None:
    """Declare a lot's record wrong (`correctLot`); the custodian or an admin may."""
    from provenance.domain.commands import CorrectLot

    body: dict[str, Any] = {"lot_id": lot, "reason": reason, "adjustment_g": adjustment}
    body["record_hash"] = _record_hash(record_hash, body)
    _send("/v1/corrections", body, CorrectLot.from_payload, api, token)


@stock_app.command("count")
def stock_count(
    site: Annotated[str, typer.Option(help="The site counted.")],
    counted: Annotated[int, typer.Option(help="The mass found, in whole grams.")],
    at: Annotated[
        int | None, typer.Option("--at", help="When it was counted, Unix seconds (default: now).")
    ] = None,
    record_hash: Annotated[
        str | None, typer.Option(help="0x-hex hash of the count sheet (default: of this request).")
    ] = None,
    api: Annotated[str | None, typer.Option(help=API_HELP)] = None,
    token: Annotated[
        str | None, typer.Option(envvar="PROVENANCE_API_TOKEN", help="Token of a registrar of the site.")
    ] = None,
) -> None:
    """Record a physical stock count at a site (`recordStockCount`); a registrar of the site may."""
    from provenance.domain.commands import RecordStockCount

    body: dict[str, Any] = {
        "site": site,
        "counted_g": counted,
        "counted_at": int(time.time()) if at is None else at,
    }
    body["record_hash"] = _record_hash(record_hash, body)
    _send("/v1/stock-counts", body, RecordStockCount.from_payload, api, token)
