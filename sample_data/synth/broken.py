"""The broken submissions and envelope-level cases of the demo, and broken.toml that describes them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from .common import TEMPLATES, CovenantData, SampleDataError
from .files import submission_frame, submission_path, to_pandas, write_submission_file
from .gold import GOLD_GROUPS, GOLD_WAIVERS
from .sectors import SPECS
from .textile import TEXTILE_SCENARIO


@dataclass
class _Case:
    """One entry of broken.toml; validation-level cases carry the broken frame they write."""

    id: str
    level: str
    covenant: str
    period: str
    company: str
    template: str
    file: str
    problem: str
    expected: str
    rows: list[int] = field(default_factory=list)
    extra: dict[str, str] = field(default_factory=dict)
    frame: pd.DataFrame | None = None
    file_format: str = "csv"

    def write(self, root: Path) -> None:
        if self.frame is not None:
            write_submission_file(self.frame, root / self.file, self.template, self.file_format)


@dataclass
class _Correction(_Case):
    original: pd.DataFrame | None = None


class CompanyPicker:
    """Hands out ordinary companies (not part of the rule scenario), each at most once, in id order."""

    def __init__(self, covenants: Sequence[CovenantData]):
        self.data = {d.covenant: d for d in covenants}
        self.used: set[str] = set()
        gold = set(GOLD_GROUPS) | set(GOLD_WAIVERS)
        self.reserved = {f"T{i + 1:03d}" for i in TEXTILE_SCENARIO.companies} | {f"G{i + 1:03d}" for i in gold}
        for spec in SPECS.values():  # groups and waivers keep their files
            self.reserved |= {f"{spec.prefix}{i + 1:03d}" for i in set(spec.groups) | set(spec.waivers)}

    def pick(
        self, covenant: str, period: str, file_format: str, min_rows: int = 8, template: str | None = None
    ) -> tuple[str, str]:
        """An unused company with at least `min_rows` rows of `template` (default: the first) in `period`."""
        data = self.data[covenant]
        table = data.tables[template or TEMPLATES[covenant][0]]
        counts = to_pandas(table.filter(pc.equal(table["period"], period))).groupby("company_id").size()
        formats = dict(
            zip(
                data.companies["company_id"].to_pylist(),
                data.companies["file_format"].to_pylist(),
                strict=True,
            )
        )
        for company_id in sorted(counts.index):
            if company_id in self.used or company_id in self.reserved or counts[company_id] < min_rows:
                continue
            if formats[company_id] == file_format:
                self.used.add(company_id)
                return company_id, formats[company_id]
        raise SampleDataError(f"no unused {covenant} company sends {file_format} in {period}")


def _case(data, picker, case_id, template, period, file_format, problem, expected, damage) -> _Case:
    min_rows = 8 if data.covenant == "textile" else 1
    company, fmt = picker.pick(data.covenant, period, file_format, min_rows=min_rows, template=template)
    frame = submission_frame(data, template, company, period)
    frame, rows = damage(frame)
    path = submission_path(Path("submissions_broken"), data.covenant, period, company, template, fmt)
    return _Case(case_id, "validation", data.covenant, period, company, template, path.as_posix(), problem,
                 expected, rows, frame=frame, file_format=fmt)  # fmt: skip


def sheet_row(position: int) -> int:
    """Spreadsheet row number of a data row (the header is row 1)."""
    return position + 2


def _drop_volume(frame):
    return frame.drop(columns=["order_volume_pieces"]), []


def _bad_countries(frame):
    frame = frame.copy()
    frame.loc[1, "country"] = "XX"
    frame.loc[4, "country"] = "Chna"
    return frame, [sheet_row(1), sheet_row(4)]


def _negative_volume(frame):
    frame = frame.copy()
    position = int(np.flatnonzero(frame["order_volume_pieces"].to_numpy() > 0)[0])
    frame.loc[position, "order_volume_pieces"] = -1200
    return frame, [sheet_row(position)]


def _prioritised_not_identified(frame):
    frame = frame.copy()
    position = int(np.flatnonzero(~frame["risk_identified"].to_numpy(dtype=bool))[0])
    frame.loc[position, "risk_prioritised"] = True
    return frame, [sheet_row(position)]


def _duplicate_theme(frame):
    copy = frame.iloc[[3]].copy()
    copy["locations_affected"] = copy["locations_affected"] + 1  # a conflicting second answer
    out = pd.concat([frame, copy], ignore_index=True)
    return out, [sheet_row(3), sheet_row(len(out) - 1)]


def _too_many_resolved(frame):
    frame = frame.copy()
    position = 6
    frame.loc[position, "grievances_resolved"] = frame.loc[position, "grievances_received"] + 2
    return frame, [sheet_row(position)]


def _first_row(column: str, value: str):
    """A change of one value in the file's first row: a typed mistake the checks must name."""

    def change(frame):
        frame = frame.copy()
        frame.loc[0, column] = value
        return frame, [sheet_row(0)]

    return change


_QUARANTINE = "quarantined; the report names {what}; no row of the file is stored"


def broken_cases(textile: CovenantData, gold: CovenantData, picker: CompanyPicker) -> list[_Case]:
    last, middle = textile.periods[-1], textile.periods[len(textile.periods) // 2]
    t, g = textile, gold
    return [
        _case(t, picker, "missing_column", "production_locations", last, "xlsx",
              "the required column order_volume_pieces is missing",
              _QUARANTINE.format(what="the missing column"), _drop_volume),
        _case(t, picker, "unknown_country", "production_locations", last, "csv_nl",
              "two country codes are not ISO 3166: 'XX' and the typo 'Chna' (Dutch-locale CSV)",
              _QUARANTINE.format(what="both rows at once"), _bad_countries),
        _case(t, picker, "negative_volume", "production_locations", last, "csv",
              "order_volume_pieces is negative (-1200)",
              _QUARANTINE.format(what="the row"), _negative_volume),
        _case(t, picker, "prioritised_not_identified", "risk_assessment", last, "csv",
              "risk_prioritised is true while risk_identified is false",
              _QUARANTINE.format(what="the row"), _prioritised_not_identified),
        _case(t, picker, "duplicate_country_theme", "risk_assessment", last, "csv_nl",
              "the same (country, theme) appears twice with different answers",
              _QUARANTINE.format(what="both rows"), _duplicate_theme),
        _case(t, picker, "resolved_exceeds_received", "risk_assessment", last, "xlsx",
              "grievances_resolved is larger than grievances_received",
              _QUARANTINE.format(what="the row"), _too_many_resolved),
        _case(g, picker, "bad_smelter_id", "refiners", middle, "csv",
              "smelter_id 'CID12345' does not match CID + six digits",
              _QUARANTINE.format(what="the row"), _first_row("smelter_id", "CID12345")),
    ]  # fmt: skip


def _resolved_over_received(frame):
    frame = frame.copy()
    frame.loc[0, "grievances_resolved"] = frame.loc[0, "grievances_received"] + 3
    return frame, [sheet_row(0)]


def _amount_in_words(frame):
    frame = frame.astype({"investment_eur_million": object})
    frame.loc[1, "investment_eur_million"] = "12 mln"
    return frame, [sheet_row(1)]


def sector_broken_cases(covenants: Sequence[CovenantData], picker: CompanyPicker) -> list[_Case]:
    """Broken files of banking, insurance, food and forestry: each must be quarantined with a plain reason."""
    data = {d.covenant: d for d in covenants}
    b, i, f, w = data["banking"], data["insurance"], data["food"], data["forestry"]
    last, middle = b.periods[-1], b.periods[len(b.periods) // 2]
    return [
        _case(b, picker, "nace_division_not_section", "exposure", last, "csv_nl",
              "sector 'B05' is a NACE division; the template takes the 21 section letters A-U (Dutch-locale CSV)",
              _QUARANTINE.format(what="the row and the allowed letters"), _first_row("sector", "B05")),
        _case(b, picker, "bank_resolved_exceeds_received", "grievances", middle, "xlsx",
              "grievances_resolved is larger than grievances_received",
              _QUARANTINE.format(what="the row"), _resolved_over_received),
        _case(i, picker, "amount_in_words", "investments", last, "csv",
              "investment_eur_million is written as '12 mln' instead of a number",
              _QUARANTINE.format(what="the row"), _amount_in_words),
        _case(f, picker, "unknown_commodity", "sourcing", last, "csv",
              "commodity 'cacao' (Dutch spelling) is not one of the listed commodity codes (cocoa, ...)",
              _QUARANTINE.format(what="the row and the allowed codes"), _first_row("commodity", "cacao")),
        _case(w, picker, "unknown_certification", "timber", middle, "csv",
              "certification 'FSC Mix 70%' is a label claim, not one of fsc, pefc, none",
              _QUARANTINE.format(what="the row and the allowed codes"), _first_row("certification", "FSC Mix 70%")),
    ]  # fmt: skip


def correction_case(textile: CovenantData, picker: CompanyPicker) -> _Correction:
    """A company's first-period file has an extra zero on one volume; it later sends the corrected file."""
    period, template = textile.periods[0], "production_locations"
    company, fmt = picker.pick("textile", period, "csv")
    corrected = submission_frame(textile, template, company, period)
    # avoid the scenario's dominance countries so the typo does not disturb the designed shares
    eligible = ~corrected["country"].isin([code for _, code, _ in TEXTILE_SCENARIO.dominance])
    position = int(corrected["order_volume_pieces"].where(eligible, -1).to_numpy().argmax())
    original = corrected.copy()
    original.loc[position, "order_volume_pieces"] = corrected.loc[position, "order_volume_pieces"] * 10
    right = int(corrected.loc[position, "order_volume_pieces"])
    path = submission_path(Path("resubmissions"), "textile", period, company, template, fmt)
    supersedes = submission_path(Path("submissions"), "textile", period, company, template, fmt)
    return _Correction(
        "corrected_resubmission", "envelope", "textile", period, company, template, path.as_posix(),
        f"the original file has an extra zero on row {sheet_row(position)}: order_volume_pieces "
        f"{right * 10} instead of {right}; the company sends this corrected file after the batch",
        "accepted; the original submission becomes superseded (superseded_by = the new one); aggregates for "
        f"{period} use the corrected rows and a new release is audited together with the published one",
        [sheet_row(position)], {"supersedes": supersedes.as_posix(), "action": "seal and deliver after the "
        "original was accepted"}, frame=corrected, file_format=fmt, original=original,
    )  # fmt: skip


def envelope_cases(textile: CovenantData, picker: CompanyPicker, correction: _Correction) -> list[_Case]:
    first, second, third = textile.periods[0], textile.periods[1], textile.periods[2]

    def source(case_id, period, template, problem, expected, extra) -> _Case:
        company, fmt = picker.pick("textile", period, "csv")
        path = submission_path(Path("submissions"), "textile", period, company, template, fmt).as_posix()
        return _Case(case_id, "envelope", "textile", period, company, template, path, problem, expected,
                     extra=extra)  # fmt: skip

    return [
        source("wrong_period", second, "living_wage",
               f"the envelope header says period {third} but the file belongs to {second}",
               f"quarantined: the header period {third} differs from the period of the batch ({second}); "
               "stored under neither period", {"seal_period": third,
               "action": f"seal with period {third} and deliver with the {second} batch"}),
        source("tampered", first, "materials", "one byte of the sealed file was changed after sealing",
               "quarantined: the signature or authentication tag does not verify; "
               "nothing is decrypted or stored",
               {"action": "seal normally, then flip one bit of the last byte of the sealed file"}),
        source("unregistered_company", first, "production_locations",
               "the file is sealed by company T999, which is not in companies.csv",
               "quarantined: unknown company T999; nothing stored",
               {"seal_as_company": "T999", "action": "seal with a fresh key pair as company T999"}),
        source("exact_duplicate", first, "risk_assessment", "the same sealed file is delivered twice",
               "the first copy is accepted; the second is recorded as duplicate (same file hash) "
               "and adds no rows",
               {"action": "deliver the identical sealed file a second time"}),
        correction,
    ]  # fmt: skip


def _toml_value(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)  # JSON strings and int lists are valid TOML


def broken_toml(cases: Sequence[_Case]) -> str:
    lines = [
        "# Broken and adversarial submissions for the demo; written by sample_data/generate.py, do not edit.",
        '# level = "validation": `file` is a broken plaintext submission; intake must quarantine it.',
        '# level = "envelope": `file` is a valid plaintext that the demo seals in the way `action` says.',
        "# Paths are relative to sample_data/. rows are spreadsheet row numbers (the header is row 1).",
    ]
    for case in cases:
        lines += ["", "[[case]]"]
        fields = {
            "id": case.id, "level": case.level, "covenant": case.covenant, "period": case.period,
            "company": case.company, "template": case.template, "file": case.file, **case.extra,
            "problem": case.problem, "expected": case.expected, "rows": case.rows,
        }  # fmt: skip
        lines += [f"{key} = {_toml_value(value)}" for key, value in fields.items()]
    return "\n".join(lines) + "\n"
