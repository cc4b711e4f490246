#!/usr/bin/env python3
"""Keep the UI's translation catalogues in step with the code: `update` extracts every marked text (Python
`_()`/`gettext`/`lazy_gettext`/`_l`, templates `{{ _("...") }}`) into web/translations/messages.pot and merges
it into each language's messages.po; `check` lists texts a language lacks and exits 1 if any.

    .venv/bin/python scripts/translations.py update
    .venv/bin/python scripts/translations.py check

The app compiles the .po files to .mo at start (appliance/webapp/i18n.py); translators edit only the .po.
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po, write_po

REPO = Path(__file__).resolve().parent.parent
TRANSLATIONS = REPO / "web" / "translations"
LANGUAGES = ("de", "pl")
METHODS = [("appliance/**.py", "python"), ("web/templates/**.html", "jinja2.ext:babel_extract")]
KEYWORDS = {**DEFAULT_KEYWORDS, "lazy_gettext": None, "_l": None}


def extract() -> Catalog:
    catalog = Catalog(project="warehouse-appliance", charset="utf-8")
    for filename, lineno, message, comments, context in extract_from_dir(
            str(REPO), METHODS, {"web/templates/**.html": {"extensions": "jinja2.ext.i18n"}}, KEYWORDS):
        if filename.startswith(("appliance/", "web/")):
            catalog.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return catalog


def po_path(language: str) -> Path:
    return TRANSLATIONS / language / "LC_MESSAGES" / "messages.po"


def read(language: str) -> Catalog:
    path = po_path(language)
    if not path.exists():
        return Catalog(locale=language, project="warehouse-appliance")
    with path.open("rb") as handle:
        return read_po(handle, locale=language)


def missing(template: Catalog, language: str) -> list[str]:
    catalog = read(language)
    gaps = []
    for message in template:
        if not message.id:
            continue
        found = catalog.get(message.id, context=message.context)
        strings = found.string if found is not None else None
        if isinstance(strings, (list, tuple)):
            empty = not all(strings)
        else:
            empty = not strings
        if found is None or empty or found.fuzzy:
            gaps.append(message.id if isinstance(message.id, str) else message.id[0])
    return gaps


def update() -> None:
    template = extract()
    TRANSLATIONS.mkdir(parents=True, exist_ok=True)
    with (TRANSLATIONS / "messages.pot").open("wb") as handle:
        write_po(handle, template, omit_header=False, sort_output=True, width=110)
    for language in LANGUAGES:
        catalog = read(language)
        catalog.update(template, no_fuzzy_matching=True)
        catalog.fuzzy = False  # the header: a fuzzy header would be left out of the compiled catalogue
        path = po_path(language)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            write_po(handle, catalog, sort_output=True, width=110, ignore_obsolete=True)
        print(f"{path.relative_to(REPO)}: {len(missing(template, language))} untranslated")


def check() -> int:
    template = extract()
    status = 0
    for language in LANGUAGES:
        gaps = missing(template, language)
        for text in gaps:
            print(f"{language}: untranslated: {text!r}")
        status = status or (1 if gaps else 0)
    return status


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "check"
    if command == "update":
        update()
    elif command == "check":
        sys.exit(check())
    else:
        sys.exit(f"usage: {sys.argv[0]} update|check")
