"""The one error a benchmark run raises when it cannot be carried out."""


class BenchError(RuntimeError):
    """The run could not be carried out (servers, REST calls, client processes)."""
