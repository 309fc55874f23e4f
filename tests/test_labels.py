"""Committee outputs name every dimension and code in the protocol's language, never as a raw code."""

from pathlib import Path

import pytest

from aggregator.protocol import code_label, dimension_label, load_protocol
from imvo_submit.validation import load_template

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("covenant", ["textile", "gold", "banking", "insurance", "food", "forestry"])
def test_every_flat_dimension_and_its_codes_have_english_and_dutch_labels(covenant):
    protocol = load_protocol(ROOT / "protocols" / f"{covenant}.toml")
    for table in protocol.tables:
        template = load_template(covenant, table.template)
        for dim in table.dimensions:
            assert dimension_label(dim.column, "nl") != dimension_label(dim.column, "en"), dim.column
            if dim.hierarchy is not None:
                continue
            for code in template.column(dim.column).allowed:
                en, nl = (code_label(protocol, dim, code, lang) for lang in ("en", "nl"))
                assert en and nl and "_" not in en + nl, (dim.column, code)


def test_codes_and_totals_read_as_words():
    protocol = load_protocol(ROOT / "protocols" / "textile.toml")
    table = protocol.table("materials_by_certification")
    material, certification = table.dimensions
    assert code_label(protocol, certification, "none", "nl") == "Geen certificaat"
    assert code_label(protocol, certification, "gots", "en") == "GOTS"
    assert code_label(protocol, material, "_T", "nl") == "Totaal"
    assert dimension_label("material", "nl") == "Materiaal"
