"""Roles and devices at a past block come from the registry's events, so verification needs no
archive node (nor anvil's costly --preserve-historical-states)."""

from __future__ import annotations

from eth_account import Account
from web3 import EthereumTesterProvider, Web3

from provenance.chain.client import RegistryClient
from provenance.chain.reader import ChainReader


def test_role_and_device_history_is_read_at_each_block() -> None:
    w3 = Web3(EthereumTesterProvider())
    admin = w3.eth.accounts[0]
    client, _ = RegistryClient.deploy(w3, admin)
    lab, device = Account.create().address, Account.create().address
    reader = ChainReader(w3, client.address)

    before = w3.eth.block_number
    granted = client.grant_role(admin, client.role("LAB_ROLE"), lab)["blockNumber"]
    added = client.add_device(admin, device, "SH2", "HAUL-TRUCK")["blockNumber"]
    revoked = client.transact(admin, "revokeRole", client.role("LAB_ROLE"), lab)["blockNumber"]
    device_revoked = client.revoke_device(admin, device)["blockNumber"]
    regranted = client.grant_role(admin, client.role("LAB_ROLE"), lab)["blockNumber"]

    assert [reader.has_role("LAB_ROLE", lab, block) for block in (before, granted, revoked, regranted)] == [
        False,
        True,
        False,
        True,
    ]
    assert reader.has_role("LAB_ROLE", admin, regranted) is False
    assert reader.has_role("DEFAULT_ADMIN_ROLE", admin, before) is True
    assert reader.device_at(device, added) == ("SH2", True)
    assert reader.device_at(device, device_revoked) == ("SH2", False)
    assert reader.device_at(device, before)[1] is False
