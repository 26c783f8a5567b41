"""Is the code at an address the registry our sources compile to? (`provenance verify-contract`)

The committed standard-JSON input (provenance/chain/artifacts/standard-input.json: every source
inlined, settings pinned) is recompiled with the recorded compiler version, and its runtime code is
compared with `eth_getCode`:

* immutables (OpenZeppelin EIP712 keeps its domain separator, chain id, address and name/version
  hashes as immutables) are written into the code at deployment, so the byte ranges that the
  compiler's `immutableReferences` name are masked on both sides;
* the last bytes of runtime code are the CBOR-encoded metadata (its length in the final two
  bytes), which holds the IPFS hash of the metadata JSON, itself covering every source byte,
  comments included.

Verdicts, as Sourcify names them: **full** (everything equal, metadata included: these exact
sources were deployed), **partial** (the executable code is equal, only the metadata differs: the
same code, from sources that differ in comments, whitespace or file names), **mismatch**.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import solcx
from web3 import Web3
from web3.exceptions import Web3Exception

from provenance.chain.artifacts import registry_artifact, standard_input_text
from provenance.chain.compiler import MAIN_CONTRACT, MAIN_SOURCE, find_compiler
from provenance.errors import ChainError, CompilerError


@dataclass(frozen=True)
class CompiledRuntime:
    code: bytes
    immutable_references: dict[str, list[dict[str, int]]]
    creation_code: bytes
    compiler_version: str


@dataclass(frozen=True)
class ContractVerification:
    verdict: str
    """"full", "partial" or "mismatch"."""
    registry: str
    chain_id: int
    compiler_version: str
    settings: dict[str, Any]
    input_sha256: str
    code_bytes: int
    compiled_bytes: int
    immutables_masked: int
    metadata_on_chain: str
    metadata_compiled: str
    first_difference: int | None
    """Byte offset of the first difference in the executable code (metadata excluded), if any."""
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


@lru_cache(maxsize=4)
def compile_runtime(input_text: str) -> CompiledRuntime:
    """Compiles a standard-JSON input with the pinned compiler (cached per input: a compile takes
    seconds)."""
    compiler = find_compiler()
    recorded = registry_artifact().compiler_version
    if compiler.version.split(".Emscripten")[0] != recorded:
        raise CompilerError(
            f"the registry was compiled by solc {recorded}; the compiler found is {compiler.version}"
        )
    try:
        output = solcx.compile_standard(json.loads(input_text), solc_binary=compiler.executable)
    except solcx.exceptions.SolcError as error:
        raise CompilerError(str(error)) from error
    contract = output["contracts"][MAIN_SOURCE][MAIN_CONTRACT]
    deployed = contract["evm"]["deployedBytecode"]
    return CompiledRuntime(
        code=bytes.fromhex(deployed["object"]),
        immutable_references=deployed.get("immutableReferences", {}),
        creation_code=bytes.fromhex(contract["evm"]["bytecode"]["object"]),
        compiler_version=compiler.version,
    )


def split_metadata(code: bytes) -> tuple[bytes, bytes]:
    """(executable code, CBOR metadata with its two length bytes); no metadata if the length is implausible."""
    if len(code) < 2:
        return code, b""
    length = int.from_bytes(code[-2:], "big")
    if length + 2 > len(code) or length == 0:
        return code, b""
    return code[: -(length + 2)], code[-(length + 2) :]


def mask(code: bytes, references: dict[str, list[dict[str, int]]]) -> tuple[bytes, int]:
    masked = bytearray(code)
    count = 0
    for ranges in references.values():
        for reference in ranges:
            start, length = reference["start"], reference["length"]
            if start + length <= len(masked):
                masked[start : start + length] = bytes(length)
                count += 1
    return bytes(masked), count


def compare_code(on_chain: bytes, compiled: CompiledRuntime) -> tuple[str, int | None, bytes, bytes, int]:
    """(verdict, first difference in executable code, metadata on chain, compiled metadata, immutables masked)."""
    chain_masked, count = mask(on_chain, compiled.immutable_references)
    compiled_masked, _ = mask(compiled.code, compiled.immutable_references)
    chain_exec, chain_meta = split_metadata(chain_masked)
    compiled_exec, compiled_meta = split_metadata(compiled_masked)
    if chain_masked == compiled_masked:
        return "full", None, chain_meta, compiled_meta, count
    if chain_exec == compiled_exec:
        return "partial", None, chain_meta, compiled_meta, count
    first = next(
        (i for i, (a, b) in enumerate(zip(chain_exec, compiled_exec, strict=False)) if a != b),
        min(len(chain_exec), len(compiled_exec)),
    )
    return "mismatch", first, chain_meta, compiled_meta, count


def verify_contract(w3: Web3, registry: str, *, input_text: str | None = None) -> ContractVerification:
    """Recompiles (the committed input by default) and compares with the code at `registry`."""
    text = input_text if input_text is not None else standard_input_text()
    address = Web3.to_checksum_address(registry)
    try:
        code = bytes(w3.eth.get_code(address))
        chain_id = int(w3.eth.chain_id)
    except (Web3Exception, OSError, ValueError) as error:
        raise ChainError(f"the node does not answer: {error}") from error
    if not code:
        raise ChainError(f"no contract at {address}")
    compiled = compile_runtime(text)
    verdict, first, chain_meta, compiled_meta, masked = compare_code(code, compiled)
    notes: list[str] = []
    if verdict == "partial":
        notes.append(
            "the executable code is identical; the metadata hash differs, so the deployed sources differ "
            "from these in comments, whitespace, file names or other metadata-only content"
        )
    if verdict == "mismatch":
        notes.append(f"the executable code differs from byte {first} on")
    return ContractVerification(
        verdict=verdict,
        registry=address,
        chain_id=chain_id,
        compiler_version=compiled.compiler_version,
        settings={
            key: value
            for key, value in json.loads(text).get("settings", {}).items()
            if key != "outputSelection"
        },
        input_sha256=hashlib.sha256(text.encode()).hexdigest(),
        code_bytes=len(code),
        compiled_bytes=len(compiled.code),
        immutables_masked=masked,
        metadata_on_chain="0x" + chain_meta.hex(),
        metadata_compiled="0x" + compiled_meta.hex(),
        first_difference=first,
        notes=notes,
    )
