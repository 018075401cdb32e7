"""aiodax's own exceptions.

DynamoDB's errors are never translated: a caller of a cached client catches the
same botocore ``ClientError`` subclasses it would catch without aiodax.  Only
misuse of aiodax itself raises from this hierarchy, rooted at ``AiodaxError``.
"""

from __future__ import annotations


class AiodaxError(Exception):
    """Root of every exception aiodax raises on its own account."""


class ConfigurationError(AiodaxError, ValueError):
    """An invalid ``Cache`` option or table override (a ``ValueError``, too)."""


class ConfigurationTypeError(AiodaxError, TypeError):
    """A ``Cache`` option of the wrong type (a ``TypeError``, too).

    An unknown option is Python's own ``TypeError`` (the options are keyword-only).
    """


class WrapError(AiodaxError, TypeError):
    """``Cache.wrap`` was given something that is not a DynamoDB client."""


class CacheClosedError(AiodaxError, RuntimeError):
    """The ``Cache`` was closed; it serves no more requests."""


class MissingExtraError(AiodaxError, ImportError):
    """An option needs an optional dependency that is not installed; the message
    names the extra that brings it (``pip install 'aiodax[redis]'``)."""


class StreamNotEnabledError(AiodaxError, LookupError):
    """``StreamsInvalidator`` was given a table without an enabled DynamoDB Stream
    (or no such table): enable one (``StreamSpecification``, any view type)."""
