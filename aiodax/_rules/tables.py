"""Which table a request names: the same name may be two tables, two names one table.

A ``Cache`` may serve clients of several DynamoDBs at once (regions, accounts,
credentials, endpoints): each is a *site*, numbered in the order the cache meets
them (``_engine.sites``).  Two sites' ``orders`` tables are two tables, so
everything the cache keeps of a table (entries, flights, schemas, write
bookkeeping) is keyed by its *table token*: its name as the request spelled it,
and its site.  The first site's tokens are the names themselves, so that the
commonest hit (one client) builds no key part more than the name; any other
site's are ``(site, name)``, which no request's ``TableName`` can spell.

DynamoDB takes a table's ARN wherever it takes its name.  An ARN and a name are
kept apart for reads (the ARN may be another account's table), but a drop of
either drops every token with the same *bare name* (``bare_name``), on every
site: over-invalidating a table of another region or account costs a miss,
serving a table's stale item after a write through another spelling would cost
correctness.
"""

from __future__ import annotations

from typing import Final, TypeAlias

#: The cache's name for a table: see the module docstring.
TableToken: TypeAlias = str | tuple[int, str]

#: The site of the first client a cache meets.
FIRST_SITE: Final = 0
_ARN_PREFIX: Final = "arn:"
_TABLE_RESOURCE: Final = "table/"


def table_token(spelled: str, site: int) -> TableToken:
    """The token of the table a request on ``site`` names ``spelled`` (a name or an ARN)."""
    return spelled if site == FIRST_SITE else (site, spelled)


def spelled_name(table: TableToken) -> str:
    """What a request sends as ``TableName`` for ``table``: the name or ARN it came with."""
    return table if isinstance(table, str) else table[1]


def bare_name(table: TableToken) -> str:
    """The table's name, whether ``table`` is a name, an ARN, or either's token.

    ``arn:aws:dynamodb:eu-west-1:123456789012:table/orders`` is ``orders``; a
    string that is no table ARN is its own bare name.
    """
    spelled = spelled_name(table)
    if spelled.startswith(_ARN_PREFIX):
        resource = spelled.split(":", 5)[-1]
        if resource.startswith(_TABLE_RESOURCE):
            return resource[len(_TABLE_RESOURCE) :].split("/", 1)[0]
    return spelled
