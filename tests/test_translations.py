"""The UI in German and Polish: every marked text has a translation, and pages come out in the chosen language."""

from __future__ import annotations

import importlib.util
import os
import time
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from appliance.webapp import i18n

REPO = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("translations", REPO / "scripts" / "translations.py")
translations = importlib.util.module_from_spec(spec)
spec.loader.exec_module(translations)


def test_every_text_of_the_ui_is_translated_into_german_and_polish():
    template = translations.extract()
    assert len(template) > 300  # the extraction found the templates and the Python texts
    for language in translations.LANGUAGES:
        assert translations.missing(template, language) == [], language


@pytest.mark.parametrize("language", ["de", "pl"])
def test_placeholders_survive_translation(language):
    with translations.po_path(language).open("rb") as handle:
        catalog = read_po(handle, locale=language)
    problems = [(message.id, errors) for message, errors in catalog.check() if errors]
    assert problems == []


def _msgstr(language: str, msgid: str) -> str:
    with translations.po_path(language).open("rb") as handle:
        return read_po(handle, locale=language)[msgid].string


@pytest.mark.parametrize("language", ["de", "pl"])
def test_pages_come_out_in_the_chosen_language(web, language):
    client = web.client("staff")
    page = client.get(f"/?lang={language}").get_data(as_text=True)
    assert f'<html lang="{language}">' in page
    assert _msgstr(language, "Dashboard") in page and _msgstr(language, "Log out") in page
    # The choice is remembered for the next page.
    assert _msgstr(language, "Movements") in client.get("/movements").get_data(as_text=True)


def test_role_names_are_translated(web):
    page = web.client("purchasing").get("/?lang=de").get_data(as_text=True)
    assert _msgstr("de", "purchasing") in page


def test_catalogues_compile_beside_the_database_and_again_when_a_po_changes(tmp_path):
    source = tmp_path / "translations"
    po = source / "de" / "LC_MESSAGES" / "messages.po"
    po.parent.mkdir(parents=True)
    po.write_text('msgid ""\nmsgstr "Content-Type: text/plain; charset=utf-8\\n"\n\nmsgid "Stock"\nmsgstr "Bestand"\n',
                  encoding="utf-8")
    compiled = tmp_path / "state" / "translations"
    i18n.compile_catalogues(source, compiled)
    mo = compiled / "de" / "LC_MESSAGES" / "messages.mo"
    assert b"Bestand" in mo.read_bytes()
    po.write_text(po.read_text(encoding="utf-8").replace("Bestand", "Lagerbestand"), encoding="utf-8")
    later = time.time() + 5
    os.utime(po, (later, later))
    i18n.compile_catalogues(source, compiled)
    assert b"Lagerbestand" in mo.read_bytes()
