"""The viewer ledger: the Viewer rows of many sockets written in one database call per batch.

Every connect looks up its debate (and its token's user) and inserts a Viewer row, and every
disconnect updates it.
One ``database_sync_to_async`` hop each would queue every handshake behind the process's single
thread-sensitive database thread (docs/benchmarks.md, finding 5). Instead, sockets queue their
requests with the ledger of their event loop, and one task writes them: a lone request at
once, and while requests keep coming at most one batch of opens and one of closes per
BATCH_INTERVAL_S, so a burst costs one hop and one transaction per batch (a hop costs ~1 ms
of CPU here, a row ~50 µs; the hop's Python also holds the GIL the event loop needs). A batch
that fails fails its own waiters only (their sockets close 4500) and its transaction leaves
no row behind. The rows say who watches (the admin); how many watch is streaming.presence.
"""

import asyncio
import logging
import uuid

from channels.db import database_sync_to_async

from streaming import services
from streaming.backends import PerLoop
from streaming.models import Viewer
from streaming.services import ViewerRequest

logger = logging.getLogger(__name__)

BATCH_INTERVAL_S = 0.02
MAX_BATCH = 500


class LedgerError(Exception):
    """Raised to each waiter of a batch whose database write failed."""


class ViewerLedger:
    """Batched viewer opens and closes for the sockets of one event loop."""

    def __init__(self) -> None:
        self._opens: list[tuple[ViewerRequest, asyncio.Future]] = []
        self._closes: list[tuple[int, asyncio.Future | None]] = []
        self._task: asyncio.Task | None = None

    async def open(
        self, *, debate_id: uuid.UUID, client_ip: str | None, token=None, share_hash=None
    ) -> Viewer | str | None:
        """The socket's new Viewer row; services.UNAUTHORIZED when `token` (a validated JWT)
        names no active user, or `share_hash` no active share link of this debate; None when
        there is no such debate."""
        future = asyncio.get_running_loop().create_future()
        request = ViewerRequest(debate_id, client_ip, token, share_hash)
        self._opens.append((request, future))
        self._wake()
        return await future

    async def close(self, *, viewer_id: int) -> None:
        """Mark the viewer's row closed."""
        future = asyncio.get_running_loop().create_future()
        self._closes.append((viewer_id, future))
        self._wake()
        await future

    def _wake(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="viewer-ledger")

    async def _run(self) -> None:
        try:
            while self._opens or self._closes:
                if self._closes:
                    batch, self._closes = self._closes[:MAX_BATCH], self._closes[MAX_BATCH:]
                    await self._write_closes(batch)
                if self._opens:
                    batch, self._opens = self._opens[:MAX_BATCH], self._opens[MAX_BATCH:]
                    await self._write_opens(batch)
                await asyncio.sleep(BATCH_INTERVAL_S)
        finally:
            self._task = None  # nothing queued is left: the next request starts a new task

    async def _write_opens(self, batch: list[tuple[ViewerRequest, asyncio.Future]]) -> None:
        requests = [request for request, _future in batch]
        try:
            viewers = await database_sync_to_async(services.viewers_open)(requests=requests)
        except BaseException as exc:
            _fail([future for _request, future in batch], exc, f"opening {len(batch)} viewers")
            if not isinstance(exc, Exception):
                raise
            return
        for (_request, future), viewer in zip(batch, viewers, strict=True):
            if future.cancelled():
                # The socket went away while its row was written: close the row for it.
                if isinstance(viewer, Viewer):
                    self._closes.append((viewer.pk, None))
            else:
                future.set_result(viewer)

    async def _write_closes(self, batch: list[tuple[int, asyncio.Future | None]]) -> None:
        futures = [future for _viewer_id, future in batch if future is not None]
        try:
            await database_sync_to_async(services.viewers_close)(
                viewer_ids=[viewer_id for viewer_id, _future in batch]
            )
        except BaseException as exc:
            _fail(futures, exc, f"closing {len(batch)} viewers")
            if not isinstance(exc, Exception):
                raise
            return
        for future in futures:
            if not future.done():
                future.set_result(None)


def _fail(futures: list[asyncio.Future], exc: BaseException, what: str) -> None:
    for future in futures:
        if future.done():
            continue
        if isinstance(exc, Exception):
            # One exception per waiter: a shared one would grow its traceback with every raise.
            error = LedgerError(f"{what} failed: {exc!r}")
            error.__cause__ = exc
            future.set_exception(error)
        else:
            future.cancel()


_ledgers: PerLoop[ViewerLedger] = PerLoop(ViewerLedger)


def get_ledger() -> ViewerLedger:
    """The viewer ledger of the running event loop."""
    return _ledgers.get()
