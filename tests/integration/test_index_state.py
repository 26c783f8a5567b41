"""After a realistic history, the index says what the contract says about every lot and device."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from provenance.domain.values import decode_label
from provenance.index.db import make_engine
from provenance.index.models import Device, Event, Lot
from tests.histories import SMALL
from tests.integration.support import Chain, Databases, indexer_for


@pytest.mark.anvil
def test_the_index_agrees_with_the_contract_on_every_lot(chain: Chain, databases: Databases) -> None:
    history = chain.history()
    history.setup()
    history.run(SMALL, rounds=12)
    url = databases.new()
    indexer = indexer_for(chain, url)
    result = indexer.sync()
    indexer.engine.dispose()

    engine = make_engine(url)
    with engine.connect() as connection:
        lots = connection.execute(
            select(Lot.lot_id, Lot.custodian, Lot.remaining_g, Lot.pending_custodian)
        ).all()
        devices = connection.execute(select(Device.device, Device.site, Device.kind, Device.active)).all()
        events = connection.execute(select(Event.name)).scalars().all()
    engine.dispose()

    assert result.events == chain.writer.events + 1  # and the constructor's RoleGranted
    assert len(events) == result.events
    assert {lot.lot_id for lot in lots} == set(history.lots)
    client = history.client
    for lot_id, custodian, remaining_g, pending in lots:
        on_chain = client.lot(lot_id)
        assert on_chain is not None
        assert (custodian, remaining_g, pending) == (
            on_chain.custodian,
            on_chain.remaining_g,
            on_chain.pending_custodian,
        ), lot_id
    assert {device for device, *_ in devices} == set(history.devices_added)
    assert {device for device, *_, active in devices if not active} == set(history.devices_revoked) != set()
    for device, site, kind, active in devices:
        raw_site, raw_kind, on_chain_active = client.contract.functions.deviceOf(device).call()
        assert (site, kind, active) == (decode_label(raw_site), decode_label(raw_kind), on_chain_active), (
            device
        )
    assert {"LotRegistered", "LotCreated", "CustodyAccepted", "AssayRecorded", "LotCorrected"} <= set(events)
