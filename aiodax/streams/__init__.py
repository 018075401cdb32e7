"""Writes that bypass the cache: DynamoDB Streams → invalidations on the Redis bus.

- ``StreamsInvalidator`` (also ``aiodax.StreamsInvalidator``): follows tables'
  streams and drops every changed item in every cache of a namespace;
- ``aiodax streams`` (``aiodax.streams.cli``): the same as a command;
- ``lambda_handler`` / ``LambdaInvalidator`` (``aiodax.streams.lambda_``): the same
  for a Lambda function subscribed to the stream.

Private units: ``_reader`` (one shard under its lease), ``_redis`` (leases,
checkpoints, watermarks, publishing), ``_common``; the rules are
``aiodax._rules.streams``.
"""

from __future__ import annotations

from ._invalidator import StreamsInvalidator

__all__ = ["StreamsInvalidator"]
