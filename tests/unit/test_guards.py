"""Write guards (``_engine.guards``): drop generations, and writes in flight that overlap."""

from __future__ import annotations

from collections.abc import Hashable

from aiodax._engine.guards import EVERYTHING, HOLD_LIMIT, Deadlines, WriteGuards
from aiodax._rules.tags import item_key, page_key, page_tags, pages_dropped_by_write, table_tags
from aiodax._rules.wire import ItemKey, KeyPart
from aiodax._rules.writes import INVALIDATE, WritePlan, WriteRow
from tests.support import FakeClock

A: ItemKey = ("pk", "S", "a")
B: ItemKey = ("pk", "S", "b")
ITEM_A = item_key("t", A)
ITEM_B = item_key("t", B)


def keyed(table: str, *keys: ItemKey) -> WritePlan:
    return WritePlan("put_item", {}, tuple(WriteRow(table, key, None) for key in keys))


def unkeyed(table: str) -> WritePlan:
    return WritePlan("delete_item", {}, (WriteRow(table, None, INVALIDATE),))


def everything() -> WritePlan:
    return WritePlan("execute_statement", {}, (), everything=True)


# ----------------------------------------------------------------- generations


def test_a_fill_with_no_drop_since_it_went_out_may_store() -> None:
    guards = WriteGuards(FakeClock())
    generation = guards.open_fill()
    assert guards.may_store(generation, (ITEM_A, "t"))


def test_a_fill_out_before_a_drop_of_its_scope_may_not_store() -> None:
    guards = WriteGuards(FakeClock())
    generation = guards.open_fill()
    guards.dropped((ITEM_A,))
    assert not guards.may_store(generation, (ITEM_A, "t"))


def test_a_fill_out_before_a_drop_of_any_one_of_its_scopes_may_not_store() -> None:
    guards = WriteGuards(FakeClock())
    generation = guards.open_fill()
    guards.dropped(("t",))
    assert not guards.may_store(generation, (ITEM_A, "t"))


def test_a_fill_out_after_a_drop_of_its_scope_may_store() -> None:
    guards = WriteGuards(FakeClock())
    before = guards.open_fill()
    guards.dropped((ITEM_A,))
    after = guards.open_fill()
    assert guards.may_store(after, (ITEM_A,))
    guards.dropped((ITEM_B,))
    assert guards.may_store(after, (ITEM_A,))
    assert not guards.may_store(before, (ITEM_A,))


def test_a_fill_out_after_a_drop_made_while_no_fill_was_open_may_store() -> None:
    guards = WriteGuards(FakeClock())
    guards.dropped((ITEM_A,))
    generation = guards.open_fill()
    guards.dropped((ITEM_B,))
    assert guards.may_store(generation, (ITEM_A,))


def test_drops_of_other_scopes_do_not_refuse_a_fill() -> None:
    guards = WriteGuards(FakeClock())
    generation = guards.open_fill()
    guards.dropped((ITEM_B,))
    guards.dropped(("other",))
    guards.dropped(table_tags("other"))
    assert guards.may_store(generation, (ITEM_A, "t"))


def test_a_drop_of_everything_refuses_every_fill_out_before_it() -> None:
    guards = WriteGuards(FakeClock())
    generation = guards.open_fill()
    guards.dropped((EVERYTHING,))
    assert not guards.may_store(generation, (ITEM_A, "t"))
    assert not guards.may_store(generation, ())
    assert guards.may_store(guards.open_fill(), (ITEM_A, "t"))


def test_every_drop_counts_one_generation() -> None:
    guards = WriteGuards(FakeClock())
    guards.dropped(())
    guards.dropped((ITEM_A, ITEM_B))
    assert guards.open_fill() == 2


def test_an_item_fill_is_refused_by_its_table_being_dropped() -> None:
    guards = WriteGuards(FakeClock())
    generation = guards.open_fill()
    guards.dropped(table_tags("t"))
    assert not guards.may_store(generation, (ITEM_A, "t"))


def test_a_page_fill_is_refused_by_a_write_to_its_partition_only() -> None:
    p: KeyPart = ("pk", "S", "p")
    q: KeyPart = ("pk", "S", "q")
    guards = WriteGuards(FakeClock())
    store_key = page_key("t", "query", "f")
    scopes = (store_key, *page_tags("t", "partition", p))
    generation = guards.open_fill()
    guards.dropped(pages_dropped_by_write("t", "partition", q))
    assert guards.may_store(generation, scopes)
    guards.dropped(pages_dropped_by_write("t", "partition", p))
    assert not guards.may_store(generation, scopes)


def test_drops_are_forgotten_once_no_fill_is_open() -> None:
    guards = WriteGuards(FakeClock())
    generations = [guards.open_fill() for _ in range(3)]
    for index in range(100):
        guards.dropped((("scope", index),))
    assert guards.remembered_drops
    for generation in generations:
        guards.close_fill(generation)
    assert guards.remembered_drops == 0
    assert guards.open_fills == 0


def test_drops_while_no_fill_is_open_are_not_remembered() -> None:
    guards = WriteGuards(FakeClock())
    for index in range(100):
        guards.dropped((("scope", index),))
    assert guards.remembered_drops == 0


def test_many_fills_sharing_a_generation_all_count_until_the_last_closes() -> None:
    guards = WriteGuards(FakeClock())
    first, second = guards.open_fill(), guards.open_fill()
    assert first == second
    guards.dropped((ITEM_A,))
    guards.close_fill(first)
    assert not guards.may_store(second, (ITEM_A,))
    guards.close_fill(second)
    assert guards.remembered_drops == 0


def test_an_old_fill_still_open_is_refused_after_thousands_of_drops_and_prunes() -> None:
    guards = WriteGuards(FakeClock())
    old = guards.open_fill()
    for index in range(5_000):
        fill = guards.open_fill()
        guards.dropped((("other", index),))
        guards.dropped((ITEM_A,))
        guards.close_fill(fill)
    assert not guards.may_store(old, (ITEM_A,))
    # Past the bound, an old fill is refused whatever it loaded: memory stays bounded.
    assert not guards.may_store(old, (ITEM_B,))
    assert guards.remembered_drops <= 2 * 4_096
    fresh = guards.open_fill()
    assert guards.may_store(fresh, (ITEM_A,))
    guards.close_fill(old)
    guards.close_fill(fresh)
    assert guards.remembered_drops == 0


def test_a_fill_that_went_out_just_before_the_prune_is_still_refused() -> None:
    guards = WriteGuards(FakeClock())
    keeper = guards.open_fill()
    for index in range(5_000):
        guards.dropped((("other", index),))
    late = guards.open_fill()
    guards.dropped((ITEM_A,))
    guards.close_fill(keeper)  # prunes what no open fill can need
    assert not guards.may_store(late, (ITEM_A,))
    assert guards.may_store(late, (("other", 0),))


def test_memory_of_drops_stays_bounded_while_fills_overlap_without_end() -> None:
    guards = WriteGuards(FakeClock())
    previous = guards.open_fill()
    for index in range(10_000):
        current = guards.open_fill()
        guards.dropped((("scope", index),))
        guards.close_fill(previous)
        previous = current
        assert guards.remembered_drops <= 2 * 4_096 + 1
    assert not guards.may_store(previous, (("scope", 9_999),))
    assert guards.may_store(previous, (("scope", 9_998),))


# ---------------------------------------------------------------- writes in flight


def test_a_write_alone_on_its_key_is_not_overlapped() -> None:
    guards = WriteGuards(FakeClock())
    ticket = guards.begin(keyed("t", A))
    assert guards.finish(ticket) == frozenset()


def test_two_writes_to_one_key_in_flight_at_once_both_report_it_overlapped() -> None:
    guards = WriteGuards(FakeClock())
    first = guards.begin(keyed("t", A))
    second = guards.begin(keyed("t", A))
    assert guards.finish(first) == {("t", A)}
    assert guards.finish(second) == {("t", A)}
    assert guards.writes_in_flight == 0


def test_a_write_that_began_after_another_finished_is_not_overlapped() -> None:
    guards = WriteGuards(FakeClock())
    guards.finish(guards.begin(keyed("t", A)))
    assert guards.finish(guards.begin(keyed("t", A))) == frozenset()


def test_a_third_write_overlapping_only_the_second_is_overlapped_too() -> None:
    guards = WriteGuards(FakeClock())
    first = guards.begin(keyed("t", A))
    second = guards.begin(keyed("t", A))
    guards.finish(first)
    third = guards.begin(keyed("t", A))
    assert guards.finish(second) == {("t", A)}
    assert guards.finish(third) == {("t", A)}


def test_writes_to_different_keys_or_tables_do_not_overlap() -> None:
    guards = WriteGuards(FakeClock())
    a = guards.begin(keyed("t", A))
    b = guards.begin(keyed("t", B))
    other = guards.begin(keyed("u", A))
    assert guards.finish(a) == frozenset()
    assert guards.finish(b) == frozenset()
    assert guards.finish(other) == frozenset()


def test_a_write_of_many_keys_reports_only_the_overlapped_ones() -> None:
    guards = WriteGuards(FakeClock())
    batch = guards.begin(keyed("t", A, B))
    single = guards.begin(keyed("t", B))
    assert guards.finish(batch) == {("t", B)}
    assert guards.finish(single) == {("t", B)}


def test_an_unkeyed_write_begun_first_overlaps_keyed_writes_to_its_table() -> None:
    guards = WriteGuards(FakeClock())
    table = guards.begin(unkeyed("t"))
    item = guards.begin(keyed("t", A))
    other = guards.begin(keyed("u", A))
    assert guards.finish(table) == frozenset()
    assert guards.finish(item) == {("t", A)}
    assert guards.finish(other) == frozenset()


def test_an_unkeyed_write_begun_second_overlaps_keyed_writes_to_its_table() -> None:
    guards = WriteGuards(FakeClock())
    item = guards.begin(keyed("t", A))
    other = guards.begin(keyed("u", A))
    table = guards.begin(unkeyed("t"))
    assert guards.finish(table) == frozenset()
    assert guards.finish(item) == {("t", A)}
    assert guards.finish(other) == frozenset()


def test_a_keyed_write_after_an_unkeyed_write_finished_is_not_overlapped() -> None:
    guards = WriteGuards(FakeClock())
    guards.finish(guards.begin(unkeyed("t")))
    assert guards.finish(guards.begin(keyed("t", A))) == frozenset()


def test_a_write_of_everything_overlaps_every_keyed_write_in_either_order() -> None:
    guards = WriteGuards(FakeClock())
    before = guards.begin(keyed("t", A))
    all_tables = guards.begin(everything())
    after = guards.begin(keyed("u", B))
    assert guards.finish(all_tables) == frozenset()
    assert guards.finish(before) == {("t", A)}
    assert guards.finish(after) == {("u", B)}


def test_writes_in_flight_count_keys_and_unkeyed_tables_and_return_to_zero() -> None:
    guards = WriteGuards(FakeClock())
    tickets = [
        guards.begin(keyed("t", A)),
        guards.begin(keyed("t", A)),
        guards.begin(keyed("t", B)),
        guards.begin(unkeyed("u")),
        guards.begin(unkeyed("u")),
        guards.begin(everything()),
    ]
    assert guards.writes_in_flight == 4  # (t, A), (t, B), u, everything
    for ticket in tickets:
        guards.finish(ticket)
    assert guards.writes_in_flight == 0
    assert guards.finish(guards.begin(keyed("t", A))) == frozenset()


# ----------------------------------------------------------------------- holds
# A drop after a write that may still land holds its scopes until a deadline.


def held(clock: FakeClock, scopes: tuple[Hashable, ...], seconds: float = 10.0) -> WriteGuards:
    guards = WriteGuards(clock)
    guards.dropped(scopes, held_until=clock() + seconds)
    return guards


def test_a_fill_is_refused_during_a_hold_and_allowed_once_it_ended() -> None:
    clock = FakeClock()
    guards = held(clock, (ITEM_A,))
    during = guards.open_fill()  # out after the drop: only the hold refuses it
    clock.advance(9.9)
    assert not guards.may_store(during, (ITEM_A, "t"))
    guards.close_fill(during)
    clock.advance(0.1)
    after = guards.open_fill()
    assert guards.may_store(after, (ITEM_A, "t"))


def test_a_hold_refuses_only_the_scopes_it_names() -> None:
    clock = FakeClock()
    guards = held(clock, (ITEM_A,))
    generation = guards.open_fill()
    assert guards.may_store(generation, (ITEM_B, "t"))
    assert guards.may_store(generation, (item_key("u", A), "u"))


def test_a_fill_out_during_a_hold_that_lands_after_it_ended_is_refused() -> None:
    # it may have read the value from before a write that landed since
    clock = FakeClock()
    guards = held(clock, (ITEM_A,))
    during = guards.open_fill()
    clock.advance(11)
    after = guards.open_fill()
    assert not guards.may_store(during, (ITEM_A, "t"))
    assert guards.may_store(after, (ITEM_A, "t"))


def test_a_hold_ends_by_itself_whatever_asks_first() -> None:
    clock = FakeClock()
    guards = held(clock, (ITEM_A,))
    clock.advance(10)
    assert guards.finish(guards.begin(keyed("t", A))) == frozenset()
    assert guards.may_store(guards.open_fill(), (ITEM_A, "t"))


def test_a_fill_out_before_the_hold_is_refused_after_it_too() -> None:
    clock = FakeClock()
    guards = WriteGuards(clock)
    before = guards.open_fill()
    guards.dropped((ITEM_A,), held_until=clock() + 10)
    clock.advance(20)
    assert not guards.may_store(before, (ITEM_A, "t"))


def test_a_write_through_is_refused_during_a_hold_and_allowed_after() -> None:
    clock = FakeClock()
    guards = held(clock, (ITEM_A,))
    during = guards.begin(keyed("t", A, B))
    assert guards.finish(during) == {("t", A)}
    clock.advance(10)
    assert guards.finish(guards.begin(keyed("t", A, B))) == frozenset()


def test_a_write_through_begun_during_a_hold_is_refused_after_it_ended() -> None:
    # DynamoDB may have applied it before the write that was still landing
    clock = FakeClock()
    guards = held(clock, (ITEM_A,))
    during = guards.begin(keyed("t", A))
    clock.advance(11)
    assert guards.finish(during) == {("t", A)}


def test_a_held_table_refuses_its_items_and_pages_and_their_writes() -> None:
    clock = FakeClock()
    guards = held(clock, table_tags("t"))
    generation = guards.open_fill()
    page = page_key("t", "scan", "fingerprint")
    assert not guards.may_store(generation, (ITEM_A, "t"))
    assert not guards.may_store(generation, (page, *page_tags("t", "partition", None)))
    assert guards.may_store(generation, (item_key("u", A), "u"))
    assert guards.finish(guards.begin(keyed("t", A))) == {("t", A)}
    assert guards.finish(guards.begin(keyed("u", A))) == frozenset()


def test_held_pages_of_a_partition_refuse_its_pages_only() -> None:
    clock = FakeClock()
    part: KeyPart = ("pk", "S", "a")
    guards = held(clock, (ITEM_A, *pages_dropped_by_write("t", "partition", part)))
    generation = guards.open_fill()
    mine = page_key("t", "query", "mine")
    other = page_key("t", "query", "other")
    assert not guards.may_store(generation, (mine, *page_tags("t", "partition", part)))
    assert guards.may_store(generation, (other, *page_tags("t", "partition", ("pk", "S", "b"))))


def test_holding_everything_refuses_every_fill_and_write_through() -> None:
    clock = FakeClock()
    guards = held(clock, (EVERYTHING,))
    generation = guards.open_fill()
    assert not guards.may_store(generation, (item_key("u", B), "u"))
    assert guards.finish(guards.begin(keyed("u", B))) == {("u", B)}


def test_a_later_hold_of_a_scope_extends_it_and_an_earlier_one_does_not_shorten_it() -> None:
    clock = FakeClock()
    guards = held(clock, (ITEM_A,), seconds=10)
    guards.dropped((ITEM_A,), held_until=clock() + 20)
    guards.dropped((ITEM_A,), held_until=clock() + 5)
    clock.advance(15)
    assert not guards.may_store(guards.open_fill(), (ITEM_A, "t"))
    clock.advance(5)
    assert guards.may_store(guards.open_fill(), (ITEM_A, "t"))


def test_holds_past_the_limit_hold_everything_until_the_latest_deadline() -> None:
    clock = FakeClock()
    guards = WriteGuards(clock)
    for index in range(HOLD_LIMIT + 1):
        guards.dropped((("scope", index),), held_until=clock() + 10 + index / HOLD_LIMIT)
    unrelated = (item_key("u", B), "u")
    clock.advance(10.5)
    assert not guards.may_store(guards.open_fill(), unrelated)
    clock.advance(0.5)
    assert guards.may_store(guards.open_fill(), unrelated)
    assert guards.may_store(guards.open_fill(), (("scope", HOLD_LIMIT),))


def test_the_deadlines_memory_is_bounded_however_often_scopes_are_held() -> None:
    clock = FakeClock()
    deadlines = Deadlines(clock, limit=100)
    for index in range(10_000):
        deadlines.extend((("scope", index % 50),), clock() + 1)
        clock.advance(0.001)  # every hold extends a scope held already
        assert len(deadlines) <= 100
        assert deadlines.remembered <= 2 * 100 + 1
    for index in range(10_000):
        deadlines.extend((("many", index),), clock() + 1)
        assert len(deadlines) <= 100
        assert deadlines.remembered <= 2 * 100 + 1
    assert deadlines.covers((("unrelated",),))


def test_deadlines_expire_in_deadline_order_and_report_what_ended() -> None:
    clock = FakeClock()
    deadlines = Deadlines(clock)
    deadlines.extend(("late",), clock() + 2)
    deadlines.extend(("early", "also early"), clock() + 1)
    deadlines.extend(("late",), clock() + 3)  # held again: the older deadline is stale
    assert deadlines.expire() == []
    clock.advance(1)
    assert set(deadlines.expire()) == {"also early", "early"}
    assert deadlines.covers(("late",)) and not deadlines.covers(("early",))
    clock.advance(1)
    assert deadlines.expire() == []
    clock.advance(1)
    assert deadlines.expire() == ["late"]
    assert len(deadlines) == 0 and not deadlines.covers(("late",))


ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/t"


def test_writes_to_one_item_by_its_name_and_its_arn_overlap() -> None:
    guards = WriteGuards(FakeClock())
    by_name = guards.begin(keyed("t", A))
    by_arn = guards.begin(keyed(ARN, A), site=1)
    assert guards.finish(by_arn) == {(ARN, A)}
    assert guards.finish(by_name) == {("t", A)}
    assert guards.writes_in_flight == 0


def test_an_unkeyed_write_by_arn_overlaps_a_keyed_write_by_name() -> None:
    guards = WriteGuards(FakeClock())
    keyed_write = guards.begin(keyed("t", A))
    unkeyed_write = guards.begin(unkeyed(ARN))
    assert guards.finish(keyed_write) == {("t", A)}
    guards.finish(unkeyed_write)
    assert guards.writes_in_flight == 0


# ------------------------------------------------------------------ fences


def test_a_drop_fences_its_scopes_until_its_deadline() -> None:
    clock = FakeClock()
    guards = WriteGuards(clock)
    guards.dropped((ITEM_A,), fenced_until=clock.now + 2)
    assert guards.fenced((ITEM_A, "t"))
    assert not guards.fenced((ITEM_B, "t"))
    assert guards.fence_end((ITEM_A,)) == clock.now + 2
    clock.advance(2)
    assert not guards.fenced((ITEM_A,))
    assert guards.fence_end((ITEM_A,)) is None


def test_a_drop_without_a_fence_fences_nothing() -> None:
    guards = WriteGuards(FakeClock())
    guards.dropped((ITEM_A,))
    assert not guards.fenced((ITEM_A,))
    assert guards.fence_end((ITEM_A,)) is None


def test_a_fence_of_everything_covers_every_scope() -> None:
    clock = FakeClock()
    guards = WriteGuards(clock)
    guards.dropped((EVERYTHING,), fenced_until=clock.now + 1)
    assert guards.fenced((ITEM_B,))
    assert guards.fence_end((ITEM_B,)) == clock.now + 1


def test_fences_stay_bounded_and_only_ever_widen() -> None:
    clock = FakeClock()
    guards = WriteGuards(clock)
    for n in range(3 * HOLD_LIMIT):
        guards.dropped((("t", "pk", "S", str(n)),), fenced_until=clock.now + 5)
    assert guards.fenced_scopes <= HOLD_LIMIT + 1
    assert guards.fenced((("t", "pk", "S", "never dropped"),))  # past the bound: all
    clock.advance(5)
    assert not guards.fenced((ITEM_A,))


def test_expired_fences_are_forgotten_as_new_ones_come() -> None:
    clock = FakeClock()
    guards = WriteGuards(clock)
    for n in range(HOLD_LIMIT):
        guards.dropped((("t", "pk", "S", str(n)),), fenced_until=clock.now + 1)
        clock.advance(0.01)
    clock.advance(1)
    guards.dropped((ITEM_A,), fenced_until=clock.now + 1)
    assert guards.fenced_scopes < HOLD_LIMIT // 2 + 1
    assert not guards.fenced((ITEM_B,))
