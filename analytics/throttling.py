from __future__ import annotations

import logging
from typing import Any

from rest_framework.request import Request
from rest_framework.throttling import AnonRateThrottle

logger = logging.getLogger(__name__)


class AnonThrottle(AnonRateThrottle):
    """DRF's anonymous throttle, open rather than failing when its cache (Redis) is down.

    Throttling protects the service; refusing every request because Redis is away would defeat it.
    """

    def allow_request(self, request: Request, view: Any) -> bool:
        try:
            return super().allow_request(request, view)
        except Exception as exc:  # the cache client's errors vary (ConnectionInterrupted, RedisError...)
            logger.warning("throttle cache unavailable, request allowed: %s", exc)
            return True
