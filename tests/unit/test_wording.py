from provenance.wording import counted


def test_one_thing_is_singular_and_every_other_count_plural() -> None:
    assert counted(1, "lot") == "1 lot"
    assert counted(0, "lot") == "0 lots"
    assert counted(1_024, "event") == "1,024 events"
    assert counted(2, "analysis", "analyses") == "2 analyses"
