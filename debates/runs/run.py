"""One run of one claimed debate: the graph's tokens and turns published, its arguments saved.

A run announces itself (``services.run_begin``: ``running``, held until the opening's first
token), streams each turn's tokens through streaming.publisher, saves each finished argument
(``services.run_save_argument``) before its ARGUMENT_COMPLETE goes out, and ends the debate
(``services.run_finish``, which announces the final status). Every database call is one short
service call in a worker thread, retried through a lock or a lost connection (tradeapp.retry;
the argument save is idempotent, so a retry after a commit whose reply was lost saves nothing
twice), never held across an await. Publishing rides out a Redis outage the same way
(streaming.publisher); past SERVICE_RETRY_LIMIT_S the debate fails with an error that names the
service, never its address.

Stopping. ``request_stop`` (thread-safe through the run's loop; debates.runs.launch calls it for
a cancel, whether sent here or through the control channel, and the heartbeat for a debate that
is no longer this run's or that stalled) cancels the run where it is, mid-token: the partial
argument is dropped (its tokens were streamed, but no Argument row and no ARGUMENT_COMPLETE are
written). A turn being saved is never cut: its save and its ARGUMENT_COMPLETE finish first. A
cancelled debate's status is then announced by the run (``services.run_stopped``), so it is the
debate's last event.

Failures. A turn whose model failed mid-way (``errors.retryable_llm_failure``) is restarted
from the saved arguments, up to DEBATE_LLM_TURN_RETRIES times per turn with backoff (its
TURN_CHANGE is sent again, which restarts the turn's text). Any other exception, or one past
those retries, ends the debate `failed` with a short error (no stack); finished arguments stay
saved. So does a run that stalls: the heartbeat proves the process is alive, not
that the debate moves, so the heartbeat loop also fails a run that has had no token and no
finished node for ``idle_timeout_s()``; and a model that writes past MAX_ARGUMENT_CHARS in one
turn fails it too. A CancelledError nobody asked for fails the debate; only the process's own
shutdown (the run task itself cancelled) leaves it `running` for takeover.

Moderator controls (debates.controls). The commands live in the database (``Debate.paused_at``,
``conclusion_reason``, Question rows); a ``debate.controls`` control message (``poke``) and every
heartbeat make the run read them. Paused: the run announces DEBATE/PAUSED, then holds the model
between tokens (``_PauseGate``, a LangChain callback awaited after each token) and publishes no
token until it announces DEBATE/RESUMED; the stall detector does not count the pause; a pause
older than DEBATE_PAUSE_MAX_S concludes the debate (``pause_timeout``). ``conclude(reason)`` is
the one way to end a debate early: the run records the reason and announces DEBATE/CONCLUDING
once (``services.run_conclude``), the argument being written finishes, then the graph is run
again from the saved arguments with ``max_turns`` cut to the turns spoken, so its router goes
to the moderator, whose verdict weighs what was said. Questions: each turn's node asks the run
for the open questions (``configurable.questions``) as it builds its prompt, and the node's
update names the ones it addressed, marked answered with the argument's save (one transaction).

Usage and budgets. Each finished argument is saved with its model call's usage (the endpoint's
counts, or our estimate) and cost (debates.costs), and a DEBATE/USAGE reading goes out with its
ARGUMENT_COMPLETE and with every USAGE_EVERY_N_TOKENS-th token. A reading that reaches the run's
budget (``services.run_budget``: the debate's own, or what is left of its creator's daily one)
before the last bull/bear turn concludes the debate with reason ``budget``, through the same
``conclude`` as the moderator's (CONCLUDING is announced at once).

Takeover. A run of a debate taken over from a dead runner rebuilds the graph's state from the
saved arguments and the stored market context and continues after the last saved argument; it
announces ``running`` again and re-sends the unfinished turn's TURN_CHANGE, which restarts that
turn's text (docs/streaming.md). A paused debate is announced paused again and stays paused; a
concluded one goes to the verdict (its CONCLUDING is announced only if the dead run had not).
"""

import asyncio
import contextlib
import contextvars
import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from langchain_core.callbacks import AsyncCallbackHandler

from debates import costs, selectors, services
from debates.engine.graph import build_graph
from debates.engine.llm import build_llm, message_text
from debates.engine.market import (
    MarketDataError,
    canonical_asset,
    get_provider,
    provider_for_source,
)
from debates.engine.nodes import model_name
from debates.engine.state import (
    MODERATOR,
    ArgumentItem,
    QuestionItem,
    initial_state,
    speaker_for_turn,
)
from debates.models import ConclusionReason, DebateStatus
from debates.runs.errors import (
    RunawayOutputError,
    StopRun,
    UnfinishedGraphError,
    describe_error,
    known_failure,
    retry_after_s,
    retryable_llm_failure,
)
from streaming import control, metrics, protocol, publisher
from tradeapp.instance import process_id
from tradeapp.retry import delays, retry_async, retry_sync

logger = logging.getLogger(__name__)

# An argument longer than this is a runaway model, not an argument: the debate fails.
MAX_ARGUMENT_CHARS = 20_000
# Questions put to one turn (oldest first; the others go to the turns after): a bounded prompt.
MAX_QUESTIONS_PER_TURN = 3

Observer = Callable[[str, dict], None]

_active: dict[str, "DebateRun"] = {}
_active_lock = threading.Lock()


def local_run(debate_id) -> "DebateRun | None":
    """This process's run of the debate, while it runs."""
    return _active.get(str(debate_id))


def active_runs() -> list["DebateRun"]:
    """This process's runs that have not ended."""
    with _active_lock:
        return list(_active.values())


def stop_local(debate_id, reason: str) -> bool:
    """Stop this process's run of the debate (thread-safe); False when it runs none."""
    run = local_run(debate_id)
    if run is None or run.loop is None or run.loop.is_closed():
        return False
    run.loop.call_soon_threadsafe(run.request_stop, reason)
    return True


def on_stop_command(message: dict) -> None:
    """The ``debate.stop`` control command: stop this process's run of the debate."""
    stop_local(message["debate"], message.get("reason", "cancelled"))


def llm_turn_retries() -> int:
    """How many times a turn whose model failed mid-way is tried again (DEBATE_LLM_TURN_RETRIES)."""
    return max(int(getattr(settings, "DEBATE_LLM_TURN_RETRIES", 2)), 0)


def notify_local(debate_id) -> bool:
    """Make this process's run of the debate read its moderator controls (thread-safe)."""
    run = local_run(debate_id)
    if run is None or run.loop is None or run.loop.is_closed():
        return False
    run.loop.call_soon_threadsafe(run.poke)
    return True


def on_controls_command(message: dict) -> None:
    """The ``debate.controls`` control command: a moderator changed the debate's controls."""
    notify_local(message["debate"])


class _PauseGate(AsyncCallbackHandler):
    """Holds the model after each token while the debate is paused (no token is written)."""

    def __init__(self, run: "DebateRun") -> None:
        self.run = run

    async def on_llm_new_token(self, token: str, **kwargs) -> None:
        """Called after each token the model streams: wait while the debate is paused."""
        await self.run.unpaused.wait()


def idle_timeout_s() -> float:
    """Seconds without a token or a finished node after which a run counts as stalled.

    DEBATE_IDLE_TIMEOUT_S when set; otherwise long enough for every retry of a timed-out OpenAI
    request plus a slow offline rate, with a minute to spare.
    """
    configured = getattr(settings, "DEBATE_IDLE_TIMEOUT_S", None)
    if configured:
        return float(configured)
    openai_worst = float(settings.OPENAI_TIMEOUT_S) * (int(settings.OPENAI_MAX_RETRIES) + 1)
    rate = float(settings.OFFLINE_LLM_TOKENS_PER_S)
    return 60.0 + openai_worst + (1.0 / rate if rate > 0 else 0.0)


async def _service(fn, **kwargs):
    """Call a sync service in a worker thread, retrying a transient database error (a lock, a
    lost connection) for up to SERVICE_RETRY_LIMIT_S (tradeapp.retry)."""

    def call():
        return retry_sync(lambda: fn(**kwargs), what=f"{fn.__name__} of a debate")

    return await sync_to_async(call)()


class DebateRun:
    """Drives one claimed debate through the graph, saving and publishing as it goes."""

    def __init__(
        self,
        debate_id,
        *,
        runner_id: str | None = None,
        llm_kind: str | None = None,
        tokens_per_s: float | None = None,
        llm=None,
        market_provider=None,
        observer: Observer | None = None,
    ) -> None:
        self.debate_id = str(debate_id)
        self.runner_id = runner_id or process_id()
        self.llm_kind = llm_kind or settings.DEBATE_LLM
        self.tokens_per_s = (
            settings.OFFLINE_LLM_TOKENS_PER_S if tokens_per_s is None else tokens_per_s
        )
        self.llm = llm
        self.market_provider = market_provider
        self.observer = observer
        self.loop: asyncio.AbstractEventLoop | None = None
        self.status: str = DebateStatus.RUNNING
        self.error: str = ""
        self._stop_reason: str | None = None
        self._work: asyncio.Task | None = None
        self._saving = False  # a finished turn is being saved and announced: never cut it
        self._progress_at = 0.0  # loop time of the last token or finished node
        self._started_at = 0.0  # monotonic time the run started, for time to first token
        self._first_token_sent = False
        self._verdict_saved = False
        self._market: dict = {}  # the snapshot the debate is grounded in (prices its verdict)
        self._asset = ""
        self._turn = 0
        self._agent = ""
        # Moderator controls: this run's view of the debate's row (see the module docstring).
        self.unpaused = asyncio.Event()
        self.unpaused.set()
        self._paused_at = None
        self._pause_timer: asyncio.Task | None = None
        self._conclude_reason: str | None = None
        self._concluding = False
        self._sync_task: asyncio.Task | None = None
        self._sync_again = False
        self._max_turns = 0
        self._handed: set[int] = set()  # questions put to a turn of the current graph stream
        self._context = contextvars.Context()  # the run's own, from run() on
        # Usage: the saved arguments', the budget it concludes at, the argument in progress.
        self._usage = costs.DebateUsage()
        self._budget: tuple = (None, None)  # (tokens, US dollars)
        self._model = ""  # the model's name: prices the argument in progress, names the verdict
        self._live_tokens = 0

    # Called on the run's loop (debates.runs.launch hops there), or by the run's own watchers.
    def request_stop(self, reason: str) -> None:
        """Ask the run to stop now ('cancelled', 'lost', 'stalled' or 'released': the process
        shuts down and hands the debate over); idempotent."""
        if self._stop_reason is None:
            self._stop_reason = reason
        if self._work is not None and not self._work.done() and not self._saving:
            self._work.cancel()

    # Called on the run's loop (notify_local hops there), or by the run itself.
    def poke(self) -> None:
        """Read the moderator controls from the database now and act on them."""
        if self._sync_task is not None and not self._sync_task.done():
            self._sync_again = True
            return
        # In the run's own context: a poke handed over from a sync view's thread would otherwise
        # carry asgiref's executor of that thread, and the run's database calls would refuse.
        self._sync_task = self.loop.create_task(
            self._sync_controls_loop(), context=self._context.copy()
        )

    def conclude(self, reason: str) -> None:
        """End the debate early (reason: 'moderator', 'pause_timeout', ...): the argument being
        written finishes, then the moderator gives the verdict on what was said; idempotent,
        the first reason recorded on the debate wins. Call on the run's loop."""
        if self._conclude_reason is None:
            self._conclude_reason = reason
        self.poke()

    async def _sync_controls_loop(self) -> None:
        while True:
            self._sync_again = False
            try:
                await self._sync_controls()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("reading the controls of debate %s failed", self.debate_id)
            if not self._sync_again:
                return

    async def _sync_controls(self) -> None:
        """Bring the run in line with the debate's controls (the row is the source of truth)."""
        row = await _service(selectors.debate_controls, debate_id=self.debate_id)
        if row is None or row["status"] != DebateStatus.RUNNING:
            return
        if row["runner_id"] != self.runner_id:
            return  # taken over: the owner acts, and this run's heartbeat stops it
        paused_at = row["paused_at"]
        if self._conclude_reason is None and row["conclusion_reason"]:
            self._conclude_reason = row["conclusion_reason"]
        if self._conclude_reason is not None and not self._concluding:
            self._concluding = True
            reason = await _service(
                services.run_conclude,
                debate_id=self.debate_id,
                runner_id=self.runner_id,
                reason=self._conclude_reason,
            )
            if reason is not None:
                self._conclude_reason = reason
                await self._publish(protocol.CONCLUDING, {"reason": reason})
            paused_at = None  # concluding ends a pause (run_conclude cleared it)
        if paused_at is not None and paused_at != self._paused_at:
            announce = self._paused_at is None
            self._paused_at = paused_at
            self.unpaused.clear()  # before anything awaits: no token passes from now on
            self._restart_pause_timer(paused_at)
            if announce:
                paused_iso = protocol.iso_at(paused_at.timestamp())
                await self._publish(protocol.PAUSED, {"pausedAt": paused_iso})
        elif paused_at is None and self._paused_at is not None:
            self._paused_at = None
            self._restart_pause_timer(None)
            await self._publish(protocol.RESUMED, {})
            self._progress_at = self.loop.time()
            self.unpaused.set()

    def _restart_pause_timer(self, paused_at) -> None:
        if self._pause_timer is not None:
            self._pause_timer.cancel()
        self._pause_timer = None
        if paused_at is not None:
            self._pause_timer = self.loop.create_task(
                self._expire_pause(paused_at), context=self._context.copy()
            )

    async def _expire_pause(self, paused_at) -> None:
        """A pause older than DEBATE_PAUSE_MAX_S concludes the debate."""
        ends = paused_at + timedelta(seconds=float(settings.DEBATE_PAUSE_MAX_S))
        await asyncio.sleep(max(0.0, (ends - timezone.now()).total_seconds()))
        expired = await _service(
            services.run_pause_expired,
            debate_id=self.debate_id,
            runner_id=self.runner_id,
            paused_at=paused_at,
        )
        if expired:
            self.conclude(ConclusionReason.PAUSE_TIMEOUT)
        else:
            self.poke()  # resumed (or concluded) meanwhile: catch up with the row

    async def _open_questions(self) -> list[QuestionItem]:
        """The open questions not yet put to a turn of this graph stream (a node's prompt)."""
        items = await _service(selectors.open_questions, debate_id=self.debate_id)
        fresh = [q for q in items if q["id"] not in self._handed][:MAX_QUESTIONS_PER_TURN]
        self._handed.update(q["id"] for q in fresh)
        return fresh

    @contextlib.contextmanager
    def _uninterrupted(self):
        """A stop asked for inside this block takes effect when it ends."""
        self._saving = True
        try:
            yield
        finally:
            self._saving = False
        if self._stop_reason is not None and self._work is asyncio.current_task():
            self._work.cancel()

    async def _publish(
        self, action_type: str, payload: dict, *, hold_s: float = 0.0, also: tuple = ()
    ) -> None:
        """Publish an event (and `also`, events that go out with it, e.g. a USAGE reading)."""
        events = [(action_type, payload), *also]
        await publisher.publish_events(self.debate_id, events, hold_s=hold_s)
        if action_type == protocol.TOKEN_RECEIVED and not self._first_token_sent:
            self._first_token_sent = True
            metrics.TIME_TO_FIRST_TOKEN.observe(time.monotonic() - self._started_at)
        if self.observer is not None:
            for kind, fields in events:
                self.observer(kind, fields)

    def is_active(self) -> bool:
        """Whether this run is still the process's run of its debate (it has not ended)."""
        return _active.get(self.debate_id) is self

    def register(self) -> None:
        """Make this run the process's run of its debate (``local_run``) until it ends."""
        with _active_lock:
            _active[self.debate_id] = self

    async def run(self) -> str:
        """Run to the end; return the final status (the DB row is the source of truth)."""
        self.loop = asyncio.get_running_loop()
        self._context = contextvars.copy_context()
        self.register()
        try:
            await retry_async(control.ensure_listening, what="the control channel of a run")
            return await self._run()
        finally:
            with _active_lock:
                if _active.get(self.debate_id) is self:
                    del _active[self.debate_id]
            for task in (self._sync_task, self._pause_timer):
                if task is not None and not task.done():
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
            publisher.release(self.debate_id)
            # The run's DB calls share one worker thread: release its connection like a request.
            await sync_to_async(close_old_connections)()

    async def _run(self) -> str:
        self._started_at = time.monotonic()
        heartbeat = asyncio.create_task(self._heartbeat_loop())
        self._progress_at = self.loop.time()
        self._work = asyncio.create_task(self._drive())
        if self._stop_reason:
            self._work.cancel()
        try:
            await self._work
            if asyncio.current_task().cancelling():
                # Our cancel reached the work, and something under it (a library) swallowed it:
                # still a shutdown, never a completed debate.
                raise asyncio.CancelledError
            final, error = DebateStatus.COMPLETED, ""
        except asyncio.CancelledError:
            if asyncio.current_task().cancelling():
                raise  # the process is shutting down: leave the heartbeat to go stale
            if self._stop_reason == "stalled":
                final = DebateStatus.FAILED
                error = f"No progress for {idle_timeout_s():g} s: the LLM or a service stalled."
            elif self._stop_reason is None:
                # Cancelled from inside (a library, not us): never leave the debate running.
                final, error = DebateStatus.FAILED, "The run was cancelled unexpectedly."
            else:
                final, error = None, ""
        except StopRun:
            final, error = None, ""
        except Exception as exc:
            final, error = DebateStatus.FAILED, describe_error(exc)
            if known_failure(exc) is None:
                logger.exception("debate %s failed", self.debate_id)
            else:  # an outside service failed as services do: its stack says nothing more
                logger.warning("debate %s failed: %s", self.debate_id, error)
        finally:
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)
        if final is not None and await _service(
            services.run_finish,
            debate_id=self.debate_id,
            runner_id=self.runner_id,
            status=final,
            error=error,
        ):
            self.status, self.error = final, error
            return final
        # Not ours any more: cancelled by a user (announced now), or taken over by another run.
        self.status = await _service(services.run_stopped, debate_id=self.debate_id)
        if self.status != DebateStatus.CANCELLED:
            logger.warning("debate %s lost by runner %s", self.debate_id, self.runner_id)
        return self.status

    async def _drive(self) -> None:
        # Everything the first token needs is ready before the opening is published: a large
        # audience's fan-out of that event would otherwise delay this work on the shared loop.
        debate = await _service(selectors.debate_list().get, pk=self.debate_id)
        market = debate.market_context
        if not market:
            provider = self.market_provider or get_provider(
                settings.MARKET_DATA_PROVIDER, settings.MARKET_DATA_URL
            )
            market = (await provider.snapshot(debate.asset)).to_dict()
            if not await _service(
                services.run_save_market,
                debate_id=self.debate_id,
                runner_id=self.runner_id,
                market=market,
            ):
                raise StopRun
        llm = self.llm or build_llm(
            self.llm_kind,
            seed=self.debate_id,
            tokens_per_s=self.tokens_per_s,
            api_key=settings.OPENAI_API_KEY,
            base_url=settings.OPENAI_BASE_URL,
            model=settings.OPENAI_MODEL,
            timeout=settings.OPENAI_TIMEOUT_S,
            max_retries=settings.OPENAI_MAX_RETRIES,
        )
        self._market = market
        self._asset = debate.asset
        saved = [ArgumentItem(**a) for a in _items(debate)]
        self._usage = costs.DebateUsage.of_arguments(debate.arguments.all())
        self._budget = await _service(services.run_budget, debate=debate)
        self._model = model_name(llm)
        state = initial_state(
            asset=debate.asset, market=market, max_turns=debate.max_turns, arguments=saved
        )
        if any(a["agent"] == MODERATOR for a in saved):
            self._verdict_saved = True
            return  # the verdict was saved before the previous runner died
        graph = build_graph(llm)
        # Everything the first token needs is ready: announce `running` (held, like the opening
        # TURN_CHANGE, to go out with the first token). Not ours any more (cancelled between the
        # claim and now, or taken over): stop; a cancel's announcement waited for this run.
        if not await _service(
            services.run_begin, debate_id=self.debate_id, runner_id=self.runner_id
        ):
            raise StopRun
        spoken = state["turn"]
        self._max_turns = debate.max_turns
        if debate.conclusion_reason:
            self._max_turns = min(debate.max_turns, max(spoken, 1))
        # The opening TURN_CHANGE waits, like `running`, to go out with the first token.
        await self._turn_change(spoken + 1, self._max_turns, hold_s=services.OPENING_HOLD_S)
        # A debate taken over paused or concluding is announced so, and honoured, before a token.
        await self._sync_controls()
        saved = list(state["arguments"])
        backoff, failed_at, attempts = delays(first=1.0, cap=8.0), None, 0
        while True:
            state = initial_state(
                asset=debate.asset, market=market, max_turns=self._max_turns, arguments=saved
            )
            try:
                if not await self._stream_graph(graph, state, saved):
                    break
                continue
            except Exception as exc:
                # A model that failed mid-turn (a dropped or malformed stream, a timeout, 429 or
                # 5xx past the client's own retries) gets the turn again, a bounded number of
                # times per turn, after a backoff (at least its Retry-After).
                attempts = attempts + 1 if failed_at == self._turn else 1
                failed_at = self._turn
                if not retryable_llm_failure(exc) or attempts > llm_turn_retries():
                    raise
                delay = max(next(backoff), retry_after_s(exc))
                logger.warning(
                    "debate %s turn %s: %s; retrying the turn in %.1f s (%d/%d)",
                    self.debate_id,
                    self._turn,
                    describe_error(exc),
                    delay,
                    attempts,
                    llm_turn_retries(),
                )
            await asyncio.sleep(delay)
            self._progress_at = self.loop.time()
            self._live_tokens = 0  # the failed call's tokens are not known: counted again
            # The unfinished turn's TURN_CHANGE again: it restarts that turn's text.
            await self._turn_change(len(saved) + 1, self._max_turns)
        if not self._verdict_saved:
            raise UnfinishedGraphError(
                f"the graph stopped at turn {self._turn}, before the verdict."
            )

    async def _stream_graph(self, graph, state, saved: list) -> bool:
        """Stream the graph from `state`, appending each saved argument to `saved`; True when
        it must run again because the debate was concluded (max_turns cut to the turns spoken)."""
        self._handed = set()
        buffer: list[str] = []
        config = {
            "recursion_limit": 2 * state["max_turns"] + 10,
            "callbacks": [_PauseGate(self)],
            "configurable": {"questions": self._open_questions},
        }
        size = 0
        stream = graph.astream(state, config, stream_mode=["messages", "updates"])
        async with contextlib.aclosing(stream):
            async for mode, data in stream:
                self._progress_at = self.loop.time()
                if mode == "messages":
                    chunk, meta = data
                    token = message_text(chunk)
                    if token and meta.get("langgraph_node") == self._agent:
                        buffer.append(token)
                        size += len(token)
                        if size > MAX_ARGUMENT_CHARS:
                            raise RunawayOutputError(
                                f"turn {self._turn} passed {MAX_ARGUMENT_CHARS} characters."
                            )
                        await self.unpaused.wait()  # no token goes out while paused
                        reading = self._count_token()
                        await self._publish(
                            protocol.TOKEN_RECEIVED,
                            {"agent": self._agent, "token": token, "turn": self._turn},
                            also=(self._usage_event(reading),) if reading else (),
                        )
                        if reading:
                            await self._check_budget(reading)
                    continue
                for update in data.values():
                    if not update or not update.get("arguments"):
                        continue
                    item = update["arguments"][-1]
                    with self._uninterrupted():
                        await self._complete(
                            item,
                            "".join(buffer),
                            update.get("verdict"),
                            update.get("answered"),
                            usage=update.get("usage"),
                        )
                    saved.append(item)
                    buffer, size = [], 0
                    if item["agent"] == MODERATOR:
                        self._verdict_saved = True
                        continue
                    concluded = self._conclude_reason is not None
                    if concluded and self._max_turns > item["turn"]:
                        self._max_turns = item["turn"]  # the verdict comes next
                        await self._turn_change(item["turn"] + 1, self._max_turns)
                        return True
                    await self._turn_change(item["turn"] + 1, self._max_turns)
        return False

    async def _turn_change(self, turn: int, max_turns: int, *, hold_s: float = 0.0) -> None:
        """Move to `turn` and publish its TURN_CHANGE."""
        self._turn = turn
        self._agent = speaker_for_turn(turn) if turn <= max_turns else MODERATOR
        await self._publish(
            protocol.TURN_CHANGE, {"currentAgent": self._agent, "turn": turn}, hold_s=hold_s
        )

    async def _complete(
        self,
        item: ArgumentItem,
        streamed: str,
        verdict: dict | None,
        answered: list[int] | None = None,
        *,
        usage: dict | None = None,
    ) -> None:
        content, turn, agent = item["content"], item["turn"], item["agent"]
        if len(content) > MAX_ARGUMENT_CHARS:
            raise RunawayOutputError(f"turn {turn} passed {MAX_ARGUMENT_CHARS} characters.")
        if streamed != content:
            # Keep the contract (content == concatenated tokens) even for a model that did not
            # stream all of its answer: send what is missing as one more token, or, when the
            # streamed text is not a prefix, restart the turn (a TURN_CHANGE of an unfinished
            # turn restarts its text, as after a takeover) and send the whole text as one token.
            token = content[len(streamed) :] if content.startswith(streamed) else content
            if token is content and streamed:
                logger.warning(
                    "debate %s turn %s: tokens differ, restarting it", self.debate_id, turn
                )
                await self._publish(protocol.TURN_CHANGE, {"currentAgent": agent, "turn": turn})
            await self._publish(
                protocol.TOKEN_RECEIVED, {"agent": agent, "token": token, "turn": turn}
            )
        if not await _service(
            services.run_save_argument,
            debate_id=self.debate_id,
            runner_id=self.runner_id,
            turn=turn,
            agent=agent,
            content=content,
            verdict=verdict,
            answered=tuple(answered or ()),
            usage=usage,
            forecast=await self._price_verdict() if verdict is not None else None,
        ):
            raise StopRun
        self._live_tokens = 0
        if usage is not None:
            prompt, completion = usage["prompt_tokens"], usage["completion_tokens"]
            cost = costs.cost_of(usage["model"], prompt, completion)
            self._usage.add(agent, prompt, completion, cost, estimated=usage["estimated"])
        # The argument's USAGE reading goes out with it, in one message.
        await self._publish(
            protocol.ARGUMENT_COMPLETE,
            {"agent": agent, "content": content, "turn": turn},
            also=(self._usage_event(self._usage),) if usage is not None else (),
        )
        if usage is not None:
            await self._check_budget(self._usage)

    # --- Usage and budget ---------------------------------------------------------------------

    def _count_token(self) -> costs.DebateUsage | None:
        """Count a token of the argument in progress; every USAGE_EVERY_N_TOKENS tokens, the
        reading to publish with it (the call's tokens so far, its prompt not known yet)."""
        self._live_tokens += 1
        every = int(settings.USAGE_EVERY_N_TOKENS)
        if every <= 0 or self._live_tokens % every:
            return None
        current = self._usage.copy()
        current.add(self._agent, 0, self._live_tokens, self._live_cost(), estimated=True)
        return current

    def _live_cost(self):
        """The argument in progress's completion tokens priced (None: the model has no price)."""
        return costs.cost_of(self._model, 0, self._live_tokens) if self._model else None

    def _usage_event(self, usage: costs.DebateUsage) -> tuple[str, dict]:
        """The DEBATE/USAGE event of a reading, with the budget the run concludes at."""
        tokens, cost = self._budget
        budget = protocol.usage_budget(tokens, None if cost is None else float(cost))
        return protocol.USAGE, {**usage.wire(), "budget": budget}

    async def _check_budget(self, usage: costs.DebateUsage) -> None:
        """A reading that reaches the budget before the last bull/bear turn concludes the
        debate (reason ``budget``), announced now, before the next event."""
        last = self._agent == MODERATOR or self._turn >= self._max_turns
        if last or not usage.reached(*self._budget):
            return
        if self._conclude_reason is None:
            self._conclude_reason = ConclusionReason.BUDGET
        await self._sync_controls()  # records the reason, announces CONCLUDING (once)

    async def _price_verdict(self) -> dict:
        """The asset's price now, for the track record: from the provider of the debate's
        snapshot (the sample series it saw, continued), else the snapshot's own last price."""
        market = self._market
        now = timezone.now()
        series_end = parse_datetime(market.get("as_of") or "")
        priced = {
            "model": self._model,
            "asset": market.get("asset") or canonical_asset(self._asset),
            "source": market.get("source") or "",
            "is_sample": bool(market.get("is_sample")),
            "series_end": series_end,
        }
        try:
            provider = self.market_provider or provider_for_source(
                priced["source"], settings.MARKET_DATA_URL
            )
            price = await provider.price_at(priced["asset"], now, series_end=series_end)
            return {**priced, "price": price, "priced_at": now}
        except (MarketDataError, ValueError) as exc:
            logger.warning("debate %s: verdict priced from its snapshot (%s)", self.debate_id, exc)
            return {**priced, "price": market["last_price"], "priced_at": series_end or now}

    async def _heartbeat_loop(self) -> None:
        interval = max(float(settings.DEBATE_HEARTBEAT_S), 0.05)
        idle_limit = idle_timeout_s()
        while True:
            await asyncio.sleep(interval)
            if self._paused_at is not None:
                self._progress_at = self.loop.time()  # a pause is not a stall
            if self.loop.time() - self._progress_at > idle_limit:
                # A hung model or service must not keep a heartbeating debate running forever.
                logger.warning("debate %s stalled for %.0f s", self.debate_id, idle_limit)
                self.request_stop("stalled")
                return
            try:
                alive = await _service(
                    services.run_heartbeat, debate_id=self.debate_id, runner_id=self.runner_id
                )
            except Exception:
                logger.exception("heartbeat of debate %s failed", self.debate_id)
                continue
            if not alive:
                status = await _service(selectors.debate_status, debate_id=self.debate_id)
                self.request_stop("cancelled" if status == DebateStatus.CANCELLED else "lost")
                return
            self.poke()  # the controls, in case a wake-up message was lost


def _items(debate) -> list[dict]:
    """The debate's saved arguments (prefetched in turn order) as engine items."""
    return [
        {"turn": a.turn, "agent": a.agent, "content": a.content} for a in debate.arguments.all()
    ]
