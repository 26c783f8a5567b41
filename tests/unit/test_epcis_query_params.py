"""The EPCIS query parameters (`provenance.epcis.query`) without a database: what each parameter
becomes, which kinds of our events it leaves, and what it refuses, naming the parameter."""

from __future__ import annotations

import datetime
import math
from collections.abc import Iterable

import pytest

from provenance.epcis.export import lot_uri, site_uri
from provenance.epcis.ids import LOCAL_SCHEME, Gs1Keys, IdentifierScheme, LotNumber
from provenance.epcis.query import (
    KINDS,
    MAX_PER_PAGE,
    NotAcceptableException,
    QueryParameterException,
    UnsupportedMediaTypeException,
    ValidationException,
    decode_token,
    encode_token,
    interpret,
    negotiate,
    parse_query,
    query_definition,
)


def names(parameters: list[tuple[str, str]]) -> set[str]:
    return {kind.name for kind in parse_query(parameters).kinds()}


def test_without_parameters_every_kind_is_read_thirty_at_a_time() -> None:
    query = parse_query([])
    assert names([]) == {kind.name for kind in KINDS}
    assert query.per_page == 30
    assert query.after is None


def test_static_fields_choose_the_kinds_without_sql() -> None:
    assert names([("EQ_bizStep", "shipping")]) == {"offered"}
    assert names([("EQ_bizStep", "inspecting")]) == {"assayed", "recounted"}
    assert names([("eventType", "TransformationEvent")]) == {"transformed", "declared_transformation"}
    assert names([("EQ_action", "DELETE")]) == {"voided"}
    assert names([("EQ_disposition", "in_progress|inactive")]) == {"accepted", "voided"}
    assert names([("EXISTS_errorDeclaration", "true")]) == {
        "declared_registration",
        "declared_transformation",
    }
    assert names([("EQ_bizLocation", site_uri("SH2"))]) == {
        "registered",
        "transformed",
        "declared_registration",
        "declared_transformation",
    }
    assert names([("eventType", "AggregationEvent")]) == set()
    assert names([("EQ_readPoint", site_uri("SH2"))]) == set()


def test_list_values_are_pipe_separated_and_repeats_add_to_them() -> None:
    query = parse_query([("EQ_bizStep", "shipping|receiving"), ("EQ_bizStep", "inspecting")])
    assert query.biz_steps == frozenset({"shipping", "receiving", "inspecting"})


def test_cbv_values_are_the_same_as_words_web_uris_and_urns() -> None:
    query = parse_query(
        [("EQ_bizStep", "https://ref.gs1.org/cbv/BizStep-shipping|urn:epcglobal:cbv:bizstep:receiving")]
    )
    assert query.biz_steps == frozenset({"shipping", "receiving"})
    in_transit = parse_query([("EQ_disposition", "urn:epcglobal:cbv:disp:in_transit")]).dispositions
    assert in_transit == frozenset({"in_transit"})


def test_times_round_up_to_the_whole_seconds_of_block_times() -> None:
    moment = datetime.datetime(2030, 5, 6, 7, 8, 9, 250_000, tzinfo=datetime.UTC)
    query = parse_query([("GE_eventTime", moment.isoformat()), ("LT_eventTime", "2030-05-06T07:08:09Z")])
    assert query.event_from == math.ceil(moment.timestamp())
    assert query.event_before == int(moment.replace(microsecond=0).timestamp())
    seoul = moment.astimezone(datetime.timezone(datetime.timedelta(hours=9)))
    # a `+` that arrived unencoded in a query string reads as a space
    assert parse_query([("GE_eventTime", seoul.isoformat().replace("+", " "))]).event_from == query.event_from
    assert parse_query([("GE_recordTime", moment.isoformat())]).record_from_ms == int(
        moment.timestamp() * 1000
    )


def no_lookups(numbers: object, kind: str) -> dict[LotNumber, set[str]]:
    raise AssertionError("no GS1 lot number to look up")


def test_epc_classes_name_our_lots_and_instance_epcs_match_nothing() -> None:
    parsed = parse_query([("MATCH_epcClass", f"{lot_uri('A1')}|urn:epc:class:lgtin:4012345.012345.998877")])
    assert interpret(parsed, LOCAL_SCHEME, no_lookups).lots == frozenset({"A1"})
    assert parse_query([("MATCH_anyEPC", lot_uri("A1"))]).any_lots == frozenset()
    assert names([("MATCH_epc", lot_uri("A1"))]) == set()
    inputs = names([("MATCH_inputEPCClass", lot_uri("A1"))])
    assert inputs == {"transformed", "declared_transformation"}


@pytest.mark.parametrize(
    ("parameters", "named"),
    [
        ([("bizStep", "shipping")], "bizStep"),
        ([("EQ_quantity", "3")], "EQ_quantity"),
        ([("GE_eventTime", "2030-05-06")], "GE_eventTime"),
        ([("GE_eventTime", "2030-05-06T07:08:09")], "GE_eventTime"),
        (
            [("LT_eventTime", "2030-05-06T07:08:09Z"), ("LT_eventTime", "2030-05-07T07:08:09Z")],
            "LT_eventTime",
        ),
        ([("perPage", str(MAX_PER_PAGE + 1))], "perPage"),
        ([("perPage", "-1")], "perPage"),
        ([("EQ_action", "ADD|MOVE")], "EQ_action"),
        ([("EQ_bizStep", "")], "EQ_bizStep"),
        ([("EQ_bizStep", "ship ping")], "EQ_bizStep"),
        ([("MATCH_anyEPCClass", "A1")], "MATCH_anyEPCClass"),
        ([("EXISTS_errorDeclaration", "1")], "EXISTS_errorDeclaration"),
        ([("eventType", "Event")], "eventType"),
        ([("nextPageToken", "!!!")], "nextPageToken"),
    ],
)
def test_a_bad_parameter_is_refused_by_name(parameters: list[tuple[str, str]], named: str) -> None:
    with pytest.raises(QueryParameterException) as refused:
        parse_query(parameters)
    assert refused.value.parameter == named
    assert refused.value.problem()["type"] == "epcisException:QueryParameterException"


def test_a_page_token_holds_its_place_for_its_own_query_only() -> None:
    query = parse_query([("EQ_bizStep", "shipping")])
    token = encode_token((12, 3, 4, 1), query.fingerprint)
    again = parse_query([("EQ_bizStep", "shipping"), ("nextPageToken", token), ("perPage", "5")])
    assert again.after == (12, 3, 4, 1)
    assert decode_token(token, query.fingerprint) == (12, 3, 4, 1)
    with pytest.raises(QueryParameterException):
        parse_query([("EQ_bizStep", "receiving"), ("nextPageToken", token)])


def test_negotiation_speaks_json_ld_and_json_in_epcis_2_0_only() -> None:
    assert negotiate(None, None, {}).media_type == "application/ld+json"
    assert negotiate("application/json", None, {}).media_type == "application/json"
    assert negotiate("text/html;q=0.9, application/json;q=0.4", None, {}).media_type == "application/json"
    assert negotiate("*/*", "Always_GS1_Digital_Link", {}).epc_format == "Never_Translates"
    for accept, headers in (
        ("application/xml", {}),
        ("application/json;q=0", {}),
        (None, {"gs1-epcis-min": "2.1"}),
        (None, {"gs1-cbv-max": "1.2.0"}),
        (None, {"gs1-epcis-max": "two"}),
    ):
        with pytest.raises(NotAcceptableException):
            negotiate(accept, None, headers)


def test_a_query_definition_is_checked_as_the_query_it_runs() -> None:
    name, query = query_definition(
        "application/json", b'{"name": "q1", "query": {"EQ_bizStep": ["shipping"]}}'
    )
    assert (name, query) == ("q1", {"EQ_bizStep": ["shipping"]})
    with pytest.raises(UnsupportedMediaTypeException):
        query_definition("text/plain", b"{}")
    with pytest.raises(ValidationException):
        query_definition("application/json", b'{"name": "", "query": {}}')
    with pytest.raises(QueryParameterException):
        query_definition("application/json", b'{"name": "q", "query": {"EQ_bizStep": "shipping|x y"}}')


def test_a_gs1_lot_number_that_names_a_long_id_is_looked_up() -> None:
    keys = Gs1Keys("4012345", (("COAL", "012345"),))
    scheme = IdentifierScheme("https://mine.example.net", keys)
    long_id = "SH2-T01-20261207T0800"
    asked: list[tuple[list[LotNumber], str]] = []

    def index(numbers: Iterable[LotNumber], kind: str) -> dict[LotNumber, set[str]]:
        wanted = list(numbers)
        asked.append((wanted, kind))
        # what the index holds: the long id and a neighbour with the same head
        return {
            number: {lot for lot in (long_id, long_id[:-1] + "1") if number.names(lot)} for number in wanted
        }

    uri = scheme.lot(long_id, "COAL")
    query = interpret(parse_query([("MATCH_epcClass", f"{uri}|{scheme.lot('A1', 'COAL')}")]), scheme, index)
    assert query.lots == frozenset({long_id, "A1"})
    [(numbers, kind)] = [entry for entry in asked if entry[0]]
    assert kind == "lot"
    assert [number.number for number in numbers] == [uri.rpartition("/10/")[2]]
