"""bench/mutation.py counts a mutant that only lowercases SQL keywords as equivalent: it must not take any other
case change for one (that would inflate a mutation score)."""

from __future__ import annotations

import pytest

from bench.mutation import sql_keywords_lowercased


def diff(before: str, after: str) -> str:
    return f"-{before}\n+{after}"


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (
            'x = con.execute("SELECT DISTINCT span FROM ledger_cells")',
            'x = con.execute("select distinct span from ledger_cells")',
        ),
        (
            '"FROM releases r LEFT JOIN released_cells c USING (release_id) "',
            '"from releases r left join released_cells c using (release_id) "',
        ),
        (
            "\"count(c.cell_key) FILTER (WHERE c.status <> 'published') AS suppressed \"",
            "\"count(c.cell_key) filter (where c.status <> 'published') as suppressed \"",
        ),
    ],
)
def test_keywords_in_lower_case_are_the_same_query(before: str, after: str) -> None:
    assert sql_keywords_lowercased(diff(before, after))


@pytest.mark.parametrize(
    ("before", "after"),
    [
        # names in upper case: DuckDB keeps an alias's case in the result's column names
        ('"count(*) AS cells FROM t"', '"COUNT(*) AS CELLS FROM T"'),
        ('"SELECT a AS Cells FROM t"', '"select a as cells from t"'),
        # a quoted literal is a value: 'Published' and 'published' differ
        ("\"CASE WHEN status = 'Published' THEN 1 END\"", "\"case when status = 'published' then 1 end\""),
        # a message, not a query, even though its words are keywords
        ('"do NOT edit IF in doubt"', '"do not edit if in doubt"'),
        # not a case change at all
        ('"SELECT a FROM t"', '"XXSELECT a FROM tXX"'),
    ],
)
def test_any_other_case_change_is_not_taken_for_the_same_query(before: str, after: str) -> None:
    assert not sql_keywords_lowercased(diff(before, after))


def test_a_mutant_of_several_lines_is_never_taken_for_one() -> None:
    assert not sql_keywords_lowercased('-"SELECT a"\n-"FROM t"\n+"select a"\n+"from t"')
