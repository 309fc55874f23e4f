"""Reader classes: who reads a release, and which earlier releases each of them holds.

There is one reader class per audience. Its readers hold their own audience's releases, every release of an
audience open to all (a committee member also reads the public annual report) and, when their audience shares
with others, the releases of every other audience that shares. A release is protected for each class that
receives it, by the rules of that class's audience and against everything the class holds: a reader is
protected by the rules of the releases addressed to them, with all they know.
"""

from __future__ import annotations

from aggregator.protocol import Protocol
from aggregator.store import Store

from .ledger import releases_of_audiences


def holdings(protocol: Protocol, audience_id: str) -> list[str]:
    """The audiences whose releases a reader of this audience holds: its own, every audience open to all and,
    when it shares with others (and is no public audience itself), every other audience that shares."""
    own = protocol.audience(audience_id)
    held = {audience_id} | {a.id for a in protocol.audiences if a.open_to_all}
    if own.shares_with_others and not own.open_to_all:
        held |= {a.id for a in protocol.audiences if a.shares_with_others and not a.open_to_all}
    return sorted(held)


def reader_classes(protocol: Protocol, audience_id: str) -> list[str]:
    """The reader classes that receive a release to this audience: its own readers first, then (by id) every
    other audience whose readers hold it."""
    others = [a.id for a in protocol.audiences if a.id != audience_id and audience_id in holdings(protocol, a.id)]
    return [audience_id, *sorted(others)]


def held_releases(store: Store, protocol: Protocol, reader_class: str) -> list[str]:
    """Every release in the ledger that readers of the class hold (all months: a series is subtracted month
    from month), by id."""
    return releases_of_audiences(store, protocol.covenant.id, holdings(protocol, reader_class))
