"""Each ``aiodax.contrib`` module, imported without its extra, says which to install."""

from __future__ import annotations

import importlib
import sys

import pytest

import aiodax


@pytest.mark.parametrize(
    ("module", "dependency", "extra"),
    [
        ("fastapi", "starlette", "fastapi"),
        ("prometheus", "prometheus_client", "prometheus"),
        ("opentelemetry", "opentelemetry", "opentelemetry"),
    ],
)
def test_a_missing_extra_is_named(
    monkeypatch: pytest.MonkeyPatch, module: str, dependency: str, extra: str
) -> None:
    monkeypatch.setitem(sys.modules, dependency, None)
    monkeypatch.delitem(sys.modules, f"aiodax.contrib.{module}", raising=False)
    with pytest.raises(aiodax.MissingExtraError, match=rf"pip install 'aiodax\[{extra}\]'"):
        importlib.import_module(f"aiodax.contrib.{module}")
