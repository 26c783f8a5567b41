"""EPCIS 2.0 (docs/epcis.md): the chain's facts as GS1 events (`export`), the identifiers they
carry (`ids`), the CBV 2.0 event hash (`hash`), the query interface's rules (`query`) and capture
(`capture`: events in, the same write commands the JSON API stores)."""
