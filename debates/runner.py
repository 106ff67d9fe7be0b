"""Celery-free debate runner: one asyncio task per debate, in the process that claimed it.

Getting onto the event loop. DRF 3.18 has no async views, so start/cancel are sync views; under
daphne Django runs them in asgiref's SyncToAsync thread, where `async_to_sync` runs a coroutine on
the server's own event loop. With Redis (REDIS_URL) and DEBATE_RUNNER_OWN_THREAD (the default),
`launch()` runs the debate on this process's runner loop, in one daemon thread: a large audience's
fan-out on the server loop then neither delays the first token nor slows the debate (socket writes
release the GIL), and the Redis channel layer and event log work from any loop. Without Redis the
in-memory channel layer belongs to the server loop, so the debate must run there: `launch()` finds
that loop through `async_to_sync` (public asgiref behaviour: it runs a one-line coroutine and gets
back the loop it ran on) and schedules the debate on it with `asyncio.run_coroutine_threadsafe`.
If that loop is not running (a WSGI server, the sync test client, a shell), asgiref made a
throwaway loop, so the runner loop is used as well. From async code (run_debate, async tests)
`launch()` just creates a task. Every task is kept in `_tasks` until it ends so it is never
garbage-collected mid-debate.

Cancel signal. The DB status is the source of truth: `debate_cancel` sets it first. The runner
then hears it (1) at once if it runs in this process (`signal_cancel` calls `request_stop`
thread-safely), (2) within a token from another process through the channel-layer group
`debate-control.<id>` that every run listens to, and (3) at worst at its next heartbeat or
argument save, both of which only write while the row is still `running` with this runner's id.
The run task is then cancelled where it is, mid-token: the partial argument is dropped (its tokens
were streamed, but no Argument row and no ARGUMENT_COMPLETE are written), and the last event is
STATUS_UPDATE cancelled.

Failures. Any exception ends the debate `failed` with a short error (no stack) and a final
STATUS_UPDATE; finished arguments stay saved. So does a run that stalls: the heartbeat proves the
process is alive, not that the debate moves, so the heartbeat loop also fails a run that has had
no token and no finished node for `idle_timeout_s()`; and a model that writes past
MAX_ARGUMENT_CHARS in one turn fails it too. A CancelledError nobody asked for fails the debate;
only the process's own shutdown (the run task itself cancelled) leaves it `running` for takeover.
A launch that fails at once fails the debate (services.debate_start).

Takeover. A process that dies leaves a stale heartbeat: `debates.services.recover_stale_debates`
(run by `manage.py recover_debates`, and every DEBATE_STALE_AFTER_S by the janitor a serving
process starts on its first request) re-claims the debate and resumes it after its last saved
argument; the graph state is rebuilt from the saved Arguments and the stored market context, and
the publisher keeps the event seq going.
"""

import asyncio
import concurrent.futures
import contextvars
import json
import logging
import threading
import time
import weakref
from collections.abc import Callable
from datetime import timedelta

import httpx
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import OperationalError, close_old_connections, transaction
from django.utils import timezone

from debates.engine.graph import build_graph
from debates.engine.llm import build_llm, message_text
from debates.engine.market import MarketDataError, get_provider
from debates.engine.nodes import IncompleteResponseError
from debates.engine.state import MODERATOR, ArgumentItem, initial_state, speaker_for_turn
from debates.models import Argument, Debate, DebateStatus
from streaming import metrics, protocol
from streaming.publisher import follow_audience, publish_event, publish_events, stop_following
from tradeapp.instance import process_id

logger = logging.getLogger(__name__)

PROCESS_RUNNER_ID = process_id()
CONTROL_MESSAGE_TYPE = "debate.control"
MAX_ERROR_CHARS = 300
MAX_KEPT_FUTURES = 1000
DB_RETRIES = 5
# An argument longer than this is a runaway model, not an argument: the debate fails.
MAX_ARGUMENT_CHARS = 20_000
# How long `running` and the first TURN_CHANGE wait to go out together with the first token.
OPENING_HOLD_S = 0.05

Observer = Callable[[str, dict], None]

_runs: dict[str, "DebateRun"] = {}
_tasks: set[asyncio.Task] = set()
_futures: dict[str, concurrent.futures.Future] = {}
_lock = threading.Lock()
_runner_thread_loop: asyncio.AbstractEventLoop | None = None
_janitor_loops: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()


def control_group(debate_id) -> str:
    """The channel-layer group a running debate listens to for control messages."""
    return f"debate-control.{debate_id}"


class StopRun(Exception):
    """The run must stop because its row is no longer `running` under this runner."""


class RunawayOutputError(RuntimeError):
    """The model kept writing past MAX_ARGUMENT_CHARS."""


class UnfinishedGraphError(RuntimeError):
    """The debate graph stopped streaming before the moderator's verdict was saved."""


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


def known_failure(exc: BaseException) -> str | None:
    """A short description of an expected outside failure (LLM, market data), else None."""
    try:
        import openai
    except ImportError:  # pragma: no cover - openai ships with langchain-openai
        openai = None
    if openai is not None:
        if isinstance(exc, openai.APITimeoutError):
            return "LLM request timed out."
        if isinstance(exc, openai.APIStatusError):
            return f"LLM endpoint returned HTTP {exc.status_code}."
        if isinstance(exc, openai.APIConnectionError):
            return "LLM connection failed or was closed mid-stream."
    if isinstance(exc, httpx.TimeoutException):
        return "LLM request timed out."
    if isinstance(exc, httpx.TransportError):
        return f"LLM connection failed or was closed mid-stream ({type(exc).__name__})."
    if isinstance(exc, json.JSONDecodeError):
        return "LLM sent a malformed stream chunk (invalid JSON)."
    if isinstance(exc, IncompleteResponseError):
        return f"LLM answer incomplete: {exc}"
    if isinstance(exc, MarketDataError):
        return f"Market data unavailable: {exc}"
    if isinstance(exc, RunawayOutputError):
        return f"LLM answer too long: {exc}"
    return None


def describe_error(exc: BaseException) -> str:
    """A short, stack-free description of why a debate failed."""
    known = known_failure(exc)
    if known is not None:
        return known[:MAX_ERROR_CHARS]
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:MAX_ERROR_CHARS]


# --- Database helpers (sync; each is its own short transaction, never held across an await) ---


def _db(fn):
    """Run a sync DB helper in a worker thread, retrying SQLite's transient lock errors."""

    def call(*args):
        for attempt in range(DB_RETRIES):
            try:
                return fn(*args)
            except OperationalError as exc:
                if "locked" not in str(exc) or attempt == DB_RETRIES - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))  # in the worker thread, never on the loop
        return None

    return sync_to_async(call)


def _load(debate_id) -> Debate:
    return Debate.objects.get(pk=debate_id)


def _load_arguments(debate_id) -> list[ArgumentItem]:
    return [
        ArgumentItem(turn=a.turn, agent=a.agent, content=a.content)
        for a in Argument.objects.filter(debate_id=debate_id).order_by("turn")
    ]


def _owned(debate_id, runner_id):
    return Debate.objects.filter(pk=debate_id, status=DebateStatus.RUNNING, runner_id=runner_id)


def _heartbeat(debate_id, runner_id) -> bool:
    return _owned(debate_id, runner_id).update(heartbeat_at=timezone.now()) == 1


def _save_market(debate_id, runner_id, market: dict) -> bool:
    now = timezone.now()
    return _owned(debate_id, runner_id).update(market_context=market, heartbeat_at=now) == 1


def _save_argument(debate_id, runner_id, item: ArgumentItem, verdict: dict | None) -> bool:
    fields = {"heartbeat_at": timezone.now()}
    if verdict is not None:
        fields.update(
            verdict_recommendation=verdict["recommendation"],
            verdict_confidence=verdict["confidence"],
            verdict_rationale=verdict["rationale"],
        )
    with transaction.atomic():
        # The conditional update locks the row, so a concurrent cancel is either before (no save)
        # or after (the argument is kept) - never a saved argument on a cancelled debate.
        if _owned(debate_id, runner_id).update(**fields) != 1:
            return False
        Argument.objects.create(
            debate_id=debate_id, turn=item["turn"], agent=item["agent"], content=item["content"]
        )
    return True


def _finish(debate_id, runner_id, status: str, error: str = "") -> bool:
    now = timezone.now()
    return (
        _owned(debate_id, runner_id).update(
            status=status, error=error, finished_at=now, heartbeat_at=now
        )
        == 1
    )


def _status(debate_id) -> str:
    return Debate.objects.filter(pk=debate_id).values_list("status", flat=True).first() or ""


# --- One run --------------------------------------------------------------------------------------


class DebateRun:
    """Drives one claimed debate through the graph, saving and publishing as it goes."""

    def __init__(
        self,
        debate_id,
        *,
        runner_id: str = PROCESS_RUNNER_ID,
        llm_kind: str | None = None,
        tokens_per_s: float | None = None,
        llm=None,
        market_provider=None,
        observer: Observer | None = None,
    ) -> None:
        self.debate_id = str(debate_id)
        self.runner_id = runner_id
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
        self._progress_at = 0.0  # loop time of the last token or finished node
        self._opening: list[tuple[str, dict]] = []  # held until the first token or the hold ends
        self._opening_timer: asyncio.TimerHandle | None = None
        self._opening_flush: asyncio.Task | None = None
        self._publish_lock = asyncio.Lock()
        self._started_at = 0.0  # monotonic time the run started, for time to first token
        self._first_token_sent = False
        self._verdict_saved = False

    # Called from any thread through signal_cancel, or from the run's own watchers.
    def request_stop(self, reason: str) -> None:
        """Ask the run to stop now ('cancelled', 'lost' or 'stalled'); idempotent."""
        if self._stop_reason is None:
            self._stop_reason = reason
        if self._work is not None and not self._work.done():
            self._work.cancel()

    async def _publish(self, action_type: str, payload: dict) -> None:
        await self._publish_all([(action_type, payload)])

    async def _publish_all(self, events: list[tuple[str, dict]]) -> None:
        flush = self._opening_flush
        if flush is not None and flush.done():
            self._opening_flush = None
            if not flush.cancelled() and flush.exception():
                raise flush.exception()  # the held opening was not published: fail as any publish
        async with self._publish_lock:
            if self._opening_timer is not None:
                self._opening_timer.cancel()
                self._opening_timer = None
            events, self._opening = [*self._opening, *events], []
            if len(events) == 1:
                await publish_event(self.debate_id, *events[0])
            elif events:
                # One message, so each viewer gets the opening and the first token in one write.
                await publish_events(self.debate_id, events)
        if not self._first_token_sent and any(t == protocol.TOKEN_RECEIVED for t, _ in events):
            self._first_token_sent = True
            metrics.TIME_TO_FIRST_TOKEN.observe(time.monotonic() - self._started_at)
        if self.observer is not None:
            for action_type, payload in events:
                self.observer(action_type, payload)

    def _hold_opening(self, events: list[tuple[str, dict]]) -> None:
        """Send `events` with the next event, or after OPENING_HOLD_S (a slow model)."""
        self._opening = events

        def flush_now() -> None:
            self._opening_timer = None
            self._opening_flush = asyncio.create_task(self._publish_all([]))

        self._opening_timer = self.loop.call_later(OPENING_HOLD_S, flush_now)

    def _stop_holding(self) -> None:
        # What is still held goes out with the final status (an in-flight flush finishes first).
        if self._opening_timer is not None:
            self._opening_timer.cancel()
            self._opening_timer = None

    async def _publish_final(self, status: str) -> None:
        """Publish the last STATUS_UPDATE; the DB already holds the status, so never raise."""
        try:
            await self._publish(protocol.STATUS_UPDATE, {"status": status})
        except Exception:
            logger.exception("debate %s: could not publish its final status", self.debate_id)

    async def run(self) -> str:
        """Run to the end; return the final status (the DB row is the source of truth)."""
        try:
            return await self._run()
        finally:
            stop_following(self.debate_id)
            # The run's DB calls share one worker thread: release its connection like a request.
            await sync_to_async(close_old_connections)()

    async def _run(self) -> str:
        self._started_at = time.monotonic()
        self.loop = asyncio.get_running_loop()
        debate = await _db(_load)(self.debate_id)
        if debate.status != DebateStatus.RUNNING or debate.runner_id != self.runner_id:
            if debate.status == DebateStatus.CANCELLED and debate.runner_id == self.runner_id:
                # Cancelled between the claim and this start: the final event is still ours.
                await self._publish_final(DebateStatus.CANCELLED)
            logger.info("debate %s not ours to run (%s)", self.debate_id, debate.status)
            self.status = debate.status
            return debate.status
        watchers = [
            asyncio.create_task(self._listen_for_control()),
            asyncio.create_task(self._heartbeat_loop()),
        ]
        self._progress_at = self.loop.time()
        self._work = asyncio.create_task(self._drive(debate))
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
            self._stop_holding()
            for task in watchers:
                task.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)
        if final is not None and await _db(_finish)(self.debate_id, self.runner_id, final, error):
            self.status, self.error = final, error
            await self._publish_final(final)
            return final
        # Not ours any more: cancelled by a user, or taken over by another runner.
        self.status = await _db(_status)(self.debate_id)
        if self.status == DebateStatus.CANCELLED:
            await self._publish_final(DebateStatus.CANCELLED)
        else:
            logger.warning("debate %s lost by runner %s", self.debate_id, self.runner_id)
        return self.status

    async def _drive(self, debate: Debate) -> None:
        # Everything the first token needs is ready before `running` is published: a large
        # audience's fan-out of that event would otherwise delay this work on the shared loop.
        market = debate.market_context
        if not market:
            provider = self.market_provider or get_provider(
                settings.MARKET_DATA_PROVIDER, settings.MARKET_DATA_URL
            )
            market = (await provider.snapshot(debate.asset)).to_dict()
            if not await _db(_save_market)(self.debate_id, self.runner_id, market):
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
        saved = await _db(_load_arguments)(self.debate_id)
        state = initial_state(
            asset=debate.asset, market=market, max_turns=debate.max_turns, arguments=saved
        )
        graph = build_graph(llm)
        running = (protocol.STATUS_UPDATE, {"status": DebateStatus.RUNNING})
        if any(a["agent"] == MODERATOR for a in saved):
            await self._publish(*running)
            return  # the verdict was saved before the previous runner died
        # Counted before the opening, so a large audience gets it and what follows coalesced.
        await follow_audience(self.debate_id)
        self._hold_opening([running, self._next_turn(state["turn"] + 1, debate.max_turns)])
        buffer: list[str] = []
        config = {"recursion_limit": 2 * debate.max_turns + 10}
        size = 0
        async for mode, data in graph.astream(state, config, stream_mode=["messages", "updates"]):
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
                    await self._publish(
                        protocol.TOKEN_RECEIVED,
                        {"agent": self._agent, "token": token, "turn": self._turn},
                    )
                continue
            for update in data.values():
                if not update or not update.get("arguments"):
                    continue
                item = update["arguments"][-1]
                await self._complete(item, "".join(buffer), update.get("verdict"))
                buffer, size = [], 0
                if item["agent"] != MODERATOR:
                    await self._turn_change(item["turn"] + 1, debate.max_turns)
                else:
                    self._verdict_saved = True
        if not self._verdict_saved:
            raise UnfinishedGraphError(
                f"the graph stopped at turn {self._turn}, before the verdict."
            )

    def _next_turn(self, turn: int, max_turns: int) -> tuple[str, dict]:
        """Move to `turn`; return its TURN_CHANGE event."""
        self._turn = turn
        self._agent = speaker_for_turn(turn) if turn <= max_turns else MODERATOR
        return protocol.TURN_CHANGE, {"currentAgent": self._agent, "turn": turn}

    async def _turn_change(self, turn: int, max_turns: int) -> None:
        await self._publish(*self._next_turn(turn, max_turns))

    async def _complete(self, item: ArgumentItem, streamed: str, verdict: dict | None) -> None:
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
        if not await _db(_save_argument)(self.debate_id, self.runner_id, item, verdict):
            raise StopRun
        await self._publish(
            protocol.ARGUMENT_COMPLETE,
            {"agent": item["agent"], "content": content, "turn": item["turn"]},
        )

    async def _heartbeat_loop(self) -> None:
        interval = max(float(settings.DEBATE_HEARTBEAT_S), 0.05)
        idle_limit = idle_timeout_s()
        while True:
            await asyncio.sleep(interval)
            if self.loop.time() - self._progress_at > idle_limit:
                # A hung model or service must not keep a heartbeating debate running forever.
                logger.warning("debate %s stalled for %.0f s", self.debate_id, idle_limit)
                self.request_stop("stalled")
                return
            try:
                alive = await _db(_heartbeat)(self.debate_id, self.runner_id)
            except Exception:
                logger.exception("heartbeat of debate %s failed", self.debate_id)
                continue
            if not alive:
                status = await _db(_status)(self.debate_id)
                self.request_stop("cancelled" if status == DebateStatus.CANCELLED else "lost")
                return

    async def _listen_for_control(self) -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        group = control_group(self.debate_id)
        try:
            channel = await layer.new_channel()
            await layer.group_add(group, channel)
        except Exception:
            logger.exception("debate %s: no control channel, relying on heartbeats", self.debate_id)
            return
        try:
            while True:
                # Keep receiving after a cancel until the run cancels this task: a pub/sub layer
                # drops the channel's subscription only when a pending receive is cancelled.
                message = await layer.receive(channel)
                if (
                    message.get("type") == CONTROL_MESSAGE_TYPE
                    and message.get("command") == "cancel"
                ):
                    self.request_stop("cancelled")
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("debate %s: control channel failed", self.debate_id)
        finally:
            try:
                await layer.group_discard(group, channel)
            except Exception:
                logger.debug("group_discard failed", exc_info=True)


# --- Scheduling -----------------------------------------------------------------------------------


async def _current_loop() -> asyncio.AbstractEventLoop:
    return asyncio.get_running_loop()


def _server_loop() -> asyncio.AbstractEventLoop | None:
    """The ASGI server's loop when called from a sync view under it, else None."""
    loop = async_to_sync(_current_loop)()
    return loop if loop.is_running() else None


def _runner_thread_wanted() -> bool:
    return bool(settings.DEBATE_RUNNER_OWN_THREAD and settings.REDIS_URL)


def _runner_loop() -> asyncio.AbstractEventLoop:
    """This process's own runner loop, in a daemon thread (see the module docstring)."""
    global _runner_thread_loop
    with _lock:
        if _runner_thread_loop is None or _runner_thread_loop.is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="debate-runner", daemon=True).start()
            _runner_thread_loop = loop
        return _runner_thread_loop


async def _tracked(run: DebateRun, janitor: bool) -> str:
    task = asyncio.current_task()
    _tasks.add(task)
    if janitor:
        ensure_janitor()
    try:
        return await run.run()
    except Exception:
        # Nobody may await a background run: say why it crashed (its heartbeat goes stale).
        logger.exception("runner of debate %s crashed", run.debate_id)
        raise
    finally:
        _tasks.discard(task)
        with _lock:
            if _runs.get(run.debate_id) is run:
                del _runs[run.debate_id]


def launch(debate_id, **run_kwargs) -> asyncio.Task | concurrent.futures.Future:
    """Run a claimed debate in the background on this process's event loop."""
    run = DebateRun(debate_id, **run_kwargs)
    with _lock:
        _runs[run.debate_id] = run
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if loop is not None:
        run.loop = loop
        task = loop.create_task(_tracked(run, janitor=False))
        _tasks.add(task)
        task.add_done_callback(_tasks.discard)
        return task
    loop = None if _runner_thread_wanted() else _server_loop()
    janitor = loop is not None
    loop = loop or _runner_loop()
    run.loop = loop
    # Start the task in an empty context: the request's context holds asgiref's executor for the
    # view's thread, which quits when the request ends, and sync_to_async would then fail.
    future = contextvars.Context().run(
        asyncio.run_coroutine_threadsafe, _tracked(run, janitor=janitor), loop
    )
    with _lock:
        if len(_futures) >= MAX_KEPT_FUTURES:
            for key in [k for k, f in _futures.items() if f.done()]:
                del _futures[key]
        _futures[run.debate_id] = future
    return future


def background_future(debate_id) -> concurrent.futures.Future | None:
    """The future of a debate launched from sync code (kept after it ends, for tests and tools)."""
    return _futures.get(str(debate_id))


def local_run(debate_id) -> DebateRun | None:
    """The run of this debate if this process is running it."""
    return _runs.get(str(debate_id))


def signal_cancel(debate_id) -> None:
    """Tell the debate's runner, wherever it runs, to stop now (thread-safe, sync)."""
    run = local_run(debate_id)
    if run is not None and run.loop is not None and not run.loop.is_closed():
        run.loop.call_soon_threadsafe(run.request_stop, "cancelled")
        return
    layer = get_channel_layer()
    if layer is None:
        return
    message = {"type": CONTROL_MESSAGE_TYPE, "command": "cancel"}
    try:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            async_to_sync(layer.group_send)(control_group(debate_id), message)
        else:
            asyncio.get_running_loop().create_task(
                layer.group_send(control_group(debate_id), message)
            )
    except Exception:
        # The DB status is already `cancelled`; the runner will see it at its next heartbeat.
        logger.exception("could not send the cancel signal of debate %s", debate_id)


def ensure_janitor() -> None:
    """Start, once per event loop, a task that takes over stale debates every STALE_AFTER_S."""
    loop = asyncio.get_running_loop()
    if loop in _janitor_loops or settings.DEBATE_STALE_AFTER_S <= 0:
        return
    _janitor_loops.add(loop)
    task = loop.create_task(_janitor())
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


async def _janitor() -> None:
    from debates.services import recover_stale_debates

    interval = float(settings.DEBATE_STALE_AFTER_S)
    while True:
        # Sweep first: a process that starts takes over what a dead one left at once.
        try:
            claimed = await sync_to_async(recover_stale_debates)(runner_id=PROCESS_RUNNER_ID)
        except Exception:
            logger.exception("stale debate sweep failed")
        else:
            for debate_id in claimed:
                # As the start view does, so a taken-over debate runs where a started one would.
                await sync_to_async(launch)(debate_id)
        await asyncio.sleep(interval)


def stale_cutoff():
    """Heartbeats older than this belong to dead runners."""
    return timezone.now() - timedelta(seconds=float(settings.DEBATE_STALE_AFTER_S))
