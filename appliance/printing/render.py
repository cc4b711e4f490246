"""The one entry point for labels: check the data, lay it out for the printer's media, render it.

`render` gives the bytes the printer is sent (ZPL or ESC/POS by the media's language), `preview_png` the same
layout as a picture at the printer's resolution. Both fit the layout the same way, so what the preview shows
is what prints.
"""

from __future__ import annotations

from appliance.printing import labels, render_escpos, render_png, render_zpl
from appliance.printing.layout import LabelError, Page, fit
from appliance.printing.media import Media

__all__ = ["LabelError", "Media", "check_data", "layout", "preview_png", "render"]

MAX_COPIES = 9999           # ^PQ's limit is far higher; more than this is a typo


def check_data(label_type: str, data: dict) -> dict:
    """A validated, normalised copy of `data`; LabelError names the field and the reason otherwise."""
    return labels.check(label_type, data)


def layout(label_type: str, data: dict, media: Media) -> Page:
    """The label fitted to `media`, in dots."""
    checked = check_data(label_type, data)
    return fit(labels.blocks(label_type, checked, media), media)


def render(label_type: str, data: dict, media: Media, copies: int = 1) -> bytes:
    if isinstance(copies, bool) or not isinstance(copies, int) or not 1 <= copies <= MAX_COPIES:
        raise LabelError(f"copies: {copies!r} must be a whole number from 1 to {MAX_COPIES}", field="copies")
    page = layout(label_type, data, media)
    if media.language == "zpl":
        return render_zpl.render(page, copies)
    return render_escpos.render(page, copies)


def preview_png(label_type: str, data: dict, media: Media) -> bytes:
    return render_png.render(layout(label_type, data, media))
