"""The committed artifacts are exactly what the pinned compiler makes of contracts/ today."""

from __future__ import annotations

import json

from provenance.chain import compiler
from provenance.chain.artifacts import registry_artifact


def test_committed_artifacts_match_a_fresh_compile() -> None:
    artifact, standard_input = compiler.compile_registry()

    assert compiler.ARTIFACT_PATH.read_text(encoding="utf-8") == artifact, "run `provenance compile`"
    assert compiler.INPUT_PATH.read_text(encoding="utf-8") == standard_input, "run `provenance compile`"


def test_artifacts_record_the_pinned_compiler_and_settings() -> None:
    artifact = registry_artifact()
    metadata = json.loads(json.loads(compiler.ARTIFACT_PATH.read_text())["metadata"])

    assert artifact.compiler_version.startswith(compiler.SOLC_VERSION + "+commit.")
    assert artifact.settings["evmVersion"] == "prague"
    assert metadata["settings"]["evmVersion"] == "prague"
    assert metadata["settings"]["optimizer"] == {"enabled": True, "runs": compiler.OPTIMIZER_RUNS}


def test_a_lot_occupies_one_storage_slot() -> None:
    layout = json.loads(compiler.ARTIFACT_PATH.read_text())["storageLayout"]
    lot_type = next(name for name in layout["types"] if name.startswith("t_struct(Lot)"))

    assert layout["types"][lot_type]["numberOfBytes"] == "32"
