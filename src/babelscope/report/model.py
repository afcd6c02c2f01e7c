"""What a report is made of: sections holding figures (each with its table), tables and notes."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

_ids = itertools.count(1)


@dataclass
class Cell:
    text: str
    cls: str = ""  # CSS classes: "num", "pos", "neg", "best"
    value: float | None = None  # the number behind ``text``: what a click on the column heading sorts by


def fmt(value, digits: int = 4) -> str:
    """Numbers with ``digits`` significant figures (integers as integers); others as text."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value == int(value) and abs(value) < 1e6 and digits >= 4 and abs(value) >= 1:
            return f"{int(value):,}"
        return f"{value:.{digits}g}"
    return str(value)


def cell(value, signed: bool = False, lower_is_better: bool = False) -> Cell:
    """A table cell; ``signed`` numbers get a sign and the classes pos/neg (the sign) and good/bad
    (the sign read with the metric's direction), which the page colours green/red."""
    if isinstance(value, Cell):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        text = fmt(value)
        cls = "num"
        if signed and math.isfinite(value) and value != 0:
            text = ("+" if value > 0 else "") + text
            good = (value < 0) if lower_is_better else (value > 0)
            cls += (" pos" if value > 0 else " neg") + (" good" if good else " bad")
        return Cell(text, cls, float(value))
    return Cell(fmt(value))


@dataclass
class Table:
    columns: list[str]
    rows: list[list[Cell]]
    caption: str = ""
    id: str = field(default_factory=lambda: f"t{next(_ids)}")
    foot: list[list[Cell]] = field(default_factory=list)  # summary rows (means) in <tfoot>
    collapsed: bool = False  # long tables start folded in a <details>

    @classmethod
    def make(cls, columns, rows, caption="", signed_cols=(), foot=(), collapsed=None, lower_is_better=False) -> Table:
        def conv(row):
            return [cell(v, signed=(j in signed_cols), lower_is_better=lower_is_better) for j, v in enumerate(row)]

        rows = [conv(r) for r in rows]
        if collapsed is None:
            collapsed = len(rows) > 24 or len(columns) > 12
        return cls(list(columns), rows, caption, foot=[conv(r) for r in foot], collapsed=collapsed)


MAX_ALT = 600  # characters of alt text; longer listings end with a pointer to the table


@dataclass
class Figure:
    src: str  # data URI
    alt: str
    caption: str
    table: Table

    def __post_init__(self):
        if len(self.alt) > MAX_ALT:
            cut = self.alt.rfind("; ", 0, MAX_ALT - 60)
            self.alt = self.alt[: cut if cut > 0 else MAX_ALT - 60] + "; … every number is in the table that follows."


@dataclass
class Note:
    text: str
    pre: bool = False  # preformatted (YAML, README excerpts)
    summary: str = ""  # when set, the note is folded under this summary


@dataclass
class Section:
    title: str
    kind: str  # which renderer made it (CSS hook, tests)
    run: str = ""  # run label, empty for sections over several runs
    intro: str = ""
    blocks: list = field(default_factory=list)
    id: str = field(default_factory=lambda: f"s{next(_ids)}")

    def add(self, block) -> Section:
        self.blocks.append(block)
        return self

    @property
    def figures(self) -> list[Figure]:
        return [b for b in self.blocks if isinstance(b, Figure)]

    @property
    def tables(self) -> list[Table]:
        return [b for b in self.blocks if isinstance(b, Table)] + [f.table for f in self.figures]
