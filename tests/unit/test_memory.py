"""The store's size estimate tracks the memory its entries really hold."""

from __future__ import annotations

import gc
import json
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any, cast

import botocore.session
import pytest
from botocore import xform_name

import aiodax
from aiodax._engine import Engine
from aiodax._engine.views import item_copies, page_copies
from aiodax._facades.python import Converter, python_view
from aiodax._rules.responses import freeze_page
from aiodax._rules.tags import StoreKey
from aiodax._rules.wire import canonical_key, freeze
from aiodax._store import ItemEntry, PageEntry

WireItem = dict[str, Any]


def scalar_item(i: int) -> WireItem:
    return {
        "pk": {"S": f"user#{i:08d}"},
        "name": {"S": f"User number {i}"},
        "email": {"S": f"user{i}@example.com"},
        "city": {"S": "London"},
        "age": {"N": str(20 + i % 60)},
        "balance": {"N": f"{i * 3.25:.2f}"},
        "visits": {"N": str(i * 7)},
        "active": {"BOOL": i % 2 == 0},
        "deleted": {"NULL": True},
        "avatar": {"B": f"png{i}".encode() * 4},
    }


def nested_item(i: int) -> WireItem:
    return {
        "pk": {"S": f"order#{i:08d}"},
        "sk": {"N": str(i)},
        "address": {
            "M": {
                "street": {"S": f"{i} Main Street"},
                "zip": {"N": "12345"},
                "geo": {"L": [{"N": "51.5"}, {"N": "-0.12"}]},
            }
        },
        "lines": {
            "L": [{"M": {"sku": {"S": f"sku-{i}-{n}"}, "qty": {"N": str(n)}}} for n in range(4)]
        },
        "tags": {"SS": [f"t{i}", "gift", "express"]},
        "scores": {"NS": ["1", "2.5", str(i)]},
    }


def large_item(i: int) -> WireItem:
    return {"pk": {"S": f"doc#{i:08d}"}, "body": {"S": f"{i:08d}" + "x" * 20_000}}


def as_parsed(item: WireItem) -> WireItem:
    """The item as botocore hands it over: fresh strings from a JSON body, bytes for B."""
    text = {k: v for k, v in item.items() if "B" not in v}
    parsed: WireItem = json.loads(json.dumps(text))
    parsed.update({k: {"B": bytes(v["B"])} for k, v in item.items() if "B" in v})
    return parsed


def store_items(engine: Engine, make: Callable[[int], WireItem], count: int) -> None:
    for i in range(count):
        item = as_parsed(make(i))
        key = canonical_key({name: item[name] for name in ("pk", "sk") if name in item})
        assert key is not None
        engine.items.store_image("table", key, None, freeze(item))


def new_engine(max_bytes: int = 2**40) -> Engine:
    return Engine(aiodax.Cache(max_bytes=max_bytes).config)


@pytest.fixture
def traced() -> Iterator[Callable[[], int]]:
    """Bytes allocated since the fixture started and still alive."""
    gc.collect()
    tracemalloc.start()
    start = tracemalloc.get_traced_memory()[0]

    def retained() -> int:
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - start

    yield retained
    tracemalloc.stop()


@pytest.mark.parametrize(
    ("make", "count"),
    [(scalar_item, 2000), (nested_item, 1000), (large_item, 500)],
    ids=["ten-scalars", "nested", "20KB-string"],
)
def test_size_estimate_is_within_2x_of_retained_memory(
    traced: Callable[[], int], make: Callable[[int], WireItem], count: int
) -> None:
    engine = new_engine()
    store_items(engine, make, count)
    retained = traced()
    assert len(engine.shared.store) == count
    assert retained / 2 <= engine.shared.store.current_size <= retained * 2


def test_streaming_more_than_fits_stays_within_2x_of_max_bytes(
    traced: Callable[[], int],
) -> None:
    max_bytes = 2**19
    engine = new_engine(max_bytes)
    store_items(engine, scalar_item, 1000)
    retained = traced()
    stats = engine.stats()
    assert stats["EvictedCount"] > 0
    assert stats["CurrentSize"] <= max_bytes
    assert max_bytes / 2 <= retained <= max_bytes * 2


@pytest.mark.parametrize(
    ("make", "count"),
    [(scalar_item, 1000), (nested_item, 500)],
    ids=["ten-scalars", "nested"],
)
def test_python_views_are_sized_within_2x_of_their_memory(
    traced: Callable[[], int], make: Callable[[int], WireItem], count: int
) -> None:
    engine = new_engine()
    store_items(engine, make, count)
    wire_memory, wire_size = traced(), engine.shared.store.current_size

    for store_key, entry in list(engine.shared.store.entries.items()):
        table, *key = cast("tuple[str, *tuple[Any, ...]]", store_key)  # (table, *item key)
        assert isinstance(entry, ItemEntry) and entry.image is not None
        item_copies(engine.shared.store, table, tuple(key), None, entry.image, python_view)

    view_memory = traced() - wire_memory
    view_size = engine.shared.store.current_size - wire_size
    assert view_memory / 2 <= view_size <= view_memory * 2


def test_python_views_of_pages_are_sized_within_2x_of_their_memory(
    traced: Callable[[], int],
) -> None:
    service = botocore.session.get_session().get_service_model("dynamodb")
    convert = Converter(service, {xform_name(name): name for name in service.operation_names})
    engine = new_engine()
    for page in range(20):
        items = [as_parsed(nested_item(page * 50 + i)) for i in range(50)]
        answer = {"Items": items, "Count": len(items), "ScannedCount": len(items)}
        engine.pages.store_page(("table", "pages", "query", page), freeze_page(answer), ())
    wire_memory, wire_size = traced(), engine.shared.store.current_size

    for page_key, entry in list(engine.shared.store.entries.items()):
        assert isinstance(entry, PageEntry)
        page_copies(
            engine.shared.store,
            cast(StoreKey, page_key),
            entry.page,
            convert.response_view("query"),
        )

    view_memory = traced() - wire_memory
    view_size = engine.shared.store.current_size - wire_size
    assert view_memory / 2 <= view_size <= view_memory * 2
