"""The ``"aiodax"`` logger: what an operator needs to see, never one line per hit.

It logs tier state changes (the Redis bus degraded, back), drops that fell back
to a whole table (or the whole cache), BatchGetItem keys DynamoDB left
unprocessed and their retries, and observers that failed.  Quiet by default: a
``NullHandler`` keeps Python's last-resort handler from printing to stderr until
the application configures logging.
"""

from __future__ import annotations

import logging
from typing import Final

LOG: Final = logging.getLogger("aiodax")
LOG.addHandler(logging.NullHandler())
