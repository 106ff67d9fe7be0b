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
        self.watchers: list[asyncio.Task] = []  # one keep_watching task per viewer

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
        targets: list,
        rate: float = 0.0,
        start_at: float = 0.0,
    ) -> dict:
        """Open the watching viewers (host, port, local ip), a bounded number at a time; each
        one that loses its socket later reconnects to one of `targets` (wsclient.keep_watching)."""
        targets = [tuple(target) for target in targets]

        def path_for(last_seq: int) -> str:
            return f"{path}{'&' if '?' in path else '?'}lastSeq={last_seq}"

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
            if rate > 0:  # arrivals at a fixed rate, not a bounded number in flight
                await asyncio.sleep(max(0.0, start_at + i / rate - time.time()))
            for attempt in range(retries + 1):
                async with gate if rate <= 0 else contextlib.nullcontext():
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
                    self.watchers.append(
                        wsclient.keep_watching(
                            viewer,
                            targets,
                            targets.index((host, port)),
                            path_for,
                            origin,
                            local_ip,
                            timeout,
                        )
                    )
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

    async def cmd_watch(
        self, deadline: float, storm_from: float | None = None, storm_until: float | None = None
    ) -> dict:
        """Wait until every viewer saw the end of the debate (or the deadline), then report;
        `storm_from`/`storm_until`: the window whose latency of undisturbed viewers is kept
        apart (a server killed under load)."""
        stats = self.stats
        if storm_from is not None:
            stats.storm_from, stats.storm_until = storm_from, storm_until or float("inf")
        pending = [v.done for v in self.viewers if not v.done.done()]
        if pending:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, deadline - time.time())):
                    await asyncio.gather(*pending)
        await asyncio.sleep(0)
        summaries = [
            {
                "last": v.last_seq,
                "final": v.final_seq,
                "status": v.final_status,
                "gaps": sorted(v.gaps)[:20],
                "n_gaps": len(v.gaps),
                "dups": v.dups,
                "reordered": v.reordered,
                "first_token": v.first_token,
                "close": v.close_code if v.lost and not v.final_status else None,
                "reconnects": v.reconnects,
                "rehome": v.rehome_times,
                "disrupted": v.disrupted,
                "votes": v.votes,
            }
            for v in self.viewers
        ]
        return {
            "viewers": summaries,
            "token_hist": dict(stats.token_hist),
            "token_flush_hist": dict(stats.token_flush_hist),
            "event_hist": stats.event_hist,
            "event_flush_hist": stats.event_flush_hist,
            "storm_hist": dict(stats.storm_hist),
            "token_max": stats.token_max,
            "token_frames": stats.token_frames,
            "events": stats.events,
            "replayed": stats.replayed,
            "sample": stats.sample,
        }

    async def cmd_close(self) -> dict:
        """Close every viewer."""
        self.close_all()
        await asyncio.sleep(0.5)
        return {"ok": True}

    def close_all(self) -> None:
        """Stop reconnecting, then close every viewer without waiting."""
        for task in self.watchers:
            task.cancel()
        self.watchers = []
        for viewer in self.viewers:
            viewer.rehoming = False
            viewer.close()
        self.viewers = []
