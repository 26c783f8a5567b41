"""How much of each input lot went into each output lot of a transformation, in whole grams.

The chain records what each input gave (c_i grams consumed) and what each output holds (o_j
grams), not who gave what to whom. The lineage graph shares every output among the inputs in
proportion to what they gave, and charges the declared loss L = C - O the same way (C = sum of
c_i, O = sum of o_j). The exact share of input i in output j is c_i * o_j / C grams; of the loss,
c_i * L / C grams.

Integer grams, rounded so that nothing is created or destroyed:

* each output's incoming edges add up to exactly its mass o_j;
* each input's outgoing edges plus the loss charged to it add up to exactly what it gave, c_i
  (so the charged losses add up to exactly L);
* every edge is the exact share rounded down or up, never further off than that.

Rounding each output on its own (largest remainder per output) cannot keep the second rule: an
input can end up giving more than it consumed. Keeping both is matrix rounding: take every
exact share rounded down, then hand out the missing grams, one per cell at most, to cells whose
share has a fraction. Cells are tried by largest fraction first (ties: earlier input, then
earlier output, in event order), and whatever that greedy pass cannot place is placed by
augmenting paths, searched breadth first in index order. The rounded-down-or-up solution always
exists (the fractional parts themselves are one, and a transportation polytope with integral
margins has integral vertices), and the procedure is deterministic: the same transformation
always gives the same edges, on every machine and in every rebuild.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from provenance.errors import DomainError


@dataclass(frozen=True)
class Allocation:
    """`edges[i][j]`: grams of input i in output j; `loss[i]`: grams of the loss charged to input i."""

    edges: tuple[tuple[int, ...], ...]
    loss: tuple[int, ...]


def allocate(consumed_g: Sequence[int], produced_g: Sequence[int]) -> Allocation:
    """Shares the outputs and the loss of one transformation among its inputs (see the module doc)."""
    if not consumed_g or not produced_g:
        raise DomainError("inputs", "a transformation has at least one input and one output")
    if any(mass <= 0 for mass in consumed_g) or any(mass <= 0 for mass in produced_g):
        raise DomainError("mass_g", "consumed and produced masses must be positive")
    total = sum(consumed_g)
    loss = total - sum(produced_g)
    if loss < 0:
        raise DomainError("outputs", f"outputs ({sum(produced_g)} g) exceed the inputs consumed ({total} g)")
    columns = [*produced_g, loss]
    rows = len(consumed_g)
    width = len(columns)
    cells = [[divmod(c * w, total) for w in columns] for c in consumed_g]
    grams = [[whole for whole, _ in row] for row in cells]
    row_missing = [consumed_g[i] - sum(grams[i]) for i in range(rows)]
    column_missing = [columns[j] - sum(grams[i][j] for i in range(rows)) for j in range(width)]
    rounded_up = [[False] * width for _ in range(rows)]

    fractional = [(i, j) for i in range(rows) for j in range(width) if cells[i][j][1]]
    fractional.sort(key=lambda cell: (-cells[cell[0]][cell[1]][1], cell[0], cell[1]))
    for i, j in fractional:
        if row_missing[i] and column_missing[j]:
            rounded_up[i][j] = True
            row_missing[i] -= 1
            column_missing[j] -= 1

    for start in range(rows):
        while row_missing[start]:
            path = _augmenting_path(start, cells, rounded_up, column_missing)
            if path is None:  # pragma: no cover - impossible by the polytope argument above
                raise AssertionError(f"no integral rounding for {list(consumed_g)} -> {list(produced_g)}")
            for i, j, up in path:
                rounded_up[i][j] = up
            row_missing[start] -= 1
            column_missing[path[-1][1]] -= 1

    for i in range(rows):
        for j in range(width):
            if rounded_up[i][j]:
                grams[i][j] += 1
    return Allocation(
        edges=tuple(tuple(row[:-1]) for row in grams),
        loss=tuple(row[-1] for row in grams),
    )


def _augmenting_path(
    start: int,
    cells: list[list[tuple[int, int]]],
    rounded_up: list[list[bool]],
    column_missing: list[int],
) -> list[tuple[int, int, bool]] | None:
    """A path from input row `start` to an output column still missing grams: it rounds up a
    fractional cell (row to column), and may move an existing round-up along (column back to
    another row). Returns the cells to set, each with its new rounded-up flag."""
    rows, width = len(cells), len(cells[0])
    came_from_column: dict[int, int] = {}
    came_from_row: dict[int, int] = {start: -1}
    queue = deque([start])
    while queue:
        i = queue.popleft()
        for j in range(width):
            if j in came_from_column or not cells[i][j][1] or rounded_up[i][j]:
                continue
            came_from_column[j] = i
            if column_missing[j]:
                return _trace(j, came_from_column, came_from_row)
            for k in range(rows):
                if rounded_up[k][j] and k not in came_from_row:
                    came_from_row[k] = j
                    queue.append(k)
    return None


def _trace(
    column: int, came_from_column: dict[int, int], came_from_row: dict[int, int]
) -> list[tuple[int, int, bool]]:
    path: list[tuple[int, int, bool]] = []
    j = column
    while True:
        i = came_from_column[j]
        path.append((i, j, True))
        previous = came_from_row[i]
        if previous < 0:
            break
        path.append((i, previous, False))
        j = previous
    path.reverse()
    return path
