"""What DynamoDB requests mean for a cache: pure rules, no asyncio, no botocore, no state.

``wire`` (canonical keys, images), ``projection`` (projections, fingerprints),
``schema`` (key schemas, the partition a Query reads), ``reads`` (read plans),
``writes`` (write plans), ``partiql`` (tables a statement writes), ``tags`` (store
keys and the invalidation vocabulary), ``responses`` (answer shapes), ``policy``
(TTL and retry rules).  Each is unit-tested without a server (``tests/unit``).
"""
