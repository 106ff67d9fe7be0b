"""The parent's side of the client processes: spawn them, send commands, gather answers."""

import contextlib
import multiprocessing
import time

from bench import clientproc
from bench.errors import BenchError


class ClientPool:
    """C client processes (bench.clientproc), each driven over its own pipe."""

    def __init__(self) -> None:
        self.clients: list = []  # (process, pipe)

    def __len__(self) -> int:
        return len(self.clients)

    def start(self, count: int, timeout: float = 60) -> dict:
        """Spawn `count` processes and wait until each is ready; return their pids and loop."""
        ctx = multiprocessing.get_context("spawn")
        for i in range(count):
            parent, child = ctx.Pipe()
            proc = ctx.Process(
                target=clientproc.main, args=(child, i), daemon=True, name=f"bench-client-{i}"
            )
            proc.start()
            self.clients.append((proc, parent))
        ready = [self.answer(i, timeout) for i in range(count)]
        return {"pids": [r["ready"] for r in ready], "uvloop": all(r["uvloop"] for r in ready)}

    def ask(self, index: int, command: dict, timeout: float) -> dict:
        """Send a command to one client process and wait for its answer."""
        _, pipe = self.clients[index]
        pipe.send(command)
        return self.answer(index, timeout)

    def answer(self, index: int, timeout: float) -> dict:
        """The next answer of one client process."""
        proc, pipe = self.clients[index]
        deadline = time.time() + timeout
        while not pipe.poll(0.2):
            if not proc.is_alive():
                raise BenchError(f"client process {index} died (exit {proc.exitcode})")
            if time.time() > deadline:
                raise BenchError(f"client process {index} did not answer in {timeout:.0f}s")
        result = pipe.recv()
        if "error" in result:
            raise BenchError(f"client process {index}: {result['error']}")
        return result

    def broadcast(self, commands: list[dict], timeout: float) -> list[dict]:
        """Send one command to each client process, then gather every answer."""
        self.send_all(commands)
        return self.gather(timeout)

    def send_all(self, commands: list[dict]) -> None:
        """Send one command to each client process, without waiting."""
        for (_, pipe), command in zip(self.clients, commands, strict=True):
            pipe.send(command)

    def gather(self, timeout: float) -> list[dict]:
        """The next answer of every client process."""
        return [self.answer(i, timeout) for i in range(len(self.clients))]

    def close(self) -> None:
        """Ask every process to quit, then terminate and kill what is left."""
        for i, (proc, pipe) in enumerate(self.clients):
            with contextlib.suppress(Exception):
                if proc.is_alive():
                    pipe.send({"cmd": "quit"})
                    self.answer(i, 3)
        for proc, _ in self.clients:
            proc.join(timeout=2)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=2)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=2)
