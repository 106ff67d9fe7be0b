"""Operator control of open sockets: disconnect viewers from the admin, across processes."""

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)


async def adisconnect_viewers(viewers) -> int:
    """Send "viewer.disconnect" to each viewer's channel; the consumer closes with 4008."""
    layer = get_channel_layer()
    count = 0
    for channel_name in viewers:
        if channel_name:
            await layer.send(channel_name, {"type": "viewer.disconnect"})
            count += 1
    return count


def disconnect_viewers(queryset) -> int:
    """Disconnect the live viewers of a queryset; return how many were asked."""
    channels = list(queryset.values_list("channel_name", flat=True))
    count = async_to_sync(adisconnect_viewers)(channels)
    logger.info("operator asked %d viewers to disconnect", count)
    return count
