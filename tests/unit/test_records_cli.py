"""`provenance corrections add` and `provenance stock count` with bad input: one line naming the
option, exit 2, never a traceback (the endpoints themselves: tests/e2e/test_write_api_corrections.py)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from provenance.cli.main import app as cli

UNREACHABLE = "http://127.0.0.1:9"


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        (
            ["corrections", "add", "--lot", "A1", "--reason", "lost", "--adjustment", "-5", "--token", "t"],
            "--reason",
        ),
        (["corrections", "add", "--lot", "A 1", "--reason", "incorrect_data", "--adjustment", "-5"], "--lot"),
        (
            ["corrections", "add", "--lot", "A1", "--reason", "incorrect_data", "--adjustment", "0"],
            "--adjustment",
        ),
        (
            ["corrections", "add", "--lot", "A1", "--reason", "incorrect_data", "--adjustment", "x"],
            "--adjustment",
        ),
        (
            [
                "corrections",
                "add",
                "--lot",
                "A1",
                "--reason",
                "incorrect_data",
                "--adjustment",
                "-1",
                "--record-hash",
                "0x12",
            ],
            "--record-hash",
        ),
        (["stock", "count", "--site", "SH2", "--counted", "-1", "--at", "1700000000"], "--counted"),
        (["stock", "count", "--site", "S H", "--counted", "5", "--at", "1700000000"], "--site"),
        (
            ["stock", "count", "--site", "SH2", "--counted", "5", "--at", "1700000000", "--api", UNREACHABLE],
            "--token",
        ),
    ],
)
def test_bad_input_is_one_line_naming_the_option_and_exit_2(arguments: list[str], named: str) -> None:
    result = CliRunner().invoke(
        cli, [*arguments, "--api", UNREACHABLE] if "--api" not in arguments else arguments
    )

    assert result.exit_code == 2, result.output
    assert named in result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_an_api_that_is_not_there_is_exit_2_without_a_traceback() -> None:
    result = CliRunner().invoke(
        cli,
        [
            "stock",
            "count",
            "--site",
            "SH2",
            "--counted",
            "5",
            "--at",
            "1700000000",
            "--api",
            UNREACHABLE,
            "--token",
            "t",
        ],
    )

    assert result.exit_code == 2, result.output
    assert "no API at" in result.output
