from pathlib import Path

import pytest

from aggregator.errors import AggregatorError
from aggregator.registry import Registry
from aggregator.store import Store
from imvo_submit.envelope import keys

NOW = "2025-01-02T09:00:00Z"


@pytest.fixture
def registry(tmp_path: Path):
    with Store(tmp_path / "s.duckdb", None) as store:
        yield Registry(store)


def _key_bytes() -> bytes:
    return keys.public_key_bytes(keys.generate_signing_key().public_key())


def test_add_find_and_group_defaults_to_company(registry: Registry):
    raw = _key_bytes()
    fpr = registry.add("T001", "Alpha BV", ["textile"], raw, now=NOW)
    registry.add("T002", "Beta BV", ["textile"], _key_bytes(), group_id="G1", now=NOW)
    assert registry.get("T001").group_id == "T001"
    assert registry.contributor_map() == {"T001": "T001", "T002": "G1"}
    assert registry.active_key("T001", fpr) == raw


def test_adding_twice_or_a_bad_id_is_refused(registry: Registry):
    registry.add("T001", "Alpha BV", ["textile"], _key_bytes(), now=NOW)
    with pytest.raises(AggregatorError, match="already registered"):
        registry.add("T001", "Alpha BV", ["textile"], _key_bytes(), now=NOW)
    with pytest.raises(AggregatorError, match="not a valid company id"):
        registry.add("../etc", "x", ["textile"], _key_bytes(), now=NOW)


def test_rotation_retires_the_old_key_and_revocation_all_keys(registry: Registry):
    old = registry.add("T001", "Alpha BV", ["textile"], _key_bytes(), now=NOW)
    new = registry.rotate_key("T001", _key_bytes(), now=NOW)
    assert registry.active_key("T001", old) is None
    assert registry.active_key("T001", new) is not None
    registry.revoke("T001", "left the covenant", now=NOW)
    assert registry.get("T001").status == "revoked"
    assert registry.active_key("T001", new) is None
    with pytest.raises(AggregatorError, match="revoked"):
        registry.rotate_key("T001", _key_bytes(), now=NOW)


def test_one_key_cannot_be_registered_to_two_companies(registry: Registry):
    """Two companies with one key: a file signed with it could be either's, and one could send in the other's
    name. Refused at registration and at rotation, naming the company that holds (or held) the key."""
    raw = _key_bytes()
    fpr = registry.add("T001", "Alpha BV", ["textile"], raw, now=NOW)
    with pytest.raises(AggregatorError) as err:
        registry.add("T002", "Beta BV", ["textile"], raw, now=NOW)
    assert err.value.message == f"key {fpr} is registered to company T001; one key cannot sign for two companies"
    assert err.value.hint.startswith("ask T002 for the .pub file of its own key")
    assert registry.find("T002") is None
    registry.add("T002", "Beta BV", ["textile"], _key_bytes(), now=NOW)
    with pytest.raises(AggregatorError, match=f"key {fpr} is registered to company T001;"):
        registry.rotate_key("T002", raw, now=NOW)
    registry.rotate_key("T001", _key_bytes(), now="2025-02-01T09:00:00Z")  # T001's old key is retired, not free
    with pytest.raises(AggregatorError) as err:
        registry.add("T003", "Gamma BV", ["textile"], raw, now=NOW)
    assert err.value.message == (
        f"key {fpr} was company T001's until 2025-02-01T09:00:00Z; one key cannot sign for two companies"
    )
