"""Sites: which DynamoDB each client talks to, and which tokens name one table.

A client's *site* is what decides which tables its requests reach and which items
it may read: its endpoint, its region, and its credentials.  Clients that share
all three (a session's client and resource, say) share entries; any other pair
keeps its entries apart (``_rules.tables``), so that one cache never serves an
item of another region's, account's or principal's table.

Credentials are told apart by their access key when they are static, and by the
credentials object itself when they refresh (an assumed role's keys change on
every refresh, while the object, shared by a session's clients, does not).

A site's *label* names it the same way in every process, for what a shared tier
keeps (``_tiers.Load.site``): a digest of the endpoint, the region and a static
access key.  Refreshing credentials have no lasting name, so their clients share
the label of their endpoint and region: one namespace per account and principal
keeps them apart (docs/operations.md).
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable
from typing import Any, Final

from .._backend import Backend
from .._rules.tables import TableToken, bare_name


def site_identity(backend: Backend) -> Hashable:
    """(endpoint, region, credentials' identity): what makes two clients' tables one."""
    meta: Any = getattr(backend, "meta", None)
    # botocore keeps a client's credentials in its request signer and offers no
    # public accessor; a backend without one is keyed by its own identity.
    signer = getattr(backend, "_request_signer", None)
    credentials: Any = getattr(signer, "_credentials", backend) if signer is not None else backend
    if credentials is None:
        principal: Hashable = ("anonymous",)
    elif hasattr(credentials, "_refresh") or not isinstance(
        getattr(credentials, "access_key", None), str
    ):
        principal = ("credentials", _ByIdentity(credentials))
    else:
        principal = ("access key", credentials.access_key)
    return (
        getattr(meta, "endpoint_url", None),
        getattr(meta, "region_name", None),
        principal,
    )


def site_label(identity: Any) -> str:
    """The name of the site of ``identity`` (``site_identity``) in every process."""
    endpoint, region, principal = identity
    key = principal[1] if principal[0] == "access key" else ""
    spelled = f"{endpoint or ''}\n{region or ''}\n{key}".encode()
    return hashlib.blake2b(spelled, digest_size=8).hexdigest()


class _ByIdentity:
    """An object compared by identity, kept alive so that its ``id`` is not reused."""

    __slots__ = ("target",)

    def __init__(self, target: object) -> None:
        self.target = target

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _ByIdentity) and other.target is self.target

    def __hash__(self) -> int:
        return id(self.target)


#: How many backends' sites are remembered by object (an app that makes a client per
#: request would otherwise keep every one alive).
_REMEMBERED_BACKENDS: Final = 64


class Sites:
    """Site numbers by identity, and every token seen of each bare table name."""

    __slots__ = ("_aliases", "_by_backend", "_labels", "_numbers")

    def __init__(self) -> None:
        self._numbers: dict[Hashable, int] = {}
        #: site number → its label (``site_label``)
        self._labels: list[str] = []
        #: id(backend) → (backend, site): reading an identity costs a few lookups
        self._by_backend: dict[int, tuple[Backend, int]] = {}
        self._aliases: dict[str, set[TableToken]] = {}

    def site_of(self, backend: Backend) -> int:
        """``backend``'s site number; the first identity met is site 0."""
        found = self._by_backend.get(id(backend))
        if found is not None and found[0] is backend:
            return found[1]
        identity = site_identity(backend)
        number = self._numbers.get(identity)
        if number is None:
            number = self._numbers[identity] = len(self._numbers)
            self._labels.append(site_label(identity))
        if len(self._by_backend) >= _REMEMBERED_BACKENDS:
            self._by_backend.clear()
        self._by_backend[id(backend)] = (backend, number)
        return number

    def label_of(self, backend: Backend) -> str:
        """``backend``'s site label (see the module docstring)."""
        return self._labels[self.site_of(backend)]

    def note(self, table: TableToken) -> None:
        """``table`` is read or written: drops of its bare name must reach it."""
        name = bare_name(table)
        aliases = self._aliases.get(name)
        if aliases is None:
            self._aliases[name] = {table}
        elif table not in aliases:
            aliases.add(table)

    def aliases(self, table: TableToken) -> tuple[TableToken, ...]:
        """Every token noted with ``table``'s bare name, ``table`` itself included."""
        found = self._aliases.get(bare_name(table))
        if not found:
            return (table,)
        if table in found:
            return tuple(found)
        return (table, *found)
