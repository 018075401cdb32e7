"""Integrations with the frameworks and telemetry applications already use.

Each module needs its own extra and says so on import when it is missing
(``aiodax.MissingExtraError``):

======================================  ===========================  ==================
module                                  what                         extra
======================================  ===========================  ==================
``aiodax.contrib.fastapi``              lifespan, dependencies,      ``aiodax[fastapi]``
                                        no-cache, a status header
                                        (FastAPI and Starlette)
``aiodax.contrib.prometheus``           a ``prometheus_client``      ``aiodax[prometheus]``
                                        collector, request latency
``aiodax.contrib.opentelemetry``        OTel metrics and spans       ``aiodax[opentelemetry]``
======================================  ===========================  ==================
"""

from __future__ import annotations

import importlib

from .._errors import MissingExtraError


def require(extra: str, *modules: str) -> None:
    """Import ``modules`` or raise ``MissingExtraError`` naming ``extra``."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise MissingExtraError(
                f"aiodax.contrib.{extra} needs {module}: pip install 'aiodax[{extra}]'"
            ) from error
