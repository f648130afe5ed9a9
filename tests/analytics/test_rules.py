"""The RFM grid: every (R, F) cell exactly once, and docs/analytics.md shows the grid in use."""

import re
from pathlib import Path

from app.analytics.enums import RfmSegment
from app.analytics.rules import SEGMENT_GRID, SEGMENT_RULES

DOCS = Path(__file__).resolve().parents[2] / "docs" / "analytics.md"


def test_the_grid_covers_every_cell_once() -> None:
    declared = [
        (r, f) for recency, frequency, _ in SEGMENT_RULES for r in recency for f in frequency
    ]
    assert len(declared) == 25
    assert set(declared) == {(r, f) for r in range(1, 6) for f in range(1, 6)}
    assert set(SEGMENT_GRID.values()) == set(RfmSegment)


def test_the_docs_show_the_grid() -> None:
    """The table in docs/analytics.md: a row per R score (5 down to 1), a column per F score."""
    rows = re.findall(r"^\| \*\*R(\d)\*\* \|(.*)\|$", DOCS.read_text(), flags=re.MULTILINE)
    shown = {
        (int(r), f): cell.strip().strip("`")
        for r, cells in rows
        for f, cell in enumerate(cells.split("|"), start=1)
    }
    assert shown == {cell: segment.value for cell, segment in SEGMENT_GRID.items()}
