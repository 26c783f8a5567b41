"""The deployment record: which registry on which chain. The index and every tool check it
before trusting a node, so a record for one chain is never used against another.
"""

from __future__ import annotations

from web3 import Web3

from provenance.chain.client import RegistryClient, Sender
from provenance.domain.deployment import DeploymentRecord
from provenance.errors import DeploymentError


class Deployment(DeploymentRecord):
    """The record with the one check that needs a node."""

    def check_against(self, w3: Web3) -> None:
        """Raises DeploymentError unless the node is this record's chain and holds the registry's code."""
        chain_id = w3.eth.chain_id
        genesis = w3.eth.get_block(0)["hash"].to_0x_hex()
        if chain_id != self.chain_id or genesis != self.genesis_hash:
            raise DeploymentError(
                f"the node is chain {chain_id} (genesis {genesis[:10]}…), but the registry was deployed on chain "
                f"{self.chain_id} (genesis {self.genesis_hash[:10]}…)"
            )
        if not w3.eth.get_code(Web3.to_checksum_address(self.registry)):
            raise DeploymentError(
                f"no contract at {self.registry} on this node: its state is older than the deployment "
                f"(block {self.block_number})"
            )


def deploy_registry(
    w3: Web3, deployer: Sender, admin: str | None = None
) -> tuple[RegistryClient, Deployment]:
    from provenance.chain.artifacts import registry_artifact

    client, receipt = RegistryClient.deploy(w3, deployer, admin)
    deployment = Deployment(
        chain_id=w3.eth.chain_id,
        genesis_hash=w3.eth.get_block(0)["hash"].to_0x_hex(),
        registry=client.address,
        block_number=receipt["blockNumber"],
        block_hash=receipt["blockHash"].to_0x_hex(),
        tx_hash=receipt["transactionHash"].to_0x_hex(),
        deployer=deployer if isinstance(deployer, str) else deployer.address,
        compiler_version=registry_artifact().compiler_version,
    )
    return client, deployment
