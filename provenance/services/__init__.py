"""Use cases: what the API, the CLI and EPCIS capture ask of the system, each in one place.

The routers translate HTTP into calls of these and their answers back; the adapters (chain,
index) are handed in by the composition root (`provenance.bootstrap`).
"""
