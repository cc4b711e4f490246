"""Translations (Flask-Babel): English first, German and Polish from `web/translations/<lang>/messages.po`.

The language is, in order: `?lang=` (remembered in a cookie), the user's own setting, the browser's
Accept-Language, the configured default. The .po files are compiled at start into a folder beside the database
(the install may be read-only; the state folder never is), so a translator edits only the .po and no compiled
file in the repository can fall behind it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import g, request
from flask_babel import Babel, get_locale

logger = logging.getLogger(__name__)

LANGUAGES = {"en": "English", "de": "Deutsch", "pl": "Polski"}
COOKIE = "lang"


def compile_catalogues(source: Path, target: Path) -> None:
    for po in source.glob("*/LC_MESSAGES/messages.po"):
        mo = target / po.relative_to(source).with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        mo.parent.mkdir(parents=True, exist_ok=True)
        with po.open("rb") as handle:
            catalog = read_po(handle)
        temp = mo.with_suffix(f".mo.{os.getpid()}")  # workers starting together each write their own
        with temp.open("wb") as out:
            write_mo(out, catalog)
        temp.replace(mo)
        logger.info("compiled %s", mo)


def current_language() -> str:
    return str(get_locale() or "en")


def _select(default: str):
    def select() -> str:
        asked = request.args.get("lang") or request.cookies.get(COOKIE)
        if asked in LANGUAGES:
            chosen = asked
        else:
            who = g.get("principal")
            chosen = (who.language if who is not None and who.language in LANGUAGES else None) or \
                request.accept_languages.best_match(list(LANGUAGES)) or default
        g.language = chosen
        return chosen
    return select


def init(app, default: str, compiled: Path) -> None:
    source = Path(app.template_folder).parent / "translations"
    try:
        compile_catalogues(source, compiled)
    except OSError as error:
        logger.warning("cannot compile the translations into %s (%s): the UI stays in English", compiled, error)
    Babel(app, locale_selector=_select(default), default_translation_directories=str(compiled))

    @app.after_request
    def _remember(response):
        asked = request.args.get("lang")
        if asked in LANGUAGES:
            response.set_cookie(COOKIE, asked, max_age=365 * 24 * 3600, samesite="Lax", httponly=True)
        return response
