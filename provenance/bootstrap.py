"""The composition root: settings in, connected parts out. The CLI and the API both call it;
nothing connects at import time.
"""

from __future__ import annotations

from provenance.chain.connection import Signer, Web3, connect
from provenance.chain.deployment import Deployment, deploy_registry
from provenance.chain.keys import DevKeyring, load_keystore
from provenance.chain.node import AnvilNode, fund
from provenance.config import Settings

__all__ = ["admin_account", "connect", "embedded_node", "ensure_deployment"]


def embedded_node(settings: Settings) -> AnvilNode:
    return AnvilNode(
        host=settings.node_host,
        port=settings.node_port,
        state_path=settings.data_dir / "chain" / "anvil-state.json",
        state_interval_s=settings.node_state_interval_s,
        log_path=settings.data_dir / "chain" / "anvil.log",
    )


def admin_account(settings: Settings) -> Signer:
    """The keystore's key when one is configured, else the generated development admin key."""
    if settings.keystore is not None:
        return load_keystore(settings.keystore, settings.keystore_password_file)
    return DevKeyring(settings.data_dir).get_or_create("admin")


def ensure_deployment(settings: Settings, w3: Web3, admin: Signer) -> tuple[Deployment, bool]:
    """The recorded deployment, checked against the node; deploys one first if there is none.

    Returns the deployment and whether it was made now.
    """
    path = settings.deployment_path
    if path.exists():
        deployment = Deployment.load(path)
        deployment.check_against(w3)
        return deployment, False
    if settings.embedded:
        fund(w3, admin.address)
    _, deployment = deploy_registry(w3, admin)
    deployment.save(path)
    return deployment, True
