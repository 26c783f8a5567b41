"""A site's mass-balance account over a span of time or blocks, as the manager's page, the read
API and `provenance report mass-balance` all ask for it.

The span is a range of blocks: given as times (or a calendar period), it runs from the first block
at or after its start to the last block before its end, by the block timestamps the index stores;
an end not given is the registry's deployment or the index's last block.
"""

from __future__ import annotations

from typing import Protocol

from provenance.chain.audit_reads import site_roles
from provenance.domain.site_balance import Period, SiteAccount, SiteRoles
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


def site_account(
    reads: SiteAccountReads,
    site: str,
    *,
    deployed: int,
    head: int,
    tolerance_ppm: int,
    period: Period | None = None,
    starts: int | None = None,
    ends: int | None = None,
    from_block: int | None = None,
    to_block: int | None = None,
    to_field: str = "to_block",
) -> SiteAccount:
    """The account of `site` from `deployed` to `head` (the index's last block), narrowed by
    `period` (whose bounds stand for `starts` and `ends` when those are not given), by times
    `starts` (included) and `ends` (excluded), or by blocks (both included). A range given in
    blocks that ends before it starts is refused, naming `to_field`; one given in time is empty."""
    first = deployed if from_block is None else from_block
    last = head if to_block is None else to_block
    if period is not None:
        starts = period.starts_at if starts is None else starts
        ends = period.ends_at if ends is None else ends
    if starts is not None:
        first = reads.first_block_at_or_after(starts, deployed, head)
    if ends is not None:
        last = reads.first_block_at_or_after(ends, deployed, head) - 1
    if last < first and starts is None and ends is None:
        raise DomainError(to_field, "the period ends before it starts")
    return reads.site_account(site, first, last, period, tolerance_ppm, site_roles(site))
