"""Which earlier releases a reader of an audience holds, and which of them a new release is related to."""

from __future__ import annotations

from collections.abc import Sequence

from aggregator.periods import Period
from aggregator.protocol import Protocol
from aggregator.store import Store

from .ledger import release_spans
from .snapshot import Snapshot


def visible_audiences(protocol: Protocol, audience_id: str) -> list[str]:
    """Audiences whose releases this audience's members may know: itself, and every audience that shares
    when this one shares too (shares_with_others = false keeps an audience apart in both directions)."""
    own = protocol.audience(audience_id)
    if not own.shares_with_others:
        return [audience_id]
    return sorted({audience_id} | {a.id for a in protocol.audiences if a.shares_with_others})


def own_readers_view(protocol: Protocol, audience_id: str, snaps: Sequence[Snapshot]) -> list[Snapshot]:
    """The releases every reader of the audience knows: its own, and those of audiences open to all."""
    return [s for s in snaps if s.audience_id == audience_id or protocol.audience(s.audience_id).open_to_all]


def related_releases(store: Store, protocol: Protocol, audience_id: str, months: set[Period]) -> list[str]:
    """Earlier releases visible to the audience whose cells cover any of `months`, closed under overlap
    (a year-to-date release brings in its months, which bring in the releases of those months)."""
    spans = release_spans(store, protocol.covenant.id, visible_audiences(protocol, audience_id))
    wanted, chosen = set(months), set()
    grew = True
    while grew:
        grew = False
        for release_id, covered in spans.items():
            if release_id not in chosen and covered & wanted:
                chosen.add(release_id)
                wanted |= covered
                grew = True
    return sorted(chosen)
