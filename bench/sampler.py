"""CPU and resident memory of the server processes, sampled while a benchmark runs."""

import contextlib
import threading

import psutil


def pids_listening(ports: list[int]) -> list[int]:
    """The PIDs listening on these local ports (for --url targets we did not start)."""
    pids = set()
    with contextlib.suppress(psutil.Error, PermissionError):
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr.port in ports and conn.pid:
                pids.add(conn.pid)
    return sorted(pids)


class ProcessSampler:
    """Samples CPU and resident memory of a set of PIDs from a background thread."""

    def __init__(self, pids: list[int], interval: float = 0.5) -> None:
        self.procs = []
        for pid in pids:
            with contextlib.suppress(psutil.Error):
                self.procs.append(psutil.Process(pid))
        self.interval = interval
        self.peak_rss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak_rss = max(self.peak_rss, self.rss())

    def start(self) -> None:
        """Start sampling peak memory."""
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling."""
        self._stop.set()
        self._thread.join(timeout=2)

    def rss(self) -> int:
        """Total resident bytes now."""
        total = 0
        for proc in self.procs:
            with contextlib.suppress(psutil.Error):
                total += proc.memory_info().rss
        return total

    def cpu(self) -> float:
        """Total CPU seconds (user + system) so far."""
        total = 0.0
        for proc in self.procs:
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                total += times.user + times.system
        return total
