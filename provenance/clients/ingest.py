"""Ingest a fleet's trip records (JSON Lines) through a running API: check each record, register
the good ones as device-attested lots in batches, and say why each bad one was refused.

A record is refused, with its line number, when it is not JSON or misses a field, when its lot id
is not the one its site and trip give, when the weighbridge disagrees with the onboard scale beyond
the tolerance, when its signature does not recover to the device it names, or when that device is
unknown, revoked, or belongs to another site. The chain refuses a whole transaction for one bad
attestation, so these checks run before anything is sent.

Re-ingesting is safe twice over: lots the index already holds are skipped, and each batch is sent
with an `Idempotency-Key` derived from its content, so a batch sent again (the index had not caught
up yet) returns the first operation instead of writing twice (counted as `resubmitted`).

The API client is a small protocol (`Api`), so tests can pass the app's test client; `HttpApi`
speaks to a real server with the standard library.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from provenance.chain.devices import recover_trip_signer
from provenance.domain.commands import MAX_BATCH_LOTS
from provenance.domain.trips import (
    WEIGHBRIDGE_TOLERANCE_PPM,
    RejectedRecord,
    SignedTrip,
    attested_lot,
    check_weighbridge,
    parse_trip_record,
)
from provenance.errors import ProvenanceError
from provenance.wording import counted

MAX_PAGE = 500


class IngestError(ProvenanceError):
    """The API cannot be used as asked (unreachable, token refused, unexpected answer)."""


class Api(Protocol):
    def get(self, path: str, params: Mapping[str, Any] | None = None) -> tuple[int, Any]: ...

    def post(
        self, path: str, body: Any, *, params: Mapping[str, Any] | None = None, headers: Mapping[str, str]
    ) -> tuple[int, Any]: ...


@dataclass
class HttpApi:
    """JSON over HTTP with the standard library; every request carries the bearer token."""

    base_url: str
    token: str
    timeout_s: float = 90.0

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> tuple[int, Any]:
        return self._send("GET", path, params, None, {})

    def post(
        self, path: str, body: Any, *, params: Mapping[str, Any] | None = None, headers: Mapping[str, str]
    ) -> tuple[int, Any]:
        return self._send("POST", path, params, json.dumps(body).encode(), headers)

    def _send(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        data: bytes | None,
        headers: Mapping[str, str],
    ) -> tuple[int, Any]:
        query = "?" + urllib.parse.urlencode(params) if params else ""
        request = urllib.request.Request(  # noqa: S310 - the URL is the operator's own API
            self.base_url.rstrip("/") + path + query,
            data=data,
            method=method,
            headers={**headers, "Content-Type": "application/json", "Authorization": f"Bearer {self.token}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as answer:  # noqa: S310
                return int(answer.status), json.load(answer)
        except urllib.error.HTTPError as error:
            try:
                return error.code, json.load(error)
            except ValueError:
                return error.code, {"error": {"message": str(error)}}
        except (urllib.error.URLError, OSError) as error:
            raise IngestError(
                f"no API at {self.base_url} ({error}); start it with `provenance serve`"
            ) from None


@dataclass(frozen=True)
class Rejection:
    line: int
    lot_id: str | None
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}" + (f" ({self.lot_id})" if self.lot_id else "") + f": {self.reason}"


@dataclass
class IngestSummary:
    read: int = 0
    registered: int = 0
    skipped: int = 0
    """Already registered (in the index) before this run."""
    resubmitted: int = 0
    """In a batch an earlier run had sent (same content, same Idempotency-Key): the API answered
    with that run's operation, and nothing was written again."""
    rejected: list[Rejection] = field(default_factory=list)
    operations: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if self.rejected else 0

    def counts(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "registered": self.registered,
            "skipped_already_registered": self.skipped,
            "resubmitted_earlier_batch": self.resubmitted,
            "rejected": len(self.rejected),
            "operations": self.operations,
        }


def _before(stamp: str, moment: datetime.datetime) -> bool:
    """Whether an operation's `created_at` (ISO 8601, UTC) is before `moment` (by the server's
    clock against ours: a skewed clock only moves lots between two counters)."""
    try:
        return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")) < moment
    except ValueError:
        return False


def error_text(body: Any) -> str:
    if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
        error = body["error"]
        where = f" ({error.get('field')})" if error.get("field") else ""
        return f"{error.get('type', 'Error')}{where}: {error.get('message', '')}"
    return str(body)[:300]


@dataclass(frozen=True)
class _Pending:
    line: int
    signed: SignedTrip


class TripIngest:
    """One run of `provenance ingest trips`; feed it lines, then `finish()`."""

    def __init__(
        self,
        api: Api,
        *,
        batch_size: int = MAX_BATCH_LOTS,
        weighbridge_tolerance_ppm: int = WEIGHBRIDGE_TOLERANCE_PPM,
        wait_s: float = 60.0,
        say: Callable[[str], None] = lambda _: None,
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH_LOTS:
            raise IngestError(f"a batch is 1 to {MAX_BATCH_LOTS} lots")
        self.api = api
        self.batch_size = batch_size
        self.tolerance_ppm = weighbridge_tolerance_ppm
        self.wait_s = wait_s
        self.say = say
        self.summary = IngestSummary()
        self._registry: tuple[int, str] | None = None
        self._devices: dict[str, Mapping[str, Any] | None] = {}
        self._seen: dict[str, int] = {}
        self._pending: dict[str, list[_Pending]] = {}
        self._started = datetime.datetime.now(datetime.UTC)

    # ------------------------------------------------------------------ records

    def feed(self, lines: Iterable[str]) -> None:
        for number, line in enumerate(lines, start=self.summary.read + 1):
            self.summary.read = number
            if line.strip():
                self._record(number, line)

    def finish(self) -> IngestSummary:
        for site in list(self._pending):
            self._flush(site)
        return self.summary

    def _reject(self, line: int, lot_id: str | None, reason: str) -> None:
        rejection = Rejection(line, lot_id, reason)
        self.summary.rejected.append(rejection)
        self.say(f"rejected {rejection}")

    def _record(self, number: int, line: str) -> None:
        try:
            record = json.loads(line)
        except ValueError as error:
            self._reject(number, None, f"malformed line: not JSON ({error})")
            return
        lot_id = record.get("lot_id") if isinstance(record, dict) else None
        lot_id = lot_id if isinstance(lot_id, str) else None
        try:
            signed = parse_trip_record(record)
            check_weighbridge(signed.trip, self.tolerance_ppm)
        except RejectedRecord as error:
            self._reject(number, lot_id, f"{error.field}: {error.message}")
            return
        trip = signed.trip
        if trip.lot_id in self._seen:
            self._reject(number, trip.lot_id, f"the same lot as line {self._seen[trip.lot_id]}")
            return
        self._seen[trip.lot_id] = number
        reason = self._attestation_problem(signed)
        if reason is not None:
            self._reject(number, trip.lot_id, reason)
            return
        batch = self._pending.setdefault(trip.site, [])
        batch.append(_Pending(number, signed))
        if len(batch) >= self.batch_size:
            self._flush(trip.site)

    def _attestation_problem(self, signed: SignedTrip) -> str | None:
        chain_id, registry = self._registry_domain()
        signer = recover_trip_signer(chain_id, registry, signed)
        if signer is None:
            return "bad signature: it is not a valid signature"
        if signer.lower() != signed.device.lower():
            return (
                f"bad signature: it was made by {signer}, not by the record's device {signed.device} "
                "(forged, or copied from another trip)"
            )
        device = self._device(signer)
        if device is None:
            return f"unknown device {signer}: not registered at any site"
        if device["site"] != signed.trip.site:
            return f"device {signer} belongs to site {device['site']}, not {signed.trip.site}"
        if not device["active"]:
            revoked = device.get("revoked") or {}
            return f"device {signer} was revoked (block {revoked.get('block_number')})"
        return None

    # ------------------------------------------------------------------ API reads

    def _registry_domain(self) -> tuple[int, str]:
        if self._registry is None:
            status, body = self.api.get("/v1/registry")
            if status != 200:
                raise IngestError(f"GET /v1/registry: HTTP {status} {error_text(body)}")
            self._registry = (int(body["chain_id"]), str(body["registry"]))
        return self._registry

    def _device(self, address: str) -> Mapping[str, Any] | None:
        key = address.lower()
        if key not in self._devices:
            status, body = self.api.get(f"/v1/devices/{address}")
            if status == 404:
                self._devices[key] = None
            elif status == 200:
                self._devices[key] = body
            else:
                raise IngestError(f"GET /v1/devices/{address}: HTTP {status} {error_text(body)}")
        return self._devices[key]

    def _registered(self, site: str, items: list[_Pending]) -> set[str]:
        """The lot ids among `items` the index already holds (lots of the site in their time span)."""
        times = [item.signed.trip.loaded_at for item in items]
        wanted = {item.signed.trip.lot_id for item in items}
        found: set[str] = set()
        params: dict[str, Any] = {
            "site": site,
            "extracted_from": str(min(times)),
            "extracted_to": str(max(times) + 1),
            "limit": MAX_PAGE,
        }
        while True:
            status, body = self.api.get("/v1/lots", params)
            if status != 200:
                raise IngestError(f"GET /v1/lots: HTTP {status} {error_text(body)}")
            found |= {lot["lot_id"] for lot in body["lots"]} & wanted
            if not body.get("next_cursor"):
                return found
            params["cursor"] = body["next_cursor"]

    # ------------------------------------------------------------------ writes

    def _flush(self, site: str) -> None:
        items = self._pending.pop(site, [])
        if not items:
            return
        known = self._registered(site, items)
        self.summary.skipped += len(known)
        fresh = [item for item in items if item.signed.trip.lot_id not in known]
        if not fresh:
            self.say(f"{site}: {counted(len(items), 'lot')} already registered")
            return
        lots = [attested_lot(item.signed) for item in fresh]
        content = "\n".join(f"{lot['lot_id']} {lot['signature']}" for lot in lots)
        key = "trips-" + hashlib.sha256(f"{site}\n{content}".encode()).hexdigest()[:40]
        status, body = self.api.post(
            "/v1/lots/attested",
            {"site": site, "lots": lots},
            params={"wait": "true", "timeout": str(self.wait_s)},
            headers={"Idempotency-Key": key},
        )
        if status in (401, 403):
            raise IngestError(f"POST /v1/lots/attested: HTTP {status} {error_text(body)}")
        if status not in (200, 202):
            for item in fresh:
                self._reject(
                    item.line, item.signed.trip.lot_id, f"the API refused the batch: {error_text(body)}"
                )
            return
        operation = self._final(body)
        self.summary.operations.append(str(operation["id"]))
        if operation["status"] == "confirmed":
            if _before(str(operation.get("created_at", "")), self._started):
                self.summary.resubmitted += len(fresh)
                self.say(f"{site}: {counted(len(fresh), 'lot')} sent before (operation {operation['id']})")
            else:
                self.summary.registered += len(fresh)
                self.say(f"{site}: {counted(len(fresh), 'lot')} registered (operation {operation['id']})")
            return
        error = operation.get("error") or {}
        reason = f"the chain refused the batch: {error.get('name')} {json.dumps(error.get('args', {}))}"
        for item in fresh:
            self._reject(item.line, item.signed.trip.lot_id, reason)

    def _final(self, operation: Mapping[str, Any]) -> Mapping[str, Any]:
        """The operation once confirmed or failed, waiting as long as it takes (it is on its way)."""
        while not operation.get("final"):
            status, operation = self.api.get(
                f"/v1/operations/{operation['id']}", {"wait": "true", "timeout": str(self.wait_s)}
            )
            if status not in (200, 202):
                raise IngestError(f"GET /v1/operations: HTTP {status} {error_text(operation)}")
        return operation
