"""The hub publisher's parts (provenance.deliveries.hub): reading ETSI's and KETI's batch answers,
the OAuth token kept and fetched again, the settings it refuses, the data models KETI's data
manager would accept (every type and attribute defined by our @context), and the deliverer built
with the hub kind only when a hub is configured."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from provenance.config import Settings
from provenance.deliveries import build_deliverer
from provenance.deliveries.hub import (
    KIND,
    Answer,
    ClientCredentials,
    DataManager,
    HubConfig,
    TokenRefused,
    keti_data_models,
    keti_dataset,
    read_batch_answer,
)
from provenance.domain.ngsi_ld import context_document
from provenance.errors import DomainError
from provenance.index.db import make_engine

IDS = ["urn:ngsi-ld:OreLot:SH2:A", "urn:ngsi-ld:OreLot:SH2:B"]


def answer(status: int, body: Any = None) -> Answer:
    return Answer(status, b"" if body is None else json.dumps(body).encode())


def test_created_and_no_content_take_every_entity() -> None:
    assert read_batch_answer(answer(201, IDS), IDS) == dict.fromkeys(IDS)
    assert read_batch_answer(answer(204), IDS) == dict.fromkeys(IDS)


def test_a_multi_status_names_what_was_refused_and_why() -> None:
    body = {
        "success": [IDS[0]],
        "errors": [
            {
                "entityId": IDS[1],
                "error": {"type": "https://uri.etsi.org/ngsi-ld/errors/BadRequestData", "title": "Bad"},
            }
        ],
    }
    results = read_batch_answer(answer(207, body), IDS)
    assert isinstance(results, dict)
    assert results[IDS[0]] is None
    assert "BadRequestData" in str(results[IDS[1]])


def test_ketis_200_carries_the_same_result_and_an_entity_it_does_not_name_is_not_taken() -> None:
    results = read_batch_answer(answer(200, {"success": [IDS[0]], "errors": None}), IDS)
    assert isinstance(results, dict)
    assert results[IDS[0]] is None
    assert results[IDS[1]] == "the hub's answer does not name it"


@pytest.mark.parametrize("status", [400, 401, 413, 500, 503])
def test_other_statuses_fail_the_whole_batch_with_the_hubs_problem(status: int) -> None:
    problem = {
        "type": "https://uri.etsi.org/ngsi-ld/errors/InternalError",
        "title": "Internal",
        "detail": "db",
    }
    failed = read_batch_answer(answer(status, problem), IDS)
    assert isinstance(failed, str)
    assert failed.startswith(f"HTTP {status}")
    assert "InternalError" in failed


class TokenServer:
    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.forms: list[bytes] = []

    def send(
        self, method: str, url: str, body: bytes, headers: Mapping[str, str], timeout_s: float
    ) -> Answer:
        self.forms.append(body)
        return self.answers.pop(0)


def hub_config(**changes: Any) -> HubConfig:
    values: dict[str, Any] = {
        "ingest_url": "http://127.0.0.1:9/ngsi-ld/v1",
        "api": "etsi",
        "dataset_prefix": "mp-",
        "context_url": "http://127.0.0.1:9/ngsi-ld/context.jsonld",
        "batch_size": 10,
        "timeout_s": 1.0,
        "token_url": "http://127.0.0.1:9/oauth2.0/token",
        "client_id": "client",
        "client_secret": "s3cret-value",
    }
    values.update(changes)
    return HubConfig(**values)


def test_a_token_is_kept_until_shortly_before_it_expires_then_fetched_again() -> None:
    now = [1_000.0]
    server = TokenServer(
        answer(200, {"access_token": "t1", "expires_in": 60}),
        answer(200, {"access_token": "t2", "expires_in": 60}),
    )
    credentials = ClientCredentials(hub_config(), server, clock=lambda: now[0])
    assert credentials.header() == {"Authorization": "Bearer t1"}
    now[0] += 29
    assert credentials.header() == {"Authorization": "Bearer t1"}
    now[0] += 2  # within 30 s of its expiry
    assert credentials.header() == {"Authorization": "Bearer t2"}
    form = server.forms[0].decode()
    assert "grant_type=client_credentials" in form
    assert "client_id=client" in form


def test_a_refused_token_request_never_repeats_the_secret() -> None:
    server = TokenServer(answer(401, {"error": "invalid_client", "detail": "s3cret-value is wrong"}))
    with pytest.raises(TokenRefused) as refused:
        ClientCredentials(hub_config(), server).header()
    assert "s3cret-value" not in str(refused.value)
    assert "401" in str(refused.value)


def test_the_settings_a_hub_needs_are_named_when_missing() -> None:
    with pytest.raises(DomainError, match="PROVENANCE_HUB_INGEST_URL"):
        HubConfig.from_settings(Settings())
    with pytest.raises(DomainError, match="PROVENANCE_HUB_CONTEXT_URL"):
        HubConfig.from_settings(Settings(hub_ingest_url="https://hub.test-city.kr"))
    with pytest.raises(DomainError, match="PROVENANCE_HUB_CLIENT_ID"):
        HubConfig.from_settings(
            Settings(
                hub_ingest_url="https://hub.test-city.kr",
                public_url="https://provenance.test-city.kr",
                hub_token_url="https://auth.test-city.kr/oauth2.0/token",
            )
        )
    config = HubConfig.from_settings(
        Settings(hub_ingest_url="https://hub.test-city.kr/", public_url="https://provenance.test-city.kr")
    )
    assert config.context_url == "https://provenance.test-city.kr/ngsi-ld/context.jsonld"
    assert config.ingest_url == "https://hub.test-city.kr"
    assert "s3cret" not in repr(hub_config())


def test_every_type_and_attribute_of_our_data_models_is_defined_by_our_context() -> None:
    """KETI's data manager refuses a model whose type or attribute it cannot find in the context."""
    terms = context_document("https://provenance.test-city.kr/ngsi-ld/vocab#")["@context"][1]
    core = {"location"}  # ETSI's core context
    models = keti_data_models("https://provenance.test-city.kr/ngsi-ld/context.jsonld")
    assert [model["type"] for model in models] == ["OreLot", "MiningSite", "DLTtxReceipt"]
    for model in models:
        assert model["type"] in terms
        for attribute in model["attributes"]:
            assert attribute["name"] in terms or attribute["name"] in core, (model["type"], attribute["name"])
            for child in attribute.get("childAttributes", []):
                assert child["name"] in terms
            assert attribute["attributeType"] in ("Property", "Relationship", "GeoProperty")
    dataset = keti_dataset(hub_config(), "OreLot")
    required = {"id", "updateInterval", "providerOrganization", "providerSystem", "isProcessed", "license"}
    assert required | {"datasetItems", "targetRegions", "qualityCheckEnabled"} <= dataset.keys()
    assert (dataset["id"], dataset["dataModelId"]) == ("mp-OreLot", "OreLot")


class DataManagerDouble:
    """Creates once, then says "Already Exists" (as KETI's data manager does) and takes a PUT."""

    def __init__(self) -> None:
        self.made: set[str] = set()
        self.calls: list[tuple[str, str]] = []

    def send(
        self, method: str, url: str, body: bytes, headers: Mapping[str, str], timeout_s: float
    ) -> Answer:
        self.calls.append((method, url))
        if url.endswith("/oauth2.0/token"):
            return answer(200, {"access_token": "t", "expires_in": 3600})
        assert headers["Authorization"] == "Bearer t"
        document = json.loads(body)
        key = url if method == "PUT" else url + "/" + str(document.get("id", "flow"))
        if method == "POST" and key in self.made:
            return answer(400, {"type": "C0012", "title": "ALREADY_EXISTS", "detail": "Already Exists. id=x"})
        self.made.add(key)
        return answer(201 if method == "POST" else 204)


def test_register_models_creates_then_updates_what_exists() -> None:
    double = DataManagerDouble()
    manager = DataManager(hub_config(data_manager_url="http://127.0.0.1:9"), double)
    first = manager.register()
    assert [item.outcome for item in first] == ["created"] * 9
    assert [item.what for item in first][:3] == [
        "data model OreLot",
        "data model MiningSite",
        "data model DLTtxReceipt",
    ]
    again = manager.register()
    assert [item.outcome for item in again] == ["updated"] * 9
    assert ("PUT", "http://127.0.0.1:9/datamodels/OreLot") in double.calls
    assert ("PUT", "http://127.0.0.1:9/datasets/mp-OreLot/flow") in double.calls
    with pytest.raises(DomainError, match="PROVENANCE_HUB_DATA_MANAGER_URL"):
        DataManager(hub_config())


def test_the_deliverer_has_the_hub_kind_only_when_a_hub_is_configured(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'index.sqlite3'}")
    try:
        plain = build_deliverer(engine, Settings(data_dir=tmp_path), chain_id=1, registry="0x" + "00" * 20)
        assert KIND not in plain.kinds
        configured = Settings(
            data_dir=tmp_path,
            hub_ingest_url="https://hub.test-city.kr",
            public_url="https://provenance.test-city.kr",
        )
        with_hub = build_deliverer(engine, configured, chain_id=1, registry="0x" + "00" * 20)
        assert set(with_hub.kinds) == {"webhook", "epcis-query", KIND}
    finally:
        engine.dispose()
