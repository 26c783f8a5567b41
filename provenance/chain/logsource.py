"""Registry logs and block headers from a JSON-RPC node, checked before anyone trusts them.

`RpcLogSource.logs` asks `eth_getLogs` for a block range and adapts the range to the node: a
node that answers "too many results" (or a response-size limit, or a timeout) gets the range
halved (or the range it suggests), and later calls grow back. Every answer is checked against
the headers of the blocks it names (hash and number), and for duplicates (tx hash, log index):
a log from a block the node no longer has in its chain means a reorg happened under the read,
and the caller must read again rather than store it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from web3 import Web3
from web3.exceptions import Web3Exception, Web3RPCError
from web3.providers import JSONBaseProvider
from web3.types import BlockIdentifier, FilterParams, RPCEndpoint

from provenance.chain.events import decode_log
from provenance.domain.blocks import BlockRef
from provenance.domain.events import DecodedEvent
from provenance.errors import InconsistentLogs, LogSourceError

__all__ = ["BlockRef", "Confirmations", "RpcLogSource"]

log = logging.getLogger(__name__)

Confirmations = int | Literal["finalized"]
"""Blocks to stay below the latest one, or the node's `finalized` block."""

_RANGE_REFUSED = re.compile(
    r"more than \d+ results|too many|response size|size exceeded|range (is )?too (large|wide|big)"
    r"|block range|limit exceeded|exceeds? (the )?(max|limit)|timed? ?out|timeout|-32005",
    re.IGNORECASE,
)
_SUGGESTED_RANGE = re.compile(r"\[\s*(0x[0-9a-fA-F]+)\s*,\s*(0x[0-9a-fA-F]+)\s*\]")
HEADER_BATCH = 100


class RpcLogSource:
    """Logs of one registry, and block headers, from the node behind `w3`."""

    def __init__(self, w3: Web3, registry_address: str, *, max_span: int = 10_000) -> None:
        self.w3 = w3
        self.registry = Web3.to_checksum_address(registry_address)
        self.max_span = max_span
        self._span = max_span
        self._batches = True

    # ---------------------------------------------------------------- headers

    def head(self, confirmations: Confirmations) -> BlockRef:
        """The newest block the index may take: `confirmations` below the latest, or the finalized one."""
        if confirmations == "finalized":
            return self._get_block("finalized")
        if confirmations < 0:
            raise ValueError("confirmations must be at least 0")
        latest = self._get_block("latest")
        if confirmations == 0:
            return latest
        return self._get_block(max(0, latest.number - confirmations))

    def block(self, number: int) -> BlockRef:
        return self._get_block(number)

    def blocks(self, numbers: Iterable[int]) -> dict[int, BlockRef]:
        """Headers of many blocks, batched into few requests where the provider allows it."""
        wanted = sorted(set(numbers))
        found: dict[int, BlockRef] = {}
        for start in range(0, len(wanted), HEADER_BATCH):
            chunk = wanted[start : start + HEADER_BATCH]
            for ref in self._get_blocks(chunk):
                found[ref.number] = ref
        return found

    def _get_block(self, identifier: BlockIdentifier) -> BlockRef:
        try:
            block = self.w3.eth.get_block(identifier)
        except (Web3Exception, OSError) as error:
            raise LogSourceError(f"cannot read block {identifier!r}: {error}") from error
        return _block_ref(block)

    def _get_blocks(self, numbers: list[int]) -> list[BlockRef]:
        provider = self.w3.provider
        if not self._batches or len(numbers) < 2 or not isinstance(provider, JSONBaseProvider):
            return [self._get_block(number) for number in numbers]
        calls = [(RPCEndpoint("eth_getBlockByNumber"), [hex(number), False]) for number in numbers]
        try:
            answers = provider.make_batch_request(calls)
        except NotImplementedError:
            self._batches = False  # this provider takes one request at a time
            return [self._get_block(number) for number in numbers]
        except (Web3Exception, OSError) as error:
            raise LogSourceError(f"cannot read blocks {numbers[0]}..{numbers[-1]}: {error}") from error
        if not isinstance(answers, list):
            raise LogSourceError(f"cannot read blocks {numbers[0]}..{numbers[-1]}: {answers.get('error')}")
        refs: list[BlockRef] = []
        for number, answer in zip(numbers, answers, strict=True):
            if answer.get("error") is not None:
                raise LogSourceError(f"cannot read block {number}: {answer['error']}")
            refs.append(_block_ref(answer.get("result")))
        if [ref.number for ref in refs] != numbers:
            raise InconsistentLogs(f"asked for blocks {numbers[0]}..{numbers[-1]}, got others")
        return refs

    # ---------------------------------------------------------------- logs

    def logs(self, from_block: int, to_block: int) -> list[DecodedEvent]:
        """The registry's events in blocks `from_block`..`to_block`, in chain order, checked
        against the blocks' headers. Raises InconsistentLogs when the node contradicts itself."""
        if from_block > to_block:
            return []
        raw: list[Mapping[str, Any]] = []
        start = from_block
        while start <= to_block:
            end = min(start + self._span - 1, to_block)
            try:
                answer = self._get_logs(start, end)
            except (Web3Exception, OSError) as error:
                if end == start or not _RANGE_REFUSED.search(str(error)):
                    raise LogSourceError(f"eth_getLogs {start}..{end} failed: {error}") from error
                self._span = _narrower(start, end, str(error))
                log.info("node refused eth_getLogs %d..%d (%s); span now %d", start, end, error, self._span)
                continue
            raw.extend(answer)
            start = end + 1
            self._span = min(self.max_span, self._span * 2)
        return self._checked(from_block, to_block, raw)

    def _get_logs(self, start: int, end: int) -> list[Mapping[str, Any]]:
        """eth_getLogs; over JSON-RPC, the raw answer (web3's result formatters cost more than the
        decoding), which `decode_log` reads as it is."""
        provider = self.w3.provider
        if not isinstance(provider, JSONBaseProvider):
            return list(
                self.w3.eth.get_logs(FilterParams(address=self.registry, fromBlock=start, toBlock=end))
            )
        response = provider.make_request(
            RPCEndpoint("eth_getLogs"),
            [{"address": self.registry, "fromBlock": hex(start), "toBlock": hex(end)}],
        )
        error = response.get("error")
        if error is not None:
            raise Web3RPCError(str(error))
        result = response.get("result")
        if not isinstance(result, list):
            raise LogSourceError(f"eth_getLogs {start}..{end} answered {response!r:.200}")
        return result

    def _checked(self, from_block: int, to_block: int, raw: list[Mapping[str, Any]]) -> list[DecodedEvent]:
        events: list[DecodedEvent] = []
        seen: set[tuple[str, int]] = set()
        for entry in raw:
            if entry.get("removed"):
                raise InconsistentLogs("the node returned a removed log")
            event = decode_log(entry)
            if event is None:
                continue
            if event.address != self.registry:
                raise InconsistentLogs(f"the node returned a log of {event.address}, not the registry")
            if not from_block <= event.block_number <= to_block:
                raise InconsistentLogs(
                    f"asked for blocks {from_block}..{to_block}, got a log of block {event.block_number}"
                )
            key = (event.tx_hash, event.log_index)
            if key in seen:
                raise InconsistentLogs(f"log {event.log_index} of tx {event.tx_hash} was returned twice")
            seen.add(key)
            events.append(event)
        hashes: dict[int, str] = {}
        for event in events:
            if hashes.setdefault(event.block_number, event.block_hash) != event.block_hash:
                raise InconsistentLogs(f"logs of block {event.block_number} name two block hashes")
        headers = self.blocks(hashes)
        for number, block_hash in hashes.items():
            header = headers.get(number)
            if header is None or header.hash != block_hash:
                raise InconsistentLogs(
                    f"logs name block {number} as {block_hash[:10]}…, but the node's block {number} is "
                    f"{header.hash[:10] if header else 'missing'}…: the chain moved under the read"
                )
        events.sort(key=lambda event: (event.block_number, event.tx_index, event.log_index))
        return events


def _narrower(start: int, end: int, message: str) -> int:
    """The next span to try after the node refused `start`..`end`: its suggestion if it made one."""
    suggested = _SUGGESTED_RANGE.search(message)
    if suggested is not None:
        low, high = (int(value, 16) for value in suggested.groups())
        if low == start and start <= high < end:
            return high - start + 1
    return max(1, (end - start + 1) // 2)


def _block_ref(block: Mapping[str, Any] | None) -> BlockRef:
    """A header from web3 (ints, HexBytes) or raw JSON-RPC (hex strings)."""
    if block is None or block.get("number") is None or block.get("hash") is None:
        raise LogSourceError("the node returned no block (pending or unknown)")
    return BlockRef(
        number=_int(block["number"]),
        hash=_hex(block["hash"]),
        parent_hash=_hex(block["parentHash"]),
        timestamp=_int(block["timestamp"]),
    )


def _int(value: Any) -> int:
    return value if isinstance(value, int) else int(str(value), 16)


def _hex(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    text = str(value).lower()
    return text if text.startswith("0x") else "0x" + text
