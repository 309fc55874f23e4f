"""A protection problem assembled cell by cell from several snapshots (the combined problem's builder)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from aggregator.cellkey import CellKey, ViewKind
from aggregator.disclosure.bounds import tightened
from aggregator.disclosure.contributions import Contributions
from aggregator.disclosure.model import ProtectionProblem
from imvo_submit.periods import Period

from .snapshot import Snapshot

COLUMNS = ("value", "lower", "upper", "upl", "lpl", "primary", "fixed", "cost", "epoch")


class ProblemBuilder:
    """Cells, relations and contributions added one snapshot (or cell) at a time."""

    def __init__(self) -> None:
        self.keys: list[CellKey] = []
        self.columns: dict[str, list] = {name: [] for name in COLUMNS}
        self.relations: list[tuple[int, tuple[int, ...]]] = []
        self.own: list[Contributions] = []  # every contributor's own contribution to each cell
        self.scale: list[tuple | None] = []  # (monthly quantity, helper?) for the bounds; None: no measure
        self.months: list[frozenset[Period]] = []  # the months each cell is about

    def add(self, key: CellKey, scale: tuple | None = None, months: Iterable[Period] = (), **cell) -> int:
        self.keys.append(key)
        self.scale.append(scale)
        self.months.append(frozenset(months))
        for column, values in self.columns.items():
            values.append(cell[column])
        return len(self.keys) - 1

    def add_snapshot(self, snap: Snapshot, view: tuple[ViewKind, str] | None, *, new: bool, epoch: int) -> list[int]:
        """Every cell of the snapshot (seen through `view`), its relations and its contributions.

        New cells keep their verdict; earlier cells stay hidden when they were (secondary ones need no
        protection, so the model may assume the attacker knows them: that only makes it stricter)."""
        p = snap.problem
        ids = []
        for i, key in enumerate(p.keys):
            hidden = bool(snap.hidden[i])
            ids.append(
                self.add(
                    key.in_view(*view) if view else key,
                    (key.quantity.monthly, key.is_helper),
                    snap.spans[i],
                    value=float(p.values[i]),
                    lower=float(p.lower[i]),
                    upper=float(p.upper[i]),
                    upl=float(p.upl[i]),
                    lpl=float(p.lpl[i]),
                    primary=bool(p.primary[i]) if new else hidden and bool(p.primary[i]),
                    fixed=bool(p.fixed[i]) if new else not hidden,
                    cost=float(p.cost[i]) if new else 0.0,
                    epoch=epoch,
                )
            )
        self.relations += [(ids[t], tuple(ids[x] for x in parts)) for t, parts in p.relations]
        own = p.insiders
        self.own.append(Contributions(own.names, own.who, np.asarray(ids, dtype=np.int64)[own.cell], own.value))
        return ids

    def publish(self, cell: int, epoch: int) -> None:
        """The cell is a known fact from release `epoch` on."""
        self.columns["fixed"][cell], self.columns["primary"][cell] = True, False
        self.columns["epoch"][cell] = epoch

    def judge_only(self, months: Iterable[Period]) -> None:
        """Drop the requirement of every cell about none of these months (still hidden where it was). Cells of
        other months are linked to the new release only through differences, which are free variables of
        their own: no pattern of the new release changes what an attacker derives about them, and their
        releases were protected when they were made."""
        wanted = frozenset(months)
        for i, about in enumerate(self.months):
            if not about & wanted:
                self.columns["upl"][i] = self.columns["lpl"][i] = 0.0

    def widen_bounds(self) -> None:
        """Give every cell of one measure the widest a-priori bounds any snapshot gives it.

        Bounds are relative (a factor times the largest cell of a release), so linked cells of two releases
        would otherwise get the tighter of two bounds, which neither release was protected against; wider
        bounds only weaken the attacker, and the requirement cap rises with them."""
        widest: dict[tuple, tuple[float, float]] = {}
        for scale, lo, hi in zip(self.scale, self.columns["lower"], self.columns["upper"], strict=True):
            if scale is not None:
                old = widest.get(scale, (lo, hi))
                widest[scale] = (min(old[0], lo), max(old[1], hi))
        for i, scale in enumerate(self.scale):
            if scale is not None:
                self.columns["lower"][i], self.columns["upper"][i] = widest[scale]

    def merge_equal_cells(self, keep_apart: int) -> None:
        """Make cells linked by a one-part relation (`a == b`) one cell.

        Unchanged cells are linked as earlier == current == new; their values come from different float sums,
        and two relations pinning one hidden cell to values 1e-7 apart make the audit LP infeasible. The lowest
        index represents the group (the first `keep_apart` cells, the new release's, are never merged with
        each other, so they keep their places)."""
        groups, where = self._equal_groups(keep_apart)
        if len(groups) == len(self.keys):
            return
        keep = sorted(groups)
        self.columns = _merged_columns(self.columns, [groups[r] for r in keep])
        self.keys = [self.keys[r] for r in keep]
        self.scale = [self.scale[r] for r in keep]
        self.months = [frozenset().union(*(self.months[m] for m in groups[r])) for r in keep]
        self.relations = sorted(
            {
                (where[t], tuple(sorted(where[p] for p in parts)))
                for t, parts in self.relations
                if not (len(parts) == 1 and where[t] == where[parts[0]])
            }
        )
        self.own = [Contributions.concat(self.own).moved(np.asarray(where, dtype=np.int64))]

    def _equal_groups(self, keep_apart: int) -> tuple[dict[int, list[int]], list[int]]:
        """Groups of cells linked by one-part relations (root -> members) and each cell's new position."""
        root = list(range(len(self.keys)))

        def find(x: int) -> int:
            while root[x] != x:
                root[x] = root[root[x]]
                x = root[x]
            return x

        for total, parts in self.relations:
            if len(parts) == 1:
                a, b = sorted((find(total), find(parts[0])))
                if b >= keep_apart:
                    root[b] = a
        groups: dict[int, list[int]] = {}
        for i in range(len(self.keys)):
            groups.setdefault(find(i), []).append(i)
        position = {r: n for n, r in enumerate(sorted(groups))}
        return groups, [position[find(i)] for i in range(len(self.keys))]

    def problem(self) -> ProtectionProblem:
        c = {name: np.array(values) for name, values in self.columns.items()}
        primary = c["primary"].astype(bool)
        own = Contributions.concat(self.own)
        problem = ProtectionProblem(
            keys=self.keys,
            values=c["value"].astype(float),
            relations=self.relations,
            lower=c["lower"].astype(float),
            upper=c["upper"].astype(float),
            upl=np.where(primary, c["upl"], 0.0).astype(float),
            lpl=np.where(primary, c["lpl"], 0.0).astype(float),
            primary=primary,
            cost=c["cost"].astype(float),
            fixed=c["fixed"].astype(bool),
            insiders=own.only(own.largest_in(primary)),
            epoch=c["epoch"].astype(np.int64),
        )
        return tightened(problem)  # what the relations imply about the bounds (widened above) holds in any case


def _merged_columns(c: dict[str, list], groups: list[list[int]]) -> dict[str, list]:
    """One cell per group: a published member's value is the fact; the group is primary when any member is
    (and nothing is published), with the largest protection and the widest bounds."""
    merged: dict[str, list] = {name: [] for name in c}
    for members in groups:
        published = [m for m in members if c["fixed"][m]]
        merged["value"].append(c["value"][published[0] if published else members[0]])
        merged["fixed"].append(bool(published))
        merged["primary"].append(not published and any(c["primary"][m] for m in members))
        for name, pick in (("upl", max), ("lpl", max), ("lower", min), ("upper", max)):
            merged[name].append(pick(c[name][m] for m in members))
        merged["cost"].append(c["cost"][members[0]])
        # published: known since its first publication; hidden: judged by the latest release that must
        # protect it, against everything published before that (each earlier one was judged at its time)
        judges = [m for m in members if c["primary"][m]] or members
        merged["epoch"].append(
            min(c["epoch"][m] for m in published) if published else max(c["epoch"][m] for m in judges)
        )
    return merged
