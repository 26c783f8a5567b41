"""Commands as registry calls: one encoder per command type, and the calldata of each call.

The only place a command becomes ABI arguments; the worker asks for the call that carries items
`[start, end)` of a batch command (a transaction of a split batch).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache, singledispatch
from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_utils.abi import collapse_if_tuple
from eth_utils.crypto import keccak
from hexbytes import HexBytes
from web3 import Web3

from provenance.chain.artifacts import registry_artifact
from provenance.chain.client import assay_tuple, attestation_tuple, registration_tuple, transform_args
from provenance.domain.commands import (
    AcceptHandover,
    AddDevice,
    AnchorDocument,
    CancelHandover,
    Command,
    CorrectLot,
    HandOver,
    RecordStockCount,
    RegisterAttestedLots,
    RegisterLots,
    SubmitAssay,
    Transform,
)
from provenance.domain.values import encode_label


@dataclass(frozen=True)
class Call:
    """One registry function call: its name and ABI arguments."""

    function: str
    args: tuple[Any, ...]

    def calldata(self) -> bytes:
        """Selector and ABI-encoded arguments, by eth_abi directly: web3's `Contract.encode_abi`
        normalises every argument and was the largest part of sending a 1,000-lot batch
        (docs/benchmarks.md, "Calldata"); this gives the same bytes."""
        selector, types = _abi_signature(self.function)
        return selector + abi_encode(types, self.args)


@cache
def _abi_signature(function: str) -> tuple[bytes, tuple[str, ...]]:
    """The selector and argument types of a registry function (the registry has no overloads)."""
    (entry,) = [
        item for item in registry_artifact().abi if item["type"] == "function" and item["name"] == function
    ]
    types = tuple(collapse_if_tuple(arg) for arg in entry["inputs"])
    return keccak(text=f"{function}({','.join(types)})")[:4], types


def call_for(command: Command, start: int | None = None, end: int | None = None) -> Call:
    """The registry call that carries items `[start, end)` of `command` (all of a one-call command)."""
    if command.items is not None:
        assert not isinstance(
            command, Transform | SubmitAssay | AnchorDocument | AddDevice | CorrectLot | RecordStockCount
        )
        command = command.part(start, end)
    return encode(command)


def shared_registration(commands: Sequence[RegisterLots]) -> Call:
    """One `registerLots` carrying the lots of several registrations of one site (coalescing)."""
    lots = [lot for command in commands for lot in command.lots]
    return Call(
        "registerLots", (encode_label(commands[0].site, "site"), [registration_tuple(lot) for lot in lots])
    )


@singledispatch
def encode(command: Command) -> Call:
    raise TypeError(f"no registry call for {type(command).__name__}")


@encode.register
def _(command: RegisterLots) -> Call:
    site = encode_label(command.site, "site")
    if len(command.lots) == 1:
        return Call("registerLot", (site, registration_tuple(command.lots[0])))
    return Call("registerLots", (site, [registration_tuple(lot) for lot in command.lots]))


@encode.register
def _(command: RegisterAttestedLots) -> Call:
    return Call(
        "registerAttestedLots",
        (
            encode_label(command.site, "site"),
            [registration_tuple(lot) for lot, _ in command.lots],
            [attestation_tuple(load) for _, load in command.lots],
        ),
    )


@encode.register
def _(command: AddDevice) -> Call:
    return Call(
        "addDevice",
        (
            Web3.to_checksum_address(command.device),
            encode_label(command.site, "site"),
            encode_label(command.kind, "kind"),
        ),
    )


@encode.register
def _(command: CorrectLot) -> Call:
    return Call(
        "correctLot",
        (
            encode_label(command.lot_id, "lot_id"),
            int(command.reason),
            command.adjustment_g,
            command.record_hash,
        ),
    )


@encode.register
def _(command: RecordStockCount) -> Call:
    return Call(
        "recordStockCount",
        (encode_label(command.site, "site"), command.counted_g, command.counted_at, command.record_hash),
    )


@encode.register
def _(command: Transform) -> Call:
    return Call("transform", transform_args(command.transformation))


@encode.register
def _(command: SubmitAssay) -> Call:
    return Call("submitAssay", (assay_tuple(command.assay), command.signature))


@encode.register
def _(command: AnchorDocument) -> Call:
    return Call(
        "anchorDocument",
        (encode_label(command.lot_id, "lot_id"), encode_label(command.kind, "kind"), command.document_hash),
    )


def _labels(lot_ids: Sequence[str]) -> list[bytes]:
    return [encode_label(lot_id, "lot_id") for lot_id in lot_ids]


@encode.register
def _(command: HandOver) -> Call:
    return Call("handOver", (_labels(command.lot_ids), Web3.to_checksum_address(command.to)))


@encode.register
def _(command: AcceptHandover) -> Call:
    return Call("acceptHandover", (_labels(command.lot_ids),))


@encode.register
def _(command: CancelHandover) -> Call:
    return Call("cancelHandover", (_labels(command.lot_ids),))


def jsonable(value: Any) -> Any:
    """Decoded revert arguments as plain JSON (bytes as 0x-hex, tuples as lists)."""
    if isinstance(value, bytes):
        return HexBytes(value).to_0x_hex()
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)
