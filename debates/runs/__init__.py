"""Debate runs: one asyncio task per debate in the process that claimed it (no Celery).

- ``run``: DebateRun drives one claimed debate through the LangGraph graph, publishing its tokens
  and turns (streaming.publisher) and saving through debates.services.
- ``launch``: where a run goes (this process's runner thread, the server's loop, or the caller's
  loop), and stopping a run wherever it is (here, or through the control channel).
- ``errors``: what can end a run, and the short, stack-free error a failed debate shows.

Starting, cancelling and recovering debates is debates.lifecycle, which calls into these; the
periodic takeover of debates whose runner died is debates.janitor.
"""
