"""Decode registry logs into plain records, fast: one precompiled decoder per topic0 calling
eth_abi directly (web3's per-log normalisers are far slower on a backfill).

Values come out in their domain form: bytes32 labels as text, hashes as 0x-hex, addresses
checksummed, enums as ints, and LotRegistered's packed `measurement` unpacked into
`massG`, `gradePpm` and `extractedAt`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from provenance.chain.artifacts import registry_artifact
from provenance.domain.values import decode_label

LABEL_FIELDS = frozenset({"lotId", "site", "face", "commodity", "kind", "method", "tripId"})
MASS_MASK = (1 << 96) - 1
GRADE_MASK = (1 << 32) - 1
TIME_MASK = (1 << 64) - 1


@dataclass(frozen=True)
class DecodedEvent:
    """One registry event with its chain coordinates."""

    name: str
    args: Mapping[str, Any]
    block_number: int
    block_hash: str
    tx_hash: str
    tx_index: int
    log_index: int
    address: str


def unpack_measurement(measurement: int) -> tuple[int, int, int]:
    """(massG, gradePpm, extractedAt) from LotRegistered's `measurement` word."""
    return measurement & MASS_MASK, (measurement >> 96) & GRADE_MASK, (measurement >> 128) & TIME_MASK


def pack_measurement(mass_g: int, grade_ppm: int, extracted_at: int) -> int:
    return mass_g | grade_ppm << 96 | extracted_at << 128


def _converter(name: str, abi_type: str) -> Callable[[Any], Any]:
    if abi_type == "address":
        return to_checksum_address
    if abi_type == "bytes32":
        return decode_label if name in LABEL_FIELDS else _hex
    if abi_type == "bytes":
        return _hex
    return _identity


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def _identity(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class _EventDecoder:
    name: str
    topic_fields: tuple[tuple[str, str, Callable[[Any], Any]], ...]
    data_names: tuple[str, ...]
    data_types: tuple[str, ...]
    data_converters: tuple[Callable[[Any], Any], ...]

    def decode(self, topics: list[bytes], data: bytes) -> dict[str, Any]:
        if len(topics) != len(self.topic_fields) + 1:
            raise ValueError(f"{self.name}: expected {len(self.topic_fields) + 1} topics, got {len(topics)}")
        args: dict[str, Any] = {}
        for (name, abi_type, convert), topic in zip(self.topic_fields, topics[1:], strict=True):
            args[name] = convert(abi_decode([abi_type], topic)[0])
        values = abi_decode(self.data_types, data) if self.data_types else ()
        for name, convert, value in zip(self.data_names, self.data_converters, values, strict=True):
            args[name] = convert(value)
        if self.name == "LotRegistered":
            args["massG"], args["gradePpm"], args["extractedAt"] = unpack_measurement(args["measurement"])
        return args


@cache
def decoders() -> dict[bytes, _EventDecoder]:
    """Decoders of every event in the registry ABI (OpenZeppelin's role and pause events included), by topic0."""
    table: dict[bytes, _EventDecoder] = {}
    for entry in registry_artifact().abi:
        if entry["type"] != "event":
            continue
        types = ",".join(item["type"] for item in entry["inputs"])
        topic0 = keccak(text=f"{entry['name']}({types})")
        indexed = [item for item in entry["inputs"] if item["indexed"]]
        plain = [item for item in entry["inputs"] if not item["indexed"]]
        table[topic0] = _EventDecoder(
            name=entry["name"],
            topic_fields=tuple((i["name"], i["type"], _converter(i["name"], i["type"])) for i in indexed),
            data_names=tuple(i["name"] for i in plain),
            data_types=tuple(i["type"] for i in plain),
            data_converters=tuple(_converter(i["name"], i["type"]) for i in plain),
        )
    return table


def topic_of(event_name: str) -> bytes:
    for topic, decoder in decoders().items():
        if decoder.name == event_name:
            return topic
    raise KeyError(event_name)


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    return bytes.fromhex(str(value).removeprefix("0x"))


def _as_int(value: Any) -> int:
    return value if isinstance(value, int) else int(str(value), 16)


def decode_log(log: Mapping[str, Any]) -> DecodedEvent | None:
    """Decodes one log as returned by eth_getLogs (web3 AttributeDict or raw JSON-RPC dict).

    Returns None for a log whose topic0 is not a registry event.
    """
    topics = [_as_bytes(topic) for topic in log["topics"]]
    if not topics:
        return None
    decoder = decoders().get(topics[0])
    if decoder is None:
        return None
    return DecodedEvent(
        name=decoder.name,
        args=decoder.decode(topics, _as_bytes(log["data"])),
        block_number=_as_int(log["blockNumber"]),
        block_hash=_hex(_as_bytes(log["blockHash"])),
        tx_hash=_hex(_as_bytes(log["transactionHash"])),
        tx_index=_as_int(log["transactionIndex"]),
        log_index=_as_int(log["logIndex"]),
        address=to_checksum_address(log["address"]),
    )
