"""The example app under gunicorn while Redis, the certs or the identity endpoint fail.

    python benchmarks/bench_faults.py [--seconds 3] [--worker-classes sync,gthread] [--quick]

Runs ``examples.protected_app:create_app()`` under gunicorn (2 sync workers,
then 2 gthread workers of 8 threads) on 127.0.0.1, with a Redis shared cache
and the stand-in team served from this process, loads it with a threaded
client, and injects each fault in turn for ``--seconds``, between as long a
baseline before and recovery after:

- Redis killed, then restarted on the same port;
- the certs endpoint refusing connections, hanging, answering 500 or garbage
  (with ``CF_ACCESS_KEYS_MAX_AGE=3``, ``CF_ACCESS_KEYS_MIN_REFRESH_INTERVAL=1``
  and ``CF_ACCESS_HTTP_TIMEOUT=1`` so that the background refreshes meet the
  fault while requests with known kids go on);
- a key rotation, with and without a shared cache (default settings);
- get-identity refusing, or answering after 10 s (beyond the 5 s timeout,
  for ``--slow-seconds``, so that the first timed-out call of each worker is
  not all there is to see), while 5 % of requests bring a new token to the
  group route;
- a flood of tokens naming made-up key ids.

Printed per fault and phase: requests per second, wrong statuses, the
longest wait of a request with a known kid (``max ms``, its timed-out fetch
included if it waited for one), fetches of certs and identity, and the time
from the heal to the last wrong status (``recovery``). ``/api/whoami`` needs no
groups; its throughput during an identity fault is compared with before.
"""

from __future__ import annotations

import argparse
import functools
import http.client
import itertools
import secrets
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from _support import check_python, describe_machine

check_python()

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_gunicorn import Gunicorn, free_port  # noqa: E402

from flask_cf_access._tokens import TOKEN_HEADER  # noqa: E402
from flask_cf_access.testing import AccessIssuer, StandInServer  # noqa: E402
from tests.redis_server import RedisServer, redis_server_binary  # noqa: E402

CERTS = "/cdn-cgi/access/certs"
IDENTITY = "/cdn-cgi/access/get-identity"
#: What a request is: path, headers, the statuses that are right for it, and its kind.
Request = tuple[str, dict[str, str], frozenset[int], str]
OK = frozenset({200})


@dataclass
class Sample:
    at: float
    latency: float
    status: int
    right: bool
    kind: str


def get(port: int, path: str, headers: dict[str, str]) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    except OSError:
        return 0  # no answer at all: always wrong
    finally:
        connection.close()


class Load:
    """Client threads sending what :attr:`source` gives, recording every answer."""

    def __init__(self, port: int, connections: int, source: Callable[[], Request]) -> None:
        self.port = port
        self.source = source
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client) for _ in range(connections)]
        for thread in self._threads:
            thread.start()

    def _client(self) -> None:
        while not self._stop.is_set():
            path, headers, right, kind = self.source()
            started = time.monotonic()
            status = get(self.port, path, headers)
            ended = time.monotonic()
            self.samples.append(Sample(ended, ended - started, status, status in right, kind))

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()


@dataclass
class Fault:
    """A fault: what the load sends meanwhile, and how to inject and heal it."""

    name: str
    config: str
    source: Callable[[str], Request]  # by phase: "before", "during", "after"
    inject: Callable[[], None]
    heal: Callable[[], None]
    #: Whether every phase sends the same mix, so throughputs compare.
    same_mix: bool = True
    #: Whether the fault lasts ``--slow-seconds``: long enough to see more than the
    #: first timed-out call (CF_ACCESS_HTTP_TIMEOUT, 5 s) of each worker.
    long: bool = False


class Team:
    """The stand-in team, its tokens, and the request mixes the faults send."""

    def __init__(self, issuer: AccessIssuer, server: StandInServer) -> None:
        self.issuer = issuer
        self.server = server
        self.known = issuer.user_token("ada@example.com", ["Admins"])
        self._counter = itertools.count()

    def renew_known(self) -> None:
        """A known token signed by the current key (after rotations)."""
        self.known = self.issuer.user_token("ada@example.com", ["Admins"])

    def no_groups(self) -> Request:
        return "/api/whoami", {TOKEN_HEADER: self.known}, OK, "no groups"

    def fresh_identity(self, right: frozenset[int]) -> Request:
        number = next(self._counter)
        token = self.issuer.user_token(f"user{number}@example.com", ["Admins"])
        return "/admin/", {TOKEN_HEADER: token}, right, "new identity"

    def made_up_kid(self) -> Request:
        token = self.issuer.mint(header={"alg": "RS256", "kid": secrets.token_hex(32)})
        return "/api/whoami", {TOKEN_HEADER: token}, frozenset({401}), "made-up kid"


def mixed(*weighted: tuple[int, Callable[[], Request]]) -> Callable[[], Request]:
    """Requests drawn in turn from the makers, each ``weight`` times in 100."""
    order = [maker for weight, maker in weighted for _ in range(weight)]
    position = itertools.cycle(range(len(order)))
    lock = threading.Lock()

    def draw() -> Request:
        with lock:
            index = next(position)
        return order[index]()

    return draw


def faults(team: Team, redis: list[RedisServer], redis_port: int) -> list[Fault]:
    """Every fault, in the order they are run (grouped by gunicorn configuration)."""
    server = team.server

    identity_mixes = {
        phase: mixed((95, team.no_groups), (5, functools.partial(team.fresh_identity, right)))
        for phase, right in (("before", OK), ("during", frozenset({200, 503})), ("after", OK))
    }

    def identity_mix(phase: str) -> Request:
        return identity_mixes[phase]()

    def certs_mix(phase: str) -> Request:
        # Known kids only: none of them may wait for a fetch meeting the fault.
        # (A made-up kid pays for its one forced fetch, and under sync workers
        # its worker with it: see the flood.)
        return team.no_groups()

    def kill_redis() -> None:
        redis[0].stop()

    def restart_redis() -> None:
        redis[0] = RedisServer(redis_server_binary(), redis_port)
        redis[0].wait_until_ready()

    rotation_state: dict[str, bool] = {}

    def rotate() -> None:
        team.issuer.rotate()
        rotation_state["rotated"] = True

    def rotation_mix(phase: str) -> Request:
        # After the rotation, every request brings a new token of the new key.
        if phase == "before":
            return team.no_groups()
        token = team.issuer.user_token(f"new{secrets.token_hex(4)}@example.com")
        return "/api/whoami", {TOKEN_HEADER: token}, OK, "new key"

    def nothing() -> None:
        pass

    def injecting(endpoint: str, kind: str, seconds: float = 0.0) -> Callable[[], None]:
        return lambda: server.inject(endpoint, kind, seconds=seconds)

    flood = mixed((50, team.no_groups), (50, team.made_up_kid))
    return [
        # A rotation first: after the flood's forced fetch, a new kid would wait out
        # CF_ACCESS_KEYS_MIN_REFRESH_INTERVAL, as the flood bound wants.
        Fault("rotation, shared cache", "shared", rotation_mix, rotate, nothing, False),
        Fault("Redis killed, restarted", "shared", identity_mix, kill_redis, restart_redis),
        Fault(
            "identity refusing",
            "shared",
            identity_mix,
            injecting("identity", "refuse"),
            server.heal,
        ),
        Fault(
            "identity slow (10 s)",
            "shared",
            identity_mix,
            injecting("identity", "slow", 10.0),
            server.heal,
            long=True,
        ),
        Fault(
            "made-up kid flood",
            "shared",
            lambda phase: flood() if phase == "during" else team.no_groups(),
            nothing,
            nothing,
            same_mix=False,
        ),
        Fault("rotation, no shared cache", "unshared", rotation_mix, rotate, nothing, False),
        Fault("certs refusing", "stale", certs_mix, injecting("certs", "refuse"), server.heal),
        Fault("certs hanging", "stale", certs_mix, injecting("certs", "hang"), server.heal),
        Fault("certs answering 500", "stale", certs_mix, injecting("certs", "error"), server.heal),
        Fault("certs garbage", "stale", certs_mix, injecting("certs", "garbage"), server.heal),
    ]


@dataclass
class PhaseFigures:
    rate: float
    wrong: int
    wrong_statuses: str
    max_ms: float
    certs: int
    identity: int
    rate_no_groups: float


def figures(
    samples: list[Sample], start: float, end: float, fetches: tuple[int, int]
) -> PhaseFigures:
    inside = [sample for sample in samples if start <= sample.at < end]
    known = [s.latency for s in inside if s.kind in ("no groups", "new key")]
    seconds = max(end - start, 1e-9)
    return PhaseFigures(
        rate=len(inside) / seconds,
        wrong=sum(1 for sample in inside if not sample.right),
        wrong_statuses=" ".join(
            f"{status}x{count}"
            for status, count in sorted(
                Counter(sample.status for sample in inside if not sample.right).items()
            )
        ),
        max_ms=max(known, default=0.0) * 1000,
        certs=fetches[0],
        identity=fetches[1],
        rate_no_groups=sum(1 for s in inside if s.kind == "no groups") / seconds,
    )


def run_fault(
    fault: Fault, team: Team, port: int, connections: int, seconds: float, slow_seconds: float
) -> tuple[dict[str, PhaseFigures], float]:
    """Baseline, fault, recovery; the figures of each phase and the recovery time."""
    phase = ["before"]
    load = Load(port, connections, lambda: fault.source(phase[0]))
    marks: list[float] = [time.monotonic()]
    counts: list[tuple[int, int]] = [(team.server.calls[CERTS], team.server.calls[IDENTITY])]
    try:
        for name, action in (("during", fault.inject), ("after", fault.heal), ("", None)):
            time.sleep(slow_seconds if fault.long and phase[0] == "during" else seconds)
            counts.append((team.server.calls[CERTS], team.server.calls[IDENTITY]))
            marks.append(time.monotonic())
            if action is not None:
                action()
                phase[0] = name
    finally:
        load.stop()
        team.server.heal()
    results = {}
    for index, name in enumerate(("before", "during", "after")):
        fetched = (
            counts[index + 1][0] - counts[index][0],
            counts[index + 1][1] - counts[index][1],
        )
        results[name] = figures(load.samples, marks[index], marks[index + 1], fetched)
    healed = marks[2]
    late_wrong = [s.at for s in load.samples if s.at >= healed and not s.right]
    recovery = max(late_wrong, default=healed) - healed
    return results, recovery


def print_fault(
    name: str, results: dict[str, PhaseFigures], recovery: float, same_mix: bool
) -> None:
    print(f"  {name}")
    for phase, result in results.items():
        print(
            f"    {phase:7s} {result.rate:7.0f} req/s  wrong {result.wrong:5d}"
            f"  max ms {result.max_ms:7.0f}  certs {result.certs:3d}  identity {result.identity:4d}"
            + (f"  ({result.wrong_statuses})" if result.wrong else "")
        )
    before, during = results["before"], results["during"]
    if same_mix and before.rate_no_groups:
        ratio = during.rate_no_groups / before.rate_no_groups
        print(f"    no-groups route throughput during / before: {ratio:.2f}x")
    print(f"    recovery: {recovery:.2f} s")


#: Each configuration has its own Redis database, so no marker of one is seen by the next.
CONFIGS: dict[str, dict[str, object]] = {
    "shared": {},
    "unshared": {"CF_ACCESS_CACHE": None},
    # Sets stale within a phase, failed fetches retried each second: the faults are met.
    "stale": {
        "CF_ACCESS_KEYS_MAX_AGE": 3,
        "CF_ACCESS_KEYS_MIN_REFRESH_INTERVAL": 1,
        "CF_ACCESS_HTTP_TIMEOUT": 1.0,
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each phase")
    parser.add_argument("--worker-classes", default="sync,gthread")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--slow-seconds", type=float, default=30.0, help="length of the slow identity fault"
    )
    parser.add_argument("--quick", action="store_true", help="tiny phases, sync workers only")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.worker_classes, args.connections = 0.4, "sync", 4
        args.slow_seconds = 0.4

    print(describe_machine())
    print(
        f"{args.seconds:g} s per phase, {args.connections} client threads; statuses other than"
        " those right for each request are 'wrong' (a new identity may get 503 during an"
        " identity fault, a made-up kid must get 401, everything else 200)\n"
    )
    issuer = AccessIssuer()
    redis_port = free_port()
    redis = [RedisServer(redis_server_binary(), redis_port)]
    redis[0].wait_until_ready()
    try:
        with issuer.serve() as server:
            team = Team(issuer, server)
            for rounds, worker_class in enumerate(args.worker_classes.split(",")):
                options: tuple[str, ...] = ("--graceful-timeout", "5")
                if worker_class == "gthread":
                    options += ("--worker-class", "gthread", "--threads", "8")
                print(
                    f"gunicorn, 2 {worker_class} workers"
                    + (" x 8 threads" if worker_class == "gthread" else "")
                )
                by_config: dict[str, list[Fault]] = {}
                for fault in faults(team, redis, redis_port):
                    by_config.setdefault(fault.config, []).append(fault)
                for database, (config, config_faults) in enumerate(by_config.items()):
                    shared = f"redis://127.0.0.1:{redis_port}/{database + 3 * rounds}"
                    environ = server.environ(CF_ACCESS_CACHE=shared)
                    for key, value in CONFIGS[config].items():
                        if value is None:
                            environ.pop(key, None)
                        else:
                            environ[key] = str(value)
                    team.renew_known()
                    gunicorn = Gunicorn(free_port(), 2, environ, options)
                    try:
                        gunicorn.wait_until_serving()
                        for fault in config_faults:
                            results, recovery = run_fault(
                                fault,
                                team,
                                gunicorn.port,
                                args.connections,
                                args.seconds,
                                args.slow_seconds,
                            )
                            print_fault(
                                f"{fault.name} [{config}]", results, recovery, fault.same_mix
                            )
                    finally:
                        gunicorn.stop()
                print()
    finally:
        redis[0].stop()
    print("Fault benchmark done")


if __name__ == "__main__":
    main()
