"""Fixed texts of the release files in English and Dutch, number formatting and formula neutralising.

The method footnote deliberately names no rule or parameter: committee members must not learn the
concentration thresholds (domain.md §5).
"""

from __future__ import annotations

import math

SYMBOL = {"en": "x", "nl": "x"}  # CBS also uses "x" for "geheim"
# A combination nobody reported (no cell at all). A blank cell would leave the reader guessing
# between zero, missing and forgotten; the en dash is not a formula start, so Excel keeps it as text.
NO_DATA = "\u2013"

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "contents": "Contents",
        "total": "Total",
        "period": "Period",
        "unit": "Unit",
        "audience": "Audience",
        "released": "Released",
        "protocol": "Confidentiality protocol",
        "version": "version",
        "code_version": "Software version",
        "table": "Table",
        "value": "Value",
        "code": "code",
        "level": "level",
        "legend_title": "Legend",
        "legend": "x = suppressed: the figure could reveal data of an individual company",
        "coverage_title": "What the tables show",
        "coverage_note": "Cells of each table shown as a figure, as a range (x 120–450) or hidden without one (x).",
        "coverage_published": "published",
        "coverage_ranged": "as a range",
        "coverage_hidden": "hidden",
        "coverage_cells": "cells",
        "range_legend": "x 120–450 = suppressed; the published figures imply that the value lies in this range "
        "(≥ 120: at least 120)",
        "lower": "lower bound if suppressed",
        "upper": "upper bound if suppressed",
        "legend_text": "suppressed: the figure could reveal data of an individual company",
        "method": "Cells that could reveal data of an individual company are suppressed (x). "
        "Other cells are suppressed as well where needed, so that hidden figures cannot be "
        "recalculated from totals. Totals include the suppressed cells.",
        "revision": "Revised release: this release replaces the earlier release for this period.",
        "chart_bar": "Bar chart",
        "chart_heatmap": "Heat map",
        "chart_note": "Suppressed cells are shown hatched with x; they are not zero.",
        "no_data": "no data",
        "no_data_text": "no data: no company reported this combination",
        "suppressed_short": "suppressed",
        "title": "Title",
        "page": "Page &P of &N",
        "notes": "Notes",
        "report": "Monitoring tables",
        "audit_title": "Disclosure audit (secretariat only)",
        "audit_warning": "Internal document: contains suppression reasons and audit intervals. "
        "Never send this file to the committee.",
        "audit_summary": "Summary",
        "audit_summary_caption": "Audit summary",
        "audit_cost": "Suppression per table",
        "audit_cells_sheet": "cells",
        "audit_summary_sheet": "summary",
        "audit_all_tables": "all tables",
        "covenant": "Covenant",
        "created": "Created",
    },
    "nl": {
        "contents": "Inhoud",
        "total": "Totaal",
        "period": "Periode",
        "unit": "Eenheid",
        "audience": "Ontvanger",
        "released": "Vrijgegeven",
        "protocol": "Vertrouwelijkheidsprotocol",
        "version": "versie",
        "code_version": "Softwareversie",
        "table": "Tabel",
        "value": "Waarde",
        "code": "code",
        "level": "niveau",
        "legend_title": "Verklaring van tekens",
        "legend": "x = geheim: het cijfer zou gegevens van een individueel bedrijf kunnen onthullen",
        "coverage_title": "Wat de tabellen tonen",
        "coverage_note": "Cellen per tabel getoond als cijfer, als bereik (x 120–450) of geheim zonder bereik (x).",
        "coverage_published": "gepubliceerd",
        "coverage_ranged": "als bereik",
        "coverage_hidden": "geheim",
        "coverage_cells": "cellen",
        "range_legend": "x 120–450 = geheim; uit de gepubliceerde cijfers volgt dat de waarde in dit bereik ligt "
        "(≥ 120: ten minste 120)",
        "lower": "ondergrens indien geheim",
        "upper": "bovengrens indien geheim",
        "legend_text": "geheim: het cijfer zou gegevens van een individueel bedrijf kunnen onthullen",
        "method": "Cellen die gegevens van een individueel bedrijf zouden kunnen onthullen, zijn "
        "geheimgehouden (x). Waar nodig zijn ook andere cellen geheimgehouden, zodat verborgen "
        "cijfers niet uit totalen zijn terug te rekenen. Totalen omvatten de geheime cellen.",
        "revision": "Herziene publicatie: deze publicatie vervangt de eerdere publicatie over deze periode.",
        "chart_bar": "Staafdiagram",
        "chart_heatmap": "Warmtekaart",
        "chart_note": "Geheime cellen zijn gearceerd met x; ze zijn niet nul.",
        "no_data": "geen gegevens",
        "no_data_text": "geen gegevens: geen bedrijf rapporteerde deze combinatie",
        "suppressed_short": "geheim",
        "title": "Titel",
        "page": "Pagina &P van &N",
        "notes": "Toelichting",
        "report": "Monitoringtabellen",
        "audit_title": "Onthullingsaudit (alleen secretariaat)",
        "audit_warning": "Intern document: bevat redenen van geheimhouding en auditintervallen. "
        "Stuur dit bestand nooit naar de commissie.",
        "audit_summary": "Samenvatting",
        "audit_summary_caption": "Samenvatting van de audit",
        "audit_cost": "Geheimhouding per tabel",
        "audit_cells_sheet": "cellen",
        "audit_summary_sheet": "samenvatting",
        "audit_all_tables": "alle tabellen",
        "covenant": "Convenant",
        "created": "Aangemaakt",
    },
}

MONTHS = {
    "en": "January February March April May June July August September October November December".split(),
    "nl": "januari februari maart april mei juni juli augustus september oktober november december".split(),
}

# Characters that make a spreadsheet treat a text as a formula or a command (OWASP CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def period_label(period: str, language: str) -> str:
    """'2026-10' -> 'October 2026' / 'oktober 2026'."""
    year, month = period.split("-")
    return f"{MONTHS[language][int(month) - 1]} {year}"


def neutralise(text: str) -> str:
    """Prefix an apostrophe to text a spreadsheet could run as a formula; other text is unchanged."""
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def round_value(value: float, decimals: int) -> float:
    """The published figure: rounded to the decimals shown, so no file carries hidden precision."""
    rounded = round(float(value), decimals)
    return 0.0 if rounded == 0 else rounded  # no "-0"


def format_range(lo: float | None, hi: float | None, decimals: int, language: str) -> str:
    """A published range: '120–450', '≥ 120' or '≤ 450'; empty when nothing bounds the cell."""
    if lo is not None and hi is not None:
        return f"{format_number(lo, decimals, language)}–{format_number(hi, decimals, language)}"
    if lo is not None:
        return f"≥ {format_number(lo, decimals, language)}"
    if hi is not None:
        return f"≤ {format_number(hi, decimals, language)}"
    return ""


def format_number(value: float, decimals: int, language: str, grouping: bool = True) -> str:
    """Human number: en 1,234.5 / nl 1.234,5; without grouping for CSV cells that Excel must parse."""
    if not math.isfinite(value):
        raise ValueError(f"cannot format {value!r}")
    separator = "," if grouping else ""
    text = f"{round_value(value, decimals):{separator}.{decimals}f}"
    if language == "nl":
        text = text.replace(",", "\0").replace(".", ",").replace("\0", ".")
    return text
