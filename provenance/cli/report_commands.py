"""`provenance report mass-balance`: a site's account for a period, read from the index directly.

A calendar period becomes blocks by the block timestamps the index stores (the node is never
asked, so a report runs where only the index database is reachable). Masses are in tonnes unless
`--unit g|kg` (CSV keeps exact grams beside them). Exit codes: 0 the account is clean, 1 it has problems (it does not reconcile, a
figure is negative, a stock count is beyond the tolerance), 2 bad arguments or no index.
"""

from __future__ import annotations

import csv
import io
from enum import StrEnum
from typing import Annotated, NoReturn

import typer

from provenance.domain.mass_units import MassUnit, mass_amount, mass_text
from provenance.domain.site_balance import SiteAccount, parse_tolerance
from provenance.errors import DomainError, ProvenanceError

report_app = typer.Typer(help="Reports read from the index.", no_args_is_help=True)


class Format(StrEnum):
    TABLE = "table"
    CSV = "csv"


def _fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@report_app.command("mass-balance")
def mass_balance_report(
    site: Annotated[str, typer.Option(help="The site's label.")],
    period: Annotated[
        str | None,
        typer.Option(help="2026-11 (month, the usual), 2026-11-03 (day), 2026-W45 (ISO week), 2026 (year)."),
    ] = None,
    from_time: Annotated[
        str | None,
        typer.Option("--from", help="Start (included): Unix seconds or ISO date, instead of --period."),
    ] = None,
    to_time: Annotated[str | None, typer.Option("--to", help="End (excluded), same forms as --from.")] = None,
    from_block: Annotated[int | None, typer.Option(min=0, help="First block (instead of --from).")] = None,
    to_block: Annotated[int | None, typer.Option(min=0, help="Last block, included.")] = None,
    tolerance: Annotated[str, typer.Option(help="Stock-count tolerance, percent of book stock.")] = "0.5%",
    output: Annotated[Format, typer.Option("--format", help="table or csv.")] = Format.TABLE,
    unit: Annotated[MassUnit, typer.Option(help="Masses in t (tonnes), kg or g.")] = MassUnit.T,
    database: Annotated[
        str | None, typer.Option(help="Index database URL (default: the configured one).")
    ] = None,
) -> None:
    """A site's mass-balance account: opening, in, out, corrections, closing, and stock counts."""
    from provenance.bootstrap import index_engine
    from provenance.config import Settings
    from provenance.index.queries import ReadQueries
    from provenance.services.site_accounts import CLI_FIELDS, AccountSpan, site_account

    try:
        tolerance_ppm = parse_tolerance(tolerance, "--tolerance")
        span = AccountSpan.parse(
            period=period,
            from_time=from_time,
            to_time=to_time,
            from_block=from_block,
            to_block=to_block,
            fields=CLI_FIELDS,
        )
    except ProvenanceError as error:
        _fail(str(error))
    settings = Settings()
    engine = index_engine(database or settings.effective_database_url)
    try:
        reads = ReadQueries(engine)
        try:
            deployed, head = reads.deployment_block(), reads.index_block()
        except Exception as error:  # no schema, no server: say so, never a traceback
            _fail(f"--database: cannot read the index ({type(error).__name__}); run `provenance db upgrade`")
        if deployed is None or head is None:
            _fail("the index is empty: run `provenance index` first")
        if not reads.site_timeline(site, None, 1):
            _fail(f"--site: no site {site} in the index (a site appears with its first lot)")
        try:
            account = site_account(
                reads, site, span, deployed=deployed, head=head, tolerance_ppm=tolerance_ppm
            )
        except DomainError as error:
            _fail(str(error))
    finally:
        engine.dispose()
    typer.echo(render_csv(account, unit) if output is Format.CSV else render_table(account, unit), nl=False)
    if account.problems:
        raise typer.Exit(1)


def render_table(account: SiteAccount, unit: MassUnit = MassUnit.T) -> str:
    """The account as a manager reads it: every figure once, with its sign in the first column
    (an outflow is "- Shipped  1.950 t", never a negative number after a minus); processing below,
    as internal flows that add no stock."""
    lines = account.lines()
    width = max(len(line.label) for line in lines)

    def row(sign: str, label: str, grams: int) -> str:
        return f"  {sign} {label:<{width}}  {mass_text(grams, unit):>24}"

    rows = [
        f"Mass balance of site {account.site}, period {account.period} "
        f"(blocks {account.from_block}-{account.to_block})",
        "",
    ]
    for line in lines:
        if line.direction == "internal":
            continue
        if line.direction == "adjustment":
            sign, grams = ("-", -line.grams) if line.grams < 0 else ("+", line.grams)
        else:
            sign, grams = {"in": "+", "out": "-", "balance": "="}[line.direction], line.grams
        rows.append(row(sign, line.label, grams))
    rows.append(row(" ", "Expected closing", account.expected_closing_g))
    rows.append(f"    reconciles: {'yes' if account.reconciles else 'NO'}")
    rows += ["", "Processing at the site (internal: adds no stock):"]
    rows += [row(" ", line.label, line.grams) for line in lines if line.direction == "internal"]
    if account.stock_checks:
        rows += ["", f"Stock counts (tolerance {account.tolerance_ppm / 10_000:g} %):"]
        for check in account.stock_checks:
            relative = "n/a" if check.variance_ppm is None else f"{check.variance_ppm / 10_000:+.4f} %"
            variance = ("+" if check.variance_g >= 0 else "-") + mass_text(abs(check.variance_g), unit)
            rows.append(
                f"  block {check.coordinates.block_number}: counted {mass_text(check.counted_g, unit)}, "
                f"book {mass_text(check.book_g, unit)}, variance {variance} ({relative}) "
                f"{'ok' if check.within_tolerance else 'BEYOND TOLERANCE'}"
            )
    if account.problems:
        rows += ["", "ERRORS:", *(f"  - {problem}" for problem in account.problems)]
    return "\n".join(rows) + "\n"


def render_csv(account: SiteAccount, unit: MassUnit = MassUnit.T) -> str:
    """One row per line of the account, then one per stock count (`line` names what it is);
    `grams` exact, `amount` the same in `unit`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["site", "period", "from_block", "to_block", "line", "label", "grams", "detail", "amount", "unit"]
    )
    head = [account.site, account.period, account.from_block, account.to_block]

    def figure(key: str, label: str, grams: int, detail: str) -> None:
        writer.writerow([*head, key, label, grams, detail, mass_amount(grams, unit), str(unit)])

    for line in account.lines():
        figure(line.key, line.label, line.grams, line.direction)
    figure("expected_closing_g", "Expected closing", account.expected_closing_g, "")
    writer.writerow([*head, "reconciles", "Reconciles", "", str(account.reconciles).lower()])
    for check in account.stock_checks:
        figure(
            "stock_count",
            f"block {check.coordinates.block_number}",
            check.counted_g,
            f"book={check.book_g};variance_g={check.variance_g};variance_ppm={check.variance_ppm};"
            f"within_tolerance={str(check.within_tolerance).lower()}",
        )
    for problem in account.problems:
        writer.writerow([*head, "problem", "", "", problem])
    return out.getvalue()
