"""A synthetic debate published through streaming.publisher from its own process.

`bench_stream --source publisher` uses it to measure fan-out alone, without the engine (the
DESIGN §4 set-up: events published from another process). Run as
`python -m bench.publish DEBATE_ID --rate R --turns T --tokens N` with the servers' environment.
"""

import argparse
import asyncio
import os
import sys

_TEXT = (
    "Momentum stays constructive while volume confirms the breakout above resistance, yet "
    "valuation already discounts two quarters of growth and margins face pressure"
)
WORDS = _TEXT.split()


async def publish(debate_id: str, rate: float, turns: int, tokens: int) -> None:
    """Publish running, T turns of N tokens at `rate`/s with their completions, completed."""
    from streaming import protocol
    from streaming.publisher import publish_event

    await publish_event(debate_id, protocol.STATUS_UPDATE, {"status": "running"})
    delay = 1.0 / rate if rate > 0 else 0.0
    loop = asyncio.get_running_loop()
    for turn in range(1, turns + 1):
        agent = "bull" if turn % 2 else "bear"
        await publish_event(debate_id, protocol.TURN_CHANGE, {"currentAgent": agent, "turn": turn})
        parts = []
        next_at = loop.time()
        for i in range(tokens):
            token = WORDS[i % len(WORDS)] + " "
            parts.append(token)
            await publish_event(
                debate_id, protocol.TOKEN_RECEIVED, {"agent": agent, "token": token, "turn": turn}
            )
            next_at += delay
            pause = next_at - loop.time()
            if pause > 0:
                await asyncio.sleep(pause)
        await publish_event(
            debate_id,
            protocol.ARGUMENT_COMPLETE,
            {"agent": agent, "content": "".join(parts), "turn": turn},
        )
    await publish_event(debate_id, protocol.STATUS_UPDATE, {"status": "completed"})


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("debate_id")
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--turns", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=200)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradeapp.settings")
    import django

    django.setup()
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover
        runner = asyncio.run
    runner(publish(args.debate_id, args.rate, args.turns, args.tokens))
    sys.exit(0)


if __name__ == "__main__":
    main()
