"""Progress on stderr: a line per phase and at most one every half second in a log, a bar on a
terminal; stdout stays the command's answer."""

from __future__ import annotations

import pytest

from provenance.cli.progress import ProgressReport


def test_in_a_log_each_phase_starts_a_line_and_the_end_of_a_phase_is_always_shown(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with ProgressReport(terminal=False) as report:
        for done in range(1, 1001):
            report("rebuild", done, 1000, "blocks")
        report("compare", 1, 2, "lots")
        report("compare", 2, 2, "lots")

    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert out == ""
    assert lines[0] == "rebuild: 1/1,000 blocks (0%)"
    assert "rebuild: 1,000/1,000 blocks (100%)" in lines
    assert len([line for line in lines if line.startswith("rebuild")]) <= 3, "not one line per block"
    assert lines[-2:] == ["compare: 1/2 lots (50%)", "compare: 2/2 lots (100%)"]


def test_an_unknown_total_is_counted_without_a_percentage(capsys: pytest.CaptureFixture[str]) -> None:
    with ProgressReport(terminal=False) as report:
        report("trip records", 5, None, "lines")

    assert capsys.readouterr().err == "trip records: 5 lines\n"


def test_on_a_terminal_a_bar_counts_to_the_total(capsys: pytest.CaptureFixture[str]) -> None:
    with ProgressReport(terminal=True) as report:
        for done in range(1, 4):
            report("backfill", done, 3, "blocks")

    out, err = capsys.readouterr()
    assert out == ""
    assert "backfill" in err
    assert "3/3" in err
