"""Which tables PartiQL statements write, read off their heads."""

from __future__ import annotations

import pytest

from aiodax._rules.partiql import written_tables


@pytest.mark.parametrize(
    ("statements", "tables"),
    [
        (["SELECT * FROM t", "  exists(select * from t where pk = 'a')"], frozenset()),
        (['UPDATE "orders" SET v = 1 WHERE pk = 2'], frozenset({"orders"})),
        (["insert into my-table.v2 value {'pk': 1}"], frozenset({"my-table.v2"})),
        (['Delete  From\n"a" WHERE pk = 1', "SELECT * FROM b"], frozenset({"a"})),
        (["UPDATE a SET v = 1", "DELETE FROM b WHERE pk = 1"], frozenset({"a", "b"})),
        (["-- a comment\nUPDATE a SET v = 1"], None),
        (["UPSERT INTO a VALUE {}"], None),
        ([None], None),
    ],
)
def test_written_tables_reads_the_statement_heads(
    statements: list[object], tables: frozenset[str] | None
) -> None:
    assert written_tables(statements) == tables
