"""The store-key and tag vocabulary (``_rules.tags``): a write drops exactly the pages it can
make stale."""

from __future__ import annotations

from typing import get_args

import pytest

from aiodax._rules.tags import (
    QueryInvalidation,
    item_key,
    item_tags,
    page_key,
    page_tags,
    pages_dropped_by_write,
    table_of,
    table_tags,
)
from aiodax._rules.wire import KeyPart

P: KeyPart = ("pk", "S", "p")
Q: KeyPart = ("pk", "S", "q")
MODES: tuple[QueryInvalidation, ...] = get_args(QueryInvalidation)

#: Which pages (by the partition their query pins; ``None``: table-wide) a write to
#: an item of a partition (``None``: unknown) drops, mode by mode.
DROPS: dict[tuple[QueryInvalidation, KeyPart | None, KeyPart | None], bool] = {
    # partition mode: the write's partition and every table-wide page
    ("partition", P, P): True,
    ("partition", P, Q): False,
    ("partition", P, None): True,
    # partition mode, a write whose partition is unknown: everything
    ("partition", None, P): True,
    ("partition", None, Q): True,
    ("partition", None, None): True,
    # table mode: every page of the table
    **{("table", write, page): True for write in (P, None) for page in (P, Q, None)},
    # none mode: no page
    **{("none", write, page): False for write in (P, None) for page in (P, Q, None)},
}


def drops(write_tags: tuple[object, ...], page: tuple[object, ...]) -> bool:
    return bool(set(write_tags) & set(page))


def test_the_modes_are_the_three_the_table_covers() -> None:
    assert set(MODES) == {"partition", "table", "none"}
    assert {mode for mode, _, _ in DROPS} == set(MODES)
    assert len(DROPS) == len(MODES) * 2 * 3


@pytest.mark.parametrize(("mode", "write", "page"), list(DROPS), ids=repr)
def test_a_write_drops_a_page_exactly_when_it_can_make_it_stale(
    mode: QueryInvalidation, write: KeyPart | None, page: KeyPart | None
) -> None:
    dropped = pages_dropped_by_write("t", mode, write)
    assert drops(dropped, page_tags("t", mode, page)) is DROPS[mode, write, page]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("write", [P, None], ids=repr)
@pytest.mark.parametrize("page", [P, Q, None], ids=repr)
def test_a_write_to_one_table_drops_no_page_of_another(
    mode: QueryInvalidation, write: KeyPart | None, page: KeyPart | None
) -> None:
    assert not drops(pages_dropped_by_write("t", mode, write), page_tags("other", mode, page))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("write", [P, None], ids=repr)
def test_a_write_drops_no_item_entry(mode: QueryInvalidation, write: KeyPart | None) -> None:
    assert not drops(pages_dropped_by_write("t", mode, write), item_tags("t"))


def test_a_write_in_none_mode_names_no_tag_at_all() -> None:
    assert pages_dropped_by_write("t", "none", P) == ()
    assert pages_dropped_by_write("t", "none", None) == ()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("page", [P, Q, None], ids=repr)
def test_dropping_a_table_finds_every_page_of_it(
    mode: QueryInvalidation, page: KeyPart | None
) -> None:
    assert drops(table_tags("t"), page_tags("t", mode, page))
    assert not drops(table_tags("other"), page_tags("t", mode, page))


def test_dropping_a_table_finds_its_items_and_not_another_table_s() -> None:
    assert drops(table_tags("t"), item_tags("t"))
    assert not drops(table_tags("t"), item_tags("other"))


def test_item_and_page_store_keys_never_collide_and_name_their_table() -> None:
    item = item_key("t", ("pages", "S", "query"))
    page = page_key("t", "query", "fingerprint")
    assert item != page
    assert table_of(item) == "t"
    assert table_of(page) == "t"


def test_a_page_store_key_tells_query_from_scan() -> None:
    assert page_key("t", "query", "f") != page_key("t", "scan", "f")
