"""Validation: submission templates as data (rules/), readers, checks, reports and the Excel template.

One door per job: `load_template` (rules), `read_table` (bytes -> raw frame + warnings), `validate`
(raw frame -> typed frame or a `ValidationReport`), `check_file` (all of it; used by both the company's
`imvo-submit check` and the secretariat's intake so they always agree) and `write_template` (Excel).
"""

from __future__ import annotations

# Imported eagerly: the function `validate` must shadow the submodule of the same name.
from imvo_submit.validation import reference
from imvo_submit.validation.excel_template import write_template
from imvo_submit.validation.readers import ReadWarning, read_table
from imvo_submit.validation.report import ValidationReport, write_report_csv, write_report_xlsx
from imvo_submit.validation.rules import (
    Column,
    CrossCheck,
    Template,
    check_covenant,
    check_template,
    covenant_info,
    covenants,
    load_template,
    rules_version,
    templates_for,
    using_rules,
)
from imvo_submit.validation.validate import (
    CheckResult,
    ValidationResult,
    check_file,
    check_files,
    filled_template_sheets,
    validate,
    validate_many,
)

__all__ = [
    "CheckResult",
    "Column",
    "CrossCheck",
    "ReadWarning",
    "Template",
    "ValidationReport",
    "ValidationResult",
    "check_covenant",
    "check_file",
    "check_files",
    "check_template",
    "covenant_info",
    "covenants",
    "filled_template_sheets",
    "load_template",
    "read_table",
    "reference",
    "rules_version",
    "templates_for",
    "using_rules",
    "validate",
    "validate_many",
    "write_report_csv",
    "write_report_xlsx",
    "write_template",
]
