"""Clients of the HTTP API: the batch ingest of trip records, the haul-truck fleet simulator and
the demo story. They speak to a running service only through its API, as an operator's tools would."""
