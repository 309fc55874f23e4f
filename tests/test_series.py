"""Releases as a series (issue 17, leak 3): the committee receives every month, so the change of a cell between
two months is a cell of its own. When a company skips a month, joins, leaves or changes one figure, that
change is its contribution: the primary rules judge it, and the new month hides what it takes to protect it.

The checks here are the test's own: for every cell published in two months, which companies' figures differ
(computed from the submissions), and whether so few differ that the difference is theirs alone.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from aggregator import history
from aggregator.cellkey import CellKey, Coordinate, ViewKind
from aggregator.errors import ReleaseRefused
from aggregator.history.series import month_pairs
from aggregator.release.audit import render_audit_html
from imvo_submit.periods import Period
from support.lab import COTTON, FEB, JAN, MAR, PROTOCOL, TOTAL, WEIGHT, Lab, assert_ledger_is_safe, pattern

CARRY = PROTOCOL + '\n[series]\nnon_response = "carry_forward"\n'
BASE = {"cotton": 30.0, "polyester": 20.0, "wool": 25.0}
LINEN = CellKey(WEIGHT, [Coordinate("material", "linen")])


def six_companies(lab: Lab, months: tuple[str, ...], skip: dict[str, str] | None = None) -> None:
    """A-F report the same figures every month; `skip` = {company: month} leaves one month out, and then the
    companies that never skip also report linen, a cell the skipping ones are not in: every month shows something."""
    lab.company(*"ABCDEF")
    skip = skip or {}
    for month in months:
        for n, c in enumerate("ABCDEF"):
            if skip.get(c) != month:
                linen = {"linen": 10.0 + n} if skip and c not in skip else {}
                lab.submit(c, month, {m: w + n for m, w in BASE.items()} | linen)


def figures(lab: Lab, month: str) -> dict[tuple[str, str], float]:
    """(company, material) -> weight, from the accepted submissions (the test's own reading of the data)."""
    rows = lab.store.con.execute(
        "SELECT r.company_id, r.material, sum(r.weight_kg) FROM rows_textile_materials r JOIN submissions s "
        "USING (submission_id) WHERE s.state = 'accepted' AND r.period = ? GROUP BY ALL",
        [month],
    ).fetchall()
    return {(c, m): float(w) for c, m, w in rows}


def differing(lab: Lab, first: str, second: str, key: CellKey) -> set[str]:
    """The companies whose figures in the cell differ between two months (absent counts as differing)."""
    a, b = figures(lab, first), figures(lab, second)
    material = {c.code for c in key.coordinates}
    companies = {c for c, _ in (*a, *b)}

    def own(f, c):
        return sum(w for (who, m), w in f.items() if who == c and (not material or m in material))

    return {c for c in companies if abs(own(a, c) - own(b, c)) > 1e-9}


def assert_no_difference_isolates_a_few(lab: Lab, releases: dict[str, object], fewest: int = 3) -> None:
    """No cell published in two months may differ by the figures of fewer than `fewest` companies (and more
    than none): the committee would read their contributions off the difference."""
    months = sorted(releases)
    for i, first in enumerate(months):
        for second in months[i + 1 :]:
            one, two = pattern(releases[first]), pattern(releases[second])
            for key in (COTTON, TOTAL, *(CellKey(WEIGHT, [Coordinate("material", m)]) for m in ("polyester", "wool"))):
                if key in one and key in two and not one[key] and not two[key]:
                    changed = differing(lab, first, second, key)
                    assert not 0 < len(changed) < fewest, (first, second, str(key), changed)


def test_a_company_that_skips_a_month_is_not_read_off_the_difference(tmp_path: Path):
    # E sends nothing for February. January and February each pass the rules on their own (five or six
    # contributors), but February's cotton minus January's is E's cotton, and so on for every cell.
    lab = Lab(tmp_path)
    six_companies(lab, (JAN, FEB), skip={"E": FEB})
    releases = {JAN: lab.release(JAN), FEB: lab.release(FEB)}
    assert not any(pattern(releases[JAN]).values())
    assert releases[FEB].protected.audited_with == [releases[JAN].release_id]
    assert_no_difference_isolates_a_few(lab, releases)
    # E is in every cell but linen: February publishes linen and none of the others
    assert {str(k): hidden for k, hidden in pattern(releases[FEB]).items() if not hidden} == {str(LINEN): False}
    assert_ledger_is_safe(lab)


def test_a_month_that_would_show_nothing_is_not_released_and_the_next_is_read_against_the_last_released(
    tmp_path: Path,
):
    # E skips February and is in every cell: February would show nothing, so it is refused and never reaches
    # the committee. March (E back, every figure as in January) is then a difference from January alone.
    lab = Lab(tmp_path)
    lab.company(*"ABCDEF")
    for month in (JAN, FEB, MAR):
        for n, c in enumerate("ABCDEF"):
            if (c, month) != ("E", FEB):
                lab.submit(c, month, {m: w + n for m, w in BASE.items()})
    january = lab.release(JAN)
    with pytest.raises(ReleaseRefused, match="release of 2025-02 for 'committee' would show no figure"):
        lab.release(FEB)
    march = lab.release(MAR)
    assert march.protected.audited_with == [january.release_id]
    assert not any(pattern(march).values())  # nothing differs from what the committee holds
    assert [r for (r,) in lab.store.con.execute("SELECT period FROM releases ORDER BY period").fetchall()] == [
        JAN,
        MAR,
    ]
    assert_ledger_is_safe(lab)


def test_one_changed_figure_hides_its_cell_and_what_adds_up_to_it_not_the_rest(tmp_path: Path):
    lab = Lab(tmp_path)
    six_companies(lab, (JAN,))
    for n, c in enumerate("ABCDEF"):
        lab.submit(c, FEB, {m: w + n + (7.0 if (c, m) == ("A", "cotton") else 0.0) for m, w in BASE.items()})
    releases = {JAN: lab.release(JAN), FEB: lab.release(FEB)}
    feb = pattern(releases[FEB])
    assert feb[COTTON] and feb[TOTAL]  # A's +7 alone
    assert not all(feb.values())  # unchanged cells are published (a partner aside)
    assert_no_difference_isolates_a_few(lab, releases)
    assert_ledger_is_safe(lab)


def test_months_that_are_not_consecutive_are_differences_too(tmp_path: Path):
    # Between January and March only B changed (in February, C changed back and forth with B).
    lab = Lab(tmp_path)
    lab.company(*"ABCDEF")
    changes = {FEB: {"B": 5.0, "C": 4.0, "D": 3.0}, MAR: {"B": 5.0}}
    for month in (JAN, FEB, MAR):
        for n, c in enumerate("ABCDEF"):
            extra = changes.get(month, {}).get(c, 0.0)
            lab.submit(c, month, {m: w + n + (extra if m == "wool" else 0.0) for m, w in BASE.items()})
    releases = {m: lab.release(m) for m in (JAN, FEB, MAR)}
    assert_no_difference_isolates_a_few(lab, releases)
    assert pattern(releases[MAR])[CellKey(WEIGHT, [Coordinate("material", "wool")])]
    assert_ledger_is_safe(lab)


def test_carried_forward_figures_change_nothing_and_are_flagged_and_counted(tmp_path: Path):
    lab = Lab(tmp_path, CARRY)
    assert lab.protocol.non_response == "carry_forward"
    six_companies(lab, (JAN, FEB), skip={"E": FEB})
    releases = {JAN: lab.release(JAN), FEB: lab.release(FEB)}
    assert not any(pattern(releases[FEB]).values())  # E counts with its January figures: nothing differs
    table = releases[FEB].release.tables[0]
    assert (
        "latest earlier figures" in table.footnote and "latest earlier" not in releases[JAN].release.tables[0].footnote
    )
    assert releases[FEB].release.internal_summary["carried_forward"] == {"materials": 1}
    assert "carried_forward" not in releases[FEB].release.audit_summary  # not in the manifest
    assert "figures carried forward" in render_audit_html(releases[FEB].release)
    # E's figures really count: February's cotton is January's
    cotton = releases[FEB].protected.problem.keys.index(COTTON)
    assert releases[FEB].protected.problem.values[cotton] == releases[JAN].protected.problem.values[cotton]
    assert_ledger_is_safe(lab)


def test_a_company_revoked_in_the_registry_is_not_carried_forward(tmp_path: Path):
    lab = Lab(tmp_path, CARRY)
    six_companies(lab, (JAN, FEB), skip={"E": FEB})
    lab.store.con.execute("UPDATE companies SET status = 'revoked' WHERE company_id = 'E'")
    lab.release(JAN)
    february = lab.release(FEB)
    assert february.release.internal_summary["carried_forward"] == {}
    assert pattern(february)[COTTON]  # E left: its absence is a difference again


def test_the_difference_is_a_cell_of_its_own_in_the_model(tmp_path: Path):
    lab = Lab(tmp_path)
    six_companies(lab, (JAN, FEB), skip={"E": FEB})
    lab.release(JAN)
    combined, result = history.audit_history(lab.store, lab.protocol, "committee")
    assert combined.differences == 0  # one month recorded: nothing to subtract yet
    lab.release(FEB)
    combined, result = history.audit_history(lab.store, lab.protocol, "committee")
    difference = COTTON.in_view(ViewKind.DIFFERENCE, f"{JAN}..{FEB}")
    assert combined.differences == 4 and difference in combined.problem.keys and result.passed
    assert difference.describe() == f"{COTTON} [its change from {JAN} to {FEB}]"
    assert CellKey.parse(str(difference)) == difference
    i = combined.problem.keys.index(difference)
    assert combined.problem.values[i] == -(BASE["cotton"] + 4)  # E (the fifth company) left out
    assert combined.problem.insiders.values_at("E", [i])[0] == -(BASE["cotton"] + 4)


@pytest.mark.parametrize(
    ("new", "expected"),
    [
        ([FEB], [(JAN, FEB), (FEB, MAR)]),
        ([MAR], [(JAN, MAR), (FEB, MAR)]),
        (None, [(JAN, FEB), (JAN, MAR), (FEB, MAR)]),
    ],
)
def test_the_pairs_of_months_a_release_is_subtracted_over(new, expected):
    months = [Period.parse(m) for m in (MAR, JAN, FEB)]
    wanted = None if new is None else [Period.parse(m) for m in new]
    assert [(str(a), str(b)) for a, b in month_pairs(months, wanted)] == expected


def test_unchanged_months_come_from_the_ledger_and_a_changed_one_is_computed_again(tmp_path: Path, monkeypatch):
    from aggregator.history import protect as door

    lab = Lab(tmp_path)
    six_companies(lab, (JAN, FEB, MAR))
    lab.release(JAN)
    lab.release(FEB)
    lab.submit("A", JAN, {m: w + (9.0 if m == "cotton" else 0.0) for m, w in BASE.items()})  # a late correction
    computed: list[str] = []
    original = door.current_snapshot

    def counted(store, protocol, audiences, month, *rest):
        computed.append(str(month))
        return original(store, protocol, audiences, month, *rest)

    monkeypatch.setattr(door, "current_snapshot", counted)
    lab.release(MAR)
    # February is read from its release (nothing changed since); January changed, March is new
    assert sorted(computed) == [JAN, MAR]
    assert_ledger_is_safe(lab)
