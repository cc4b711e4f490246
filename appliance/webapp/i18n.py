"""Translations (Flask-Babel): English first, German and Polish from `web/translations/<lang>/messages.po`.

The language is, in order: `?lang=` (remembered in a cookie), the user's own setting, the browser's
Accept-Language, the configured default. The .po files are compiled to .mo at start when the .mo is missing
or older, so a translator edits only the .po.
"""

from __future__ import annotations

import logging
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import g, request
from flask_babel import Babel, get_locale

logger = logging.getLogger(__name__)

LANGUAGES = {"en": "English", "de": "Deutsch", "pl": "Polski"}
COOKIE = "lang"


def compile_catalogues(directory: Path) -> None:
    for po in directory.glob("*/LC_MESSAGES/messages.po"):
        mo = po.with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        with po.open("rb") as source:
            catalog = read_po(source)
        temp = mo.with_suffix(".mo.tmp")
        with temp.open("wb") as target:
            write_mo(target, catalog)
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


def init(app, default: str) -> None:
    directory = Path(app.template_folder).parent / "translations"
    try:
        compile_catalogues(directory)
    except OSError as error:  # a read-only install ships its .mo files
        logger.warning("cannot compile translations in %s: %s", directory, error)
    Babel(app, locale_selector=_select(default), default_translation_directories=str(directory))

    @app.after_request
    def _remember(response):
        asked = request.args.get("lang")
        if asked in LANGUAGES:
            response.set_cookie(COOKIE, asked, max_age=365 * 24 * 3600, samesite="Lax", httponly=True)
        return response
