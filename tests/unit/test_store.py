"""The byte-bounded store: accounting, tags and CLOCK eviction."""

from __future__ import annotations

from collections.abc import Hashable

from aiodax._stats import TableStats
from aiodax._store import ItemEntry, PageEntry, Store


def item(size: int, *tags: Hashable) -> ItemEntry:
    return ItemEntry({"pk": {"S": "x"}}, 1e9, None, tags, size, counts=TableStats())


def page(size: int, *tags: Hashable) -> PageEntry:
    return PageEntry({"Items": (), "Count": 0}, 1e9, tags, size, counts=TableStats())


def filled(max_bytes: int, *keys: str, size: int = 100) -> Store:
    store = Store(max_bytes)
    for key in keys:
        store.put(key, item(size))
    return store


def test_get_returns_what_was_put() -> None:
    store = Store(1000)
    entry = item(100)
    store.put("a", entry)
    assert store.get("a") is entry
    assert store.peek("a") is entry
    assert store.get("b") is None
    assert len(store) == 1


def test_sizes_add_up_and_discard_subtracts() -> None:
    store = Store(1000)
    store.put("a", item(100))
    store.put("b", page(250))
    assert store.current_size == 350
    assert store.discard("a") is True
    assert store.current_size == 250
    assert store.get("a") is None
    assert store.discard("a") is False
    assert store.current_size == 250


def test_replacing_a_key_replaces_its_size() -> None:
    store = Store(1000)
    store.put("a", item(100))
    store.put("a", item(40))
    assert store.current_size == 40
    assert len(store) == 1


def test_replacing_a_key_replaces_its_tags() -> None:
    store = Store(1000)
    store.put("a", item(100, "old", "both"))
    store.put("a", item(100, "new", "both"))
    assert store.discard_tagged("old") == 0
    assert "a" in store.entries
    assert store.discard_tagged("new") == 1
    assert "a" not in store.entries


def test_discard_tagged_drops_exactly_the_entries_under_a_tag() -> None:
    store = Store(10_000)
    store.put("a", item(100, "t1", ("t1", "p1")))
    store.put("b", item(100, "t1", ("t1", "p2")))
    store.put("c", page(100, "t2"))
    assert store.discard_tagged("missing") == 0
    assert store.discard_tagged(("t1", "p1")) == 1
    assert list(store.entries) == ["b", "c"]
    assert store.discard_tagged("t1") == 1
    assert store.discard_tagged("t1") == 0
    assert list(store.entries) == ["c"]
    assert store.current_size == 100


def test_discard_forgets_tags() -> None:
    store = Store(1000)
    store.put("a", item(100, "t"))
    store.discard("a")
    assert store.discard_tagged("t") == 0


def test_clear_empties_everything_without_counting_evictions() -> None:
    store = filled(1000, "a", "b", "c")
    store.clear()
    assert len(store) == 0
    assert store.discard_tagged("t") == 0
    assert store.current_size == 0
    assert store.evicted_count == 0


def test_entry_larger_than_the_whole_cache_is_not_kept() -> None:
    store = filled(1000, "a")
    store.put("big", item(1001))
    assert store.get("big") is None
    assert store.current_size == 100
    assert store.get("a") is not None
    assert store.evicted_count == 0


def test_oversized_replacement_still_drops_the_old_entry() -> None:
    store = filled(1000, "a")
    store.put("a", item(5000))
    assert store.get("a") is None
    assert store.current_size == 0


def test_entry_exactly_max_bytes_is_kept() -> None:
    store = filled(1000, "a", "b")
    store.put("big", item(1000))
    assert list(store.entries) == ["big"]
    assert store.current_size == 1000


def test_oldest_unread_entry_is_evicted_first() -> None:
    store = filled(300, "a", "b", "c")
    store.put("d", item(100))
    assert list(store.entries) == ["b", "c", "d"]
    assert store.current_size == 300
    assert (store.evicted_count, store.evicted_size) == (1, 100)


def test_eviction_frees_enough_for_the_new_entry() -> None:
    store = filled(300, "a", "b", "c")
    store.put("d", item(250))
    assert list(store.entries) == ["d"]
    assert store.current_size == 250
    assert (store.evicted_count, store.evicted_size) == (3, 300)


def test_evicted_entries_leave_their_tags() -> None:
    store = Store(200)
    store.put("a", item(100, "t"))
    store.put("b", item(100, "t"))
    store.put("c", item(100, "u"))
    assert list(store.entries) == ["b", "c"]
    assert store.discard_tagged("t") == 1


def test_entry_read_since_stored_survives_next_eviction() -> None:
    store = filled(300, "a", "b", "c")
    store.get("a")
    store.put("d", item(100))
    assert set(store.entries) == {"a", "c", "d"}
    assert store.evicted_count == 1


def test_second_chance_is_given_once_per_read() -> None:
    store = filled(300, "a", "b", "c")
    store.get("a")
    for key in ("d", "e", "f", "g"):
        store.put(key, item(100))
    assert set(store.entries) == {"e", "f", "g"}


def test_reading_again_earns_another_chance() -> None:
    store = filled(300, "a", "b", "c")
    store.get("a")
    store.put("d", item(100))
    store.get("a")
    for key in ("e", "f", "g"):
        store.put(key, item(100))
    assert set(store.entries) == {"f", "g", "a"}


def test_peek_does_not_protect_from_eviction() -> None:
    store = filled(300, "a", "b", "c")
    store.peek("a")
    store.put("d", item(100))
    assert "a" not in store.entries


def test_new_entry_is_kept_even_when_every_older_one_was_read() -> None:
    store = filled(300, "a", "b", "c")
    for key in ("a", "b", "c"):
        store.get(key)
    store.put("d", item(100))
    assert "d" in store.entries
    assert store.current_size == 300
    assert store.evicted_count == 1
