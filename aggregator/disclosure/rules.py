"""Primary disclosure rules: which cells are unsafe by themselves and how much protection each needs.

Every rule works on whole arrays of cells at once (numpy). Exact boundaries, waivers, the negative-value
policy and the protection amounts are documented in docs/rules.md; the tests check both sides of each one.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from aggregator.disclosure.model import CellStats, PrimaryResult, RuleParams
from aggregator.errors import DisclosureError

# Relative tolerance for the boundary comparisons. A cell sits exactly on a boundary (a 25.0% share with
# k = 25) is safe; rounding in sums such as total - waived must not flip it to unsafe, so a rule fires only
# when it is exceeded by more than this fraction of the quantities compared.
REL_TOL = 1e-9

NEGATIVE_POLICIES = ("refuse", "absolute")
_SHOWN_CELLS = 10


class NegativeContributionsError(DisclosureError):
    """Cells hold negative contributions while the protocol refuses them; `cells` lists their indices."""

    def __init__(self, cells: tuple[int, ...]):
        shown = ", ".join(str(c) for c in cells[:_SHOWN_CELLS])
        more = f" and {len(cells) - _SHOWN_CELLS} more" if len(cells) > _SHOWN_CELLS else ""
        super().__init__(
            f"{len(cells)} cell(s) have negative contributions, which the dominance and p% rules cannot "
            f"judge: cells {shown}{more}",
            hint='set negative_values = "absolute" in the protocol to apply the rules to absolute values, '
            "or correct the submissions",
        )
        self.cells = cells


def evaluate_primary(
    stats: CellStats, params: RuleParams, overrides: Mapping[int, bool] | None = None
) -> PrimaryResult:
    """Apply every primary rule of `params` to every cell; return unsafe flags, UPL = LPL and reasons.

    `overrides` maps a cell index to True (force unsafe) or False (force safe). Raises
    NegativeContributionsError (a DisclosureError) for negative contributions under policy "refuse".
    """
    size = _check_shapes(stats, params)
    _check_negative_policy(stats, params)
    protected = np.asarray(stats.total, dtype=float) - np.asarray(stats.waived, dtype=float)
    top = np.asarray(stats.top, dtype=float)
    n = np.asarray(stats.n)
    # Empty cells (no contributor at all) and cells whose contributors all waived hold nothing to protect.
    judged = (np.asarray(stats.n_all) > 0) & (n > 0)

    fired: list[tuple[str, np.ndarray, np.ndarray]] = []  # (rule name, unsafe mask, protection)
    fired.append(("threshold", *_threshold(n, protected, params)))
    for n_top, k in params.dominance:
        fired.append((f"dominance({n_top},{k:g})", *_dominance(top, protected, n_top, k)))
    if params.p_percent is not None:
        p, coalition = params.p_percent
        fired.append(("p%", *_prior_share(top, protected, p / 100.0, coalition)))
    if params.pq is not None:
        p, q, coalition = params.pq
        fired.append(("pq", *_prior_share(top, protected, p / q, coalition)))

    unsafe = np.zeros(size, dtype=bool)
    protection = np.zeros(size)
    reasons: list[list[str]] = [[] for _ in range(size)]
    for name, mask, amount in fired:
        _merge(name, mask & judged, amount, unsafe, protection, reasons)
    upl, lpl = protection.copy(), protection.copy()
    if params.zero_cell_protection is not None:
        _apply_zero_rule(protected, top, judged, params.zero_cell_protection, unsafe, upl, reasons)
    if overrides:
        _apply_overrides(overrides, _safety_range(protected, params), unsafe, upl, lpl, reasons)
    return PrimaryResult(unsafe=unsafe, upl=upl, lpl=lpl, reasons=[tuple(r) for r in reasons])


def _check_shapes(stats: CellStats, params: RuleParams) -> int:
    """Reject stats that break the builder's contract (programming errors, not user mistakes)."""
    if params.negative_values not in NEGATIVE_POLICIES:
        raise DisclosureError(
            f"unknown negative_values policy {params.negative_values!r}",
            hint='use "refuse" or "absolute" in the protocol',
        )
    size = len(stats.total)
    for name in ("n", "waived", "n_all", "has_negative"):
        if len(getattr(stats, name)) != size:
            raise ValueError(f"CellStats.{name} has {len(getattr(stats, name))} entries, total has {size}")
    top = np.asarray(stats.top)
    if top.ndim != 2 or top.shape[0] != size or top.shape[1] < params.top_k:
        raise ValueError(f"CellStats.top must have shape ({size}, >= {params.top_k}), got {top.shape}")
    return size


def _check_negative_policy(stats: CellStats, params: RuleParams) -> None:
    negative = np.asarray(stats.has_negative, dtype=bool) | (np.asarray(stats.top) < 0).any(axis=1)
    negative &= np.asarray(stats.n_all) > 0
    if params.negative_values == "refuse" and negative.any():
        raise NegativeContributionsError(tuple(int(i) for i in np.flatnonzero(negative)))
    if params.negative_values == "absolute" and (np.asarray(stats.top) < 0).any():
        raise ValueError('negative_values = "absolute" needs CellStats.top as absolute values (|x|)')


def _exceeds(amount: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """True where `amount` is positive beyond rounding noise relative to `scale`."""
    return amount > REL_TOL * np.maximum(np.abs(scale), 1e-300)


def _safety_range(protected: np.ndarray, params: RuleParams) -> np.ndarray:
    return np.maximum(params.safety_range_percent / 100.0 * np.abs(protected), 1.0)


def _threshold(n: np.ndarray, protected: np.ndarray, params: RuleParams) -> tuple[np.ndarray, np.ndarray]:
    unsafe = (n > 0) & (n < params.min_contributors)
    return unsafe, _safety_range(protected, params)


def _dominance(top: np.ndarray, protected: np.ndarray, n_top: int, k: float) -> tuple[np.ndarray, np.ndarray]:
    """(n,k)-dominance: unsafe when T_n > k/100 * X'; needs (100/k) * T_n - X'."""
    t_n = top[:, :n_top].sum(axis=1)
    needed = (100.0 / k) * t_n - protected
    return _exceeds(needed, np.maximum(t_n, protected) * (100.0 / k)), needed


def _prior_share(top: np.ndarray, protected: np.ndarray, share: float, coalition: int) -> tuple[np.ndarray, np.ndarray]:
    """p% and (p,q): unsafe when X' - T_(c+1) < share * x1; needs share * x1 - (X' - T_(c+1))."""
    x1 = top[:, 0]
    rest = protected - top[:, : coalition + 1].sum(axis=1)
    needed = share * x1 - rest
    return _exceeds(needed, np.maximum(np.abs(protected), x1)), needed


def _merge(
    name: str,
    mask: np.ndarray,
    amount: np.ndarray,
    unsafe: np.ndarray,
    protection: np.ndarray,
    reasons: list[list[str]],
) -> None:
    """Fold one rule into the running result: the required protection is the largest over fired rules."""
    unsafe |= mask
    np.maximum(protection, np.where(mask, amount, 0.0), out=protection)
    for i in np.flatnonzero(mask):
        reasons[i].append(name)


def _apply_zero_rule(
    protected: np.ndarray,
    top: np.ndarray,
    judged: np.ndarray,
    amount: float,
    unsafe: np.ndarray,
    upl: np.ndarray,
    reasons: list[list[str]],
) -> None:
    """Zero cell: X' == 0 with contributors is unsafe; protection is upward only (nothing lies below 0)."""
    scale = np.maximum(np.abs(top).sum(axis=1), 1.0)
    mask = judged & (np.abs(protected) <= REL_TOL * scale)
    unsafe |= mask
    np.maximum(upl, np.where(mask, amount, 0.0), out=upl)
    for i in np.flatnonzero(mask):
        reasons[i].append("zero")


def _apply_overrides(
    overrides: Mapping[int, bool],
    safety_range: np.ndarray,
    unsafe: np.ndarray,
    upl: np.ndarray,
    lpl: np.ndarray,
    reasons: list[list[str]],
) -> None:
    """Manual decisions win over the rules; forced-unsafe cells need at least the safety range."""
    for cell, force_unsafe in sorted(overrides.items()):
        if not 0 <= cell < len(unsafe):
            raise ValueError(f"override for cell {cell} but the table has {len(unsafe)} cells")
        unsafe[cell] = bool(force_unsafe)
        if force_unsafe:
            upl[cell] = max(upl[cell], safety_range[cell])
            lpl[cell] = max(lpl[cell], safety_range[cell])
        else:
            upl[cell] = lpl[cell] = 0.0
        reasons[cell].append("override")
