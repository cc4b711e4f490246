"""What a station answers to every scan (issue 4): ok, warning or error, a short message a person reads at a
glance, what to scan next, and the stock the scan left behind. The agent logs it with the scan, the web UI
shows it, and a gun with a beeper or an LED gets a reply by level."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

LEVELS = ("ok", "warning", "error")


@dataclass(frozen=True)
class StockLine:
    sku: str
    location: str
    on_hand: int
    available: int


@dataclass(frozen=True)
class Feedback:
    station: str
    level: str                    # ok | warning | error
    message: str                  # e.g. "Shipped 2 × DOG-FOOD-12KG from BER-A-01-03; only 2 left there"
    mode: str = "lookup"          # the station's mode after this scan
    prompt: str = ""              # what to scan next, e.g. "Scan the destination location"
    stock: tuple[StockLine, ...] = ()
    movement_ids: tuple[int, ...] = ()
    scan_id: int | None = None    # the scan log row
    unresolved: bool = False      # the code is unknown here; it waits in the scan log to be linked

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"feedback level {self.level!r} is not one of {', '.join(LEVELS)}")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["stock"] = [asdict(line) for line in self.stock]
        out["movement_ids"] = list(self.movement_ids)
        return out
