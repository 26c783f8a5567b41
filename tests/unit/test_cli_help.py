"""Every command's --help as a person reads it: flags without a `<bool>` type, no sentence broken
where the docstring's line happened to end."""

from __future__ import annotations

import re
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from provenance.cli.main import app


def command_paths(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    if not hasattr(group, "commands"):  # (typer brings its own copy of click's classes)
        return [prefix]
    paths = [prefix]
    for name, command in group.commands.items():
        paths += command_paths(command, (*prefix, name))
    return paths


PATHS = command_paths(typer.main.get_command(app))


@pytest.mark.parametrize("path", PATHS, ids=[" ".join(path) or "provenance" for path in PATHS])
def test_help_reads_well(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"}, terminal_width=200)

    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.output
    # at 200 columns no paragraph of the description wraps: a line that ends without a full stop,
    # colon or closing bracket was cut where the docstring's line ended
    description = result.output.split("╭")[0].splitlines()[2:]
    cut = [line for line in description if line.strip() and not re.search(r"[.:)\]`]\s*$", line.strip())]
    assert not cut, cut
