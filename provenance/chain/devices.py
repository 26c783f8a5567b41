"""Truck scales as signing devices: their development keys, their signatures over trips, and the
recovery of a trip's signer (EIP-712 `Load` of this registry on this chain)."""

from __future__ import annotations

from pathlib import Path

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes

from provenance.chain.keys import DevKeyring
from provenance.chain.signing import LOAD_TYPES, domain, load_message, sign_load
from provenance.domain.records import LotRegistration
from provenance.domain.trips import SignedTrip, Trip, device_key_name


def _lot(trip: Trip) -> LotRegistration:
    """The fields of the lot the device signs (the rest does not enter the signature)."""
    return LotRegistration(
        trip.lot_id,
        trip.site,
        trip.face,
        trip.commodity,
        trip.mass_g,
        trip.grade_ppm,
        trip.loaded_at,
        bytes(32),
    )


def device_key(data_dir: Path, site: str, truck: str) -> LocalAccount:
    """The truck's scale key from the development keyring (made on first use)."""
    return DevKeyring(data_dir).get_or_create(device_key_name(site, truck))


def sign_trip(device: LocalAccount, chain_id: int, registry: str, trip: Trip) -> SignedTrip:
    signature = sign_load(device, chain_id, registry, _lot(trip), trip.trip_id, trip.loaded_at)
    return SignedTrip(trip, device.address, HexBytes(signature).to_0x_hex())


def recover_trip_signer(chain_id: int, registry: str, signed: SignedTrip) -> str | None:
    """The address whose key signed the trip's load; None when the signature is malformed."""
    trip = signed.trip
    signable = encode_typed_data(
        domain(chain_id, registry), LOAD_TYPES, load_message(_lot(trip), trip.trip_id, trip.loaded_at)
    )
    try:
        return str(Account.recover_message(signable, signature=bytes(HexBytes(signed.signature))))
    except Exception:  # eth_keys raises several kinds for a signature that is no signature
        return None
