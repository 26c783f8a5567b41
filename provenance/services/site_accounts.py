"""A site's mass-balance account over a span of time or blocks, as the manager's page, the read
API and `provenance report mass-balance` all ask for it.

The span is a range of blocks: given as times (or a calendar period), it runs from the first block
at or after its start to the last block before its end, by the block timestamps the index stores;
an end not given is the registry's deployment or the index's last block.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from provenance.chain.audit_reads import site_roles
from provenance.domain.site_balance import Period, SiteAccount, SiteRoles
from provenance.domain.trace import parse_time
from provenance.errors import DomainError


class SiteAccountReads(Protocol):
    """The index's reads an account needs (`provenance.index.queries.RequestReads`)."""

    def first_block_at_or_after(self, timestamp: int, first: int, last: int) -> int: ...

    def site_account(
        self,
        site: str,
        from_block: int,
        to_block: int,
        period: Period | None,
        tolerance_ppm: int,
        roles: SiteRoles,
    ) -> SiteAccount: ...


@dataclass(frozen=True)
class SpanFields:
    """What each way of asking calls the span's inputs, for refusals that name them."""

    period: str = "period"
    start: str = "from"
    end: str = "to"
    first_block: str = "from_block"
    last_block: str = "to_block"


CLI_FIELDS = SpanFields("--period", "--from", "--to", "--from-block", "--to-block")


@dataclass(frozen=True)
class AccountSpan:
    """The span an account covers, as asked: a calendar period, times, or blocks (either end)."""

    period: Period | None = None
    """The span the account is labelled with: the calendar period, or from..to when both are times."""
    starts: int | None = None
    ends: int | None = None
    from_block: int | None = None
    to_block: int | None = None
    fields: SpanFields = SpanFields()

    @classmethod
    def parse(
        cls,
        *,
        period: str | None = None,
        from_time: str | None = None,
        to_time: str | None = None,
        from_block: int | None = None,
        to_block: int | None = None,
        fields: SpanFields = SpanFields(),
    ) -> AccountSpan:
        """DomainError naming the field (in `fields`' words) for a span given two ways or unreadable."""
        if period is not None and (from_time, to_time, from_block, to_block) != (None, None, None, None):
            raise DomainError(
                fields.period,
                f"give {fields.period} or {fields.start}/{fields.end} "
                f"(or {fields.first_block}/{fields.last_block}), not both",
            )
        if from_time is not None and from_block is not None:
            raise DomainError(fields.start, f"give {fields.start} or {fields.first_block}, not both")
        if to_time is not None and to_block is not None:
            raise DomainError(fields.end, f"give {fields.end} or {fields.last_block}, not both")
        span = Period.parse(period, fields.period) if period is not None else None
        starts = None if from_time is None else parse_time(fields.start, from_time)
        ends = None if to_time is None else parse_time(fields.end, to_time)
        if starts is not None and ends is not None:
            span = Period.between(starts, ends, fields.end)
        return cls(span, starts, ends, from_block, to_block, fields)


def site_account(
    reads: SiteAccountReads,
    site: str,
    span: AccountSpan,
    *,
    deployed: int,
    head: int,
    tolerance_ppm: int,
) -> SiteAccount:
    """The account of `site` from `deployed` to `head` (the index's last block), narrowed by the
    span's period (its bounds stand for times not given), times (start included, end excluded) or
    blocks (both included). A range given in blocks that ends before it starts is refused; one
    given in time is empty."""
    first = deployed if span.from_block is None else span.from_block
    last = head if span.to_block is None else span.to_block
    starts, ends = span.starts, span.ends
    if span.period is not None:
        starts = span.period.starts_at if starts is None else starts
        ends = span.period.ends_at if ends is None else ends
    if starts is not None:
        first = reads.first_block_at_or_after(starts, deployed, head)
    if ends is not None:
        last = reads.first_block_at_or_after(ends, deployed, head) - 1
    if last < first and starts is None and ends is None:
        raise DomainError(span.fields.last_block, "the period ends before it starts")
    return reads.site_account(site, first, last, span.period, tolerance_ppm, site_roles(site))
