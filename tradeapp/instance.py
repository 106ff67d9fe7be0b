"""This server process's identity, shared by the debates it runs and the viewers it holds."""

import os
import socket
import uuid

_ids: dict[int, str] = {}


def process_id() -> str:
    """host:pid:random of the running process; a forked child gets an id of its own, and the
    random part tells apart two lives of one pid (every container's server is pid 1)."""
    pid = os.getpid()
    value = _ids.get(pid)
    if value is None:
        value = _ids[pid] = f"{socket.gethostname()[:30]}:{pid}:{uuid.uuid4().hex[:8]}"
    return value
