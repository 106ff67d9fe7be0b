"""The voting scenario of `bench_stream --voters N --vote-window S`: N users vote over REST,
spread evenly over S seconds from the debate's start, while the viewers watch it stream.

Each vote's answer carries the debate's tallies version after the vote was written; each viewer
records the receipt time and version of every DEBATE/VOTES (bench.wsclient). The tally latency
of one vote for one viewer is the time from the vote's 200 answer to the first DEBATE/VOTES
with at least that version (0 when the tally reached the viewer before the answer reached the
voter); the report gives its percentiles over every (vote, viewer) pair, the votes accepted
per second, and how many DEBATE/VOTES each viewer received.
"""

import bisect
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from bench import rest
from bench.launcher import manage
from bench.stats import hist_summary, merged, ms, percentile

VOTE_THREADS = 16

# N users on the servers' database and an access token each (no passwords: nothing to hash).
_MAKE_VOTERS = """
import json
from django.contrib.auth import get_user_model
from rest_framework_simplejwt.tokens import RefreshToken
User = get_user_model()
User.objects.bulk_create([User(username=f"bench-voter-{{i}}") for i in range({count})],
                         ignore_conflicts=True)
users = User.objects.filter(username__startswith="bench-voter-").order_by("id")[:{count}]
print(json.dumps([str(RefreshToken.for_user(u).access_token) for u in users]))
"""


def make_voters(env: dict, count: int) -> list[str]:
    """Create `count` voters on the database `env` names; their access tokens."""
    out = manage(env, "shell", "--no-imports", "-c", _MAKE_VOTERS.format(count=count))
    tokens = json.loads(out.strip().splitlines()[-1])
    if len(tokens) != count:
        raise RuntimeError(f"made {len(tokens)} voters, wanted {count}")
    return tokens


def side_of(index: int) -> str:
    """The side voter `index` picks: two in three bull."""
    return "bear" if index % 3 == 0 else "bull"


class Voting:
    """Votes cast in a thread pool, one per voter, spread over the window; run in a thread."""

    def __init__(self, targets: list[str], debate_id: str, tokens: list[str], window_s: float):
        self.targets = targets  # base URLs, used round-robin
        self.path = f"/api/debates/{debate_id}/vote/"
        self.tokens = tokens
        self.window_s = window_s
        self.accepted: list[tuple[float, int]] = []  # (answer time, tallies version)
        self.request_s: list[float] = []
        self.codes: dict[str, int] = {}
        self.started = 0.0
        self.finished = 0.0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self, at: float) -> None:
        """Begin voting at time `at` (epoch seconds), in the background."""
        self._thread = threading.Thread(target=self._run, args=(at,), daemon=True, name="votes")
        self._thread.start()

    def join(self, timeout: float) -> None:
        """Wait for every vote's answer."""
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self, at: float) -> None:
        time.sleep(max(0.0, at - time.time()))
        self.started = time.time()
        step = self.window_s / max(1, len(self.tokens))
        with ThreadPoolExecutor(VOTE_THREADS) as pool:
            for index in range(len(self.tokens)):
                time.sleep(max(0.0, self.started + index * step - time.time()))
                pool.submit(self._vote, index)
        self.finished = time.time()

    def _vote(self, index: int) -> None:
        base_url = self.targets[index % len(self.targets)]
        sent = time.time()
        try:
            status, body = rest.api(
                base_url, "POST", self.path, {"side": side_of(index)}, self.tokens[index]
            )
        except OSError as exc:
            status, body = type(exc).__name__, None
        answered = time.time()
        with self._lock:
            self.codes[str(status)] = self.codes.get(str(status), 0) + 1
            self.request_s.append(answered - sent)
            if status == 200:
                self.accepted.append((answered, body["votes"]["version"]))

    def report(self, results: list[dict], token_latency: bool = False) -> dict:
        """The voting figures, with the viewers' DEBATE/VOTES from the watch answers;
        ``token_latency``: the watch kept the tokens received during the window apart (its
        storm window), so token latency during the votes and outside them are reported."""
        viewers = [v for r in results for v in r["viewers"]]
        latencies: list[float] = []
        unseen = 0
        for viewer in viewers:
            times = [t for t, _version in viewer["votes"]]
            versions = [version for _t, version in viewer["votes"]]
            for answered, version in self.accepted:
                i = bisect.bisect_left(versions, version)
                if i == len(versions):
                    unseen += 1
                else:
                    latencies.append(max(0.0, times[i] - answered))
        accepted = len(self.accepted)
        elapsed = max(1e-6, self.finished - self.started) if self.finished else None
        frames = [len(v["votes"]) for v in viewers]
        final = max((version for _t, version in self.accepted), default=0)
        figures = {
            "voters": len(self.tokens),
            "window_s": self.window_s,
            "answers": dict(sorted(self.codes.items())),
            "accepted": accepted,
            "accepted_per_s": round(accepted / elapsed, 1) if elapsed else None,
            "request_ms": {
                "p50": ms(percentile(self.request_s, 0.5)),
                "p99": ms(percentile(self.request_s, 0.99)),
            },
            "tally_latency_ms": {
                "p50": ms(percentile(latencies, 0.5)),
                "p99": ms(percentile(latencies, 0.99)),
                "max": ms(max(latencies) if latencies else None),
                "pairs": len(latencies),
                "never_seen": unseen,
            },
            "votes_frames_per_viewer": {
                "mean": round(sum(frames) / len(frames), 1) if frames else 0,
                "max": max(frames, default=0),
            },
            "viewers_with_final_tally": sum(
                1 for v in viewers if v["votes"] and v["votes"][-1][1] >= final
            ),
        }
        if token_latency:
            during = merged(results, "storm_hist")
            outside = merged(results, "token_hist")
            for bucket, count in during.items():
                outside[bucket] -= count
            figures["token_latency_during_votes_ms"] = hist_summary(during)
            figures["token_latency_outside_votes_ms"] = hist_summary(
                {bucket: count for bucket, count in outside.items() if count > 0}
            )
        return figures
