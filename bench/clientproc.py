"""One load-generating client process: an asyncio loop (uvloop when present) of raw viewers.

The parent drives it over a multiprocessing pipe with small command dicts and gets plain data
back (histograms and per-viewer summaries, never per-event lists), so 50,000 viewers cost the
parent a few MB.
"""

import asyncio
import contextlib
import os
import resource
import signal
import time

from bench import wsclient


def main(conn, index: int) -> None:
    """Entry point of a client process (multiprocessing target)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a runtime dependency
        runner = asyncio.run
    runner(_Client(conn, index).serve())


class _Client:
    """Holds this process's viewers and answers the parent's commands."""

    def __init__(self, conn, index: int) -> None:
        self.conn = conn
        self.index = index
        self.stats = wsclient.Stats()
        self.viewers: list[wsclient.Viewer] = []

    async def serve(self) -> None:
        """Read commands until told to quit."""
        loop = asyncio.get_running_loop()
        self.conn.send({"ready": os.getpid(), "uvloop": "uvloop" in type(loop).__module__})
        while True:
            command = await loop.run_in_executor(None, self.conn.recv)
            name = command.pop("cmd")
            if name == "quit":
                self.close_all()
                await asyncio.sleep(0.2)
                self.conn.send({"ok": True})
                return
            try:
                result = await getattr(self, f"cmd_{name}")(**command)
            except Exception as exc:
                result = {"error": f"{type(exc).__name__}: {exc}"}
            self.conn.send(result)

    # --- commands ------------------------------------------------------------------------------

    async def cmd_setup(
        self,
        targets: list,
        path: str,
        origin: str,
        count: int,
        rate: float,
        clients: int,
        start_at: float,
        local_ips: list,
        timeout: float,  # noqa: ASYNC109
    ) -> dict:
        """Open this process's share of the set-up connections at `rate`/s, then close them."""
        stats = wsclient.Stats()  # set-up connections see no events worth keeping
        opened: list[wsclient.Viewer] = []
        times: list[float] = []
        errors: dict[str, int] = {}

        async def one(i: int) -> None:
            delay = start_at + i / rate - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            host, port = targets[i % len(targets)]
            viewer, took, err = await wsclient.open_viewer(
                host, port, path, origin, stats, local_ips[i % len(local_ips)], timeout
            )
            if err:
                errors[err] = errors.get(err, 0) + 1
            else:
                opened.append(viewer)
                times.append(took)

        await asyncio.gather(*(one(i) for i in range(self.index, count, clients)))
        for viewer in opened:
            viewer.close()
        await asyncio.sleep(0.5)
        return {"times": times, "errors": errors}

    async def cmd_connect(
        self,
        viewers: list,
        path: str,
        origin: str,
        concurrency: int,
        timeout: float,  # noqa: ASYNC109
        retries: int,
        sample: bool,
    ) -> dict:
        """Open the watching viewers (host, port, local ip), a bounded number at a time."""
        started = time.time()
        gate = asyncio.Semaphore(concurrency)
        times: list[float] = []
        errors: dict[str, int] = {}
        failed = 0
        retried = 0
        if sample:
            self.stats.sample = []

        async def one(i: int, host: str, port: int, local_ip: str) -> None:
            nonlocal failed, retried
            for attempt in range(retries + 1):
                async with gate:
                    viewer, took, err = await wsclient.open_viewer(
                        host,
                        port,
                        path,
                        origin,
                        self.stats,
                        local_ip,
                        timeout,
                        sample=sample and i == 0,
                    )
                if not err:
                    self.viewers.append(viewer)
                    times.append(took)
                    return
                errors[err] = errors.get(err, 0) + 1
                if attempt < retries:
                    retried += 1
                    await asyncio.sleep(0.5 * (attempt + 1))
            failed += 1

        await asyncio.gather(*(one(i, *v) for i, v in enumerate(viewers)))
        return {
            "connected": len(self.viewers),
            "failed": failed,
            "retried": retried,
            "errors": errors,
            "times": times,
            "elapsed": time.time() - started,
        }

    async def cmd_watch(self, deadline: float) -> dict:
        """Wait until every viewer saw the end of the debate (or the deadline), then report."""
        pending = [v.done for v in self.viewers if not v.done.done()]
        if pending:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, deadline - time.time())):
                    await asyncio.gather(*pending)
        await asyncio.sleep(0)
        stats = self.stats
        summaries = [
            (
                v.last_seq,
                v.final_seq,
                v.final_status,
                sorted(v.gaps)[:20],
                len(v.gaps),
                v.dups,
                v.reordered,
                v.first_token,
                v.close_code if v.lost and not v.final_status else None,
            )
            for v in self.viewers
        ]
        return {
            "viewers": summaries,
            "token_hist": dict(stats.token_hist),
            "event_hist": stats.event_hist,
            "token_max": stats.token_max,
            "token_frames": stats.token_frames,
            "events": stats.events,
            "sample": stats.sample,
        }

    async def cmd_close(self) -> dict:
        """Close every viewer."""
        self.close_all()
        await asyncio.sleep(0.5)
        return {"ok": True}

    def close_all(self) -> None:
        """Close every viewer without waiting."""
        for viewer in self.viewers:
            viewer.close()
        self.viewers = []
