"""What a renderer needs to know about one printer's paper: resolution, size, language and feed settings.

Kept apart from `PrinterConfig` so rendering (and the previews, benchmarks and tests) can run without a
configured printer: a `Media` is all the renderers ever see.
"""

from __future__ import annotations

from dataclasses import dataclass

from appliance.config.printers import PrinterConfig

LANGUAGES = ("zpl", "escpos")


@dataclass(frozen=True)
class Media:
    dpi: int
    width_mm: float
    height_mm: float
    language: str               # "zpl" | "escpos"
    media: str = "gap"          # gap | mark | continuous
    darkness: int = -1          # -1 keeps the printer's own setting
    speed: int = 0              # 0 keeps the printer's own setting
    offset_x_mm: float = 0.0
    offset_y_mm: float = 0.0
    codepage: str = "CP852"

    def __post_init__(self) -> None:
        # A typo here would otherwise surface as a wrong-looking label much later.
        if self.language not in LANGUAGES:
            raise ValueError(f"language {self.language!r} is not one of {', '.join(LANGUAGES)}")
        if self.dpi <= 0 or self.width_mm <= 0 or self.height_mm <= 0:
            raise ValueError(f"media needs a positive dpi and size, got {self.dpi} dpi "
                             f"{self.width_mm} x {self.height_mm} mm")

    @classmethod
    def from_printer(cls, printer: PrinterConfig) -> "Media":
        return cls(dpi=printer.dpi, width_mm=printer.width_mm, height_mm=printer.height_mm,
                   language=printer.language, media=printer.media, darkness=printer.darkness,
                   speed=printer.speed, offset_x_mm=printer.offset_x_mm, offset_y_mm=printer.offset_y_mm,
                   codepage=printer.codepage)

    def dots(self, mm: float) -> int:
        return round(mm * self.dpi / 25.4)

    def mm(self, dots: int) -> float:
        return dots * 25.4 / self.dpi

    def describe(self) -> str:
        """'50 x 30 mm at 203 dpi (zpl)', for error messages."""
        return f"{self.width_mm:g} x {self.height_mm:g} mm at {self.dpi} dpi ({self.language})"
