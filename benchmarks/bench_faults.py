"""The example app under gunicorn while Redis, the certs or the identity endpoint fail.

    python benchmarks/bench_faults.py [--seconds 3] [--worker-classes sync,gthread] [--quick]

Runs ``examples.protected_app:create_app()`` under gunicorn (2 sync workers,
then 2 gthread workers of 8 threads) on 127.0.0.1, with a Redis shared cache
and the stand-in server run by this process, loads it with a threaded
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
  not all there is to see), while new tokens come to the group route at
  ``--new-identities`` a second (an open loop beside the load, so that a
  slow answer to one holds no client back from the rest): its onset is the
  second-by-second figure to read;
- a flood of tokens naming made-up key ids;
- the certs endpoint hanging while 10 % of requests name made-up key ids
  (default timeout, ``CF_ACCESS_KEYS_MIN_REFRESH_INTERVAL=1``): requests with
  known kids must never wait more than the budget (``CF_ACCESS_UPSTREAM_WAIT``);
- two gunicorns whose clocks are 25 s apart (``benchmarks/skewed_app.py``),
  sharing Redis, the load split between them, through a rotation: no wrong 401;
- Redis answering 100 ms and 400 ms late (under its 0.5 s socket timeout),
  through a delaying proxy, while new identities come as above;
- a key set without the key every token is signed with (a rotation done too
  early on the other side), then healed, with ``CF_ACCESS_KEYS_MAX_AGE=3``:
  the refusals must end within seconds of the heal.

Printed per fault and phase: requests per second, wrong statuses, the
longest wait of a request with a known kid (``max ms``, its timed-out fetch
included if it waited for one), fetches of certs and identity, and the time
from the heal to the last wrong status (``recovery``). ``/api/whoami`` needs no
groups; its throughput during an identity or Redis fault is compared with
before, on average and **second by second**: each second's rate over the
baseline's and its p99 (``per second``), with the worst second of each.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.client
import itertools
import math
import secrets
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from _support import check_python, describe_machine

check_python()

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_gunicorn import Gunicorn, free_port  # noqa: E402

from flask_cf_access import TOKEN_HEADER  # noqa: E402
from flask_cf_access.testing import (  # noqa: E402
    AccessIssuer,
    SigningKey,
    StandInServer,
)
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
    """Client threads sending what :attr:`source` gives, recording every answer.

    With several ports (several servers), the client threads are spread over them.
    """

    def __init__(self, ports: list[int], connections: int, source: Callable[[], Request]) -> None:
        self.ports = ports
        self.source = source
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._client, args=(ports[index % len(ports)],))
            for index in range(connections)
        ]
        for thread in self._threads:
            thread.start()

    def _client(self, port: int) -> None:
        while not self._stop.is_set():
            path, headers, right, kind = self.source()
            started = time.monotonic()
            status = get(port, path, headers)
            ended = time.monotonic()
            self.samples.append(Sample(ended, ended - started, status, status in right, kind))

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()


class Trickle:
    """Requests sent at a fixed rate whatever their answers take (an open loop), each
    in a thread of its own pool, recorded into ``samples``: new identities arriving
    as users do, which a slow answer to one does not hold back from the rest."""

    def __init__(
        self,
        ports: list[int],
        rate: float,
        source: Callable[[], Request],
        samples: list[Sample],
    ) -> None:
        self.ports = ports
        self.interval = 1 / rate
        self.source = source
        self.samples = samples
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(64)
        self._thread = threading.Thread(target=self._send)
        self._thread.start()

    def _send(self) -> None:
        next_at = time.monotonic()
        for count in itertools.count():
            if self._stop.wait(max(0.0, next_at - time.monotonic())):
                return
            next_at += self.interval
            self._pool.submit(self._one, self.ports[count % len(self.ports)])

    def _one(self, port: int) -> None:
        path, headers, right, kind = self.source()
        started = time.monotonic()
        status = get(port, path, headers)
        ended = time.monotonic()
        self.samples.append(Sample(ended, ended - started, status, status in right, kind))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._pool.shutdown(wait=True)


class DelayingProxy:
    """A TCP proxy on 127.0.0.1 holding what clients send for :attr:`delay` seconds
    before passing it on: a Redis answering late, under its socket timeout."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.delay = 0.0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, delayed: bool) -> None:
        try:
            while chunk := source.recv(65536):
                if delayed and self.delay:
                    time.sleep(self.delay)
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._listener.close()


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
    #: New identities sent at ``--new-identities`` a second beside the load, by phase.
    trickle: Callable[[str], Request] | None = None


class Team:
    """The stand-in, its tokens, and the request mixes the faults send."""

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

    def known_or_refused(self) -> Request:
        """The known token, which a set without its key refuses (401) while it lasts."""
        return "/api/whoami", {TOKEN_HEADER: self.known}, frozenset({200, 401}), "no groups"

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


def faults(
    team: Team, redis: list[RedisServer], redis_port: int, proxy: DelayingProxy
) -> list[Fault]:
    """Every fault, in the order they are run (grouped by gunicorn configuration)."""
    server = team.server

    new_identities = {
        phase: functools.partial(team.fresh_identity, right)
        for phase, right in (("before", OK), ("during", frozenset({200, 503})), ("after", OK))
    }

    def new_identity(phase: str) -> Request:
        return new_identities[phase]()

    def identity_mix(phase: str) -> Request:
        # The routes that need no groups; new identities come as a trickle beside them.
        return team.no_groups()

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
    hang_mix = mixed((90, team.no_groups), (10, team.made_up_kid))

    def delay_redis(seconds: float) -> Callable[[], None]:
        def inject() -> None:
            proxy.delay = seconds

        return inject

    def undelay_redis() -> None:
        proxy.delay = 0.0

    withdrawn: dict[str, tuple[SigningKey, SigningKey | None]] = {}

    def withdraw_signing_key() -> None:
        # Published: a new key only; tokens are still signed with the old one.
        issuer = team.issuer
        withdrawn["keys"] = (issuer.signing_key, issuer.previous_key)
        issuer.rotate()
        issuer.drop_previous()

    def republish_signing_key() -> None:
        signing, previous = withdrawn.pop("keys")
        team.issuer.signing_key, team.issuer.previous_key = signing, previous

    def withdrawn_mix(phase: str) -> Request:
        return team.known_or_refused() if phase == "during" else team.no_groups()

    return [
        # A rotation first: after the flood's forced fetch, a new kid would wait out
        # CF_ACCESS_KEYS_MIN_REFRESH_INTERVAL, as the flood bound wants.
        Fault("rotation, shared cache", "shared", rotation_mix, rotate, nothing, False),
        Fault(
            "Redis killed, restarted",
            "shared",
            identity_mix,
            kill_redis,
            restart_redis,
            trickle=new_identity,
        ),
        Fault(
            "identity refusing",
            "shared",
            identity_mix,
            injecting("identity", "refuse"),
            server.heal,
            trickle=new_identity,
        ),
        Fault(
            "identity slow (10 s)",
            "shared",
            identity_mix,
            injecting("identity", "slow", 10.0),
            server.heal,
            long=True,
            trickle=new_identity,
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
        Fault(
            "set without the signing key",
            "stale",
            withdrawn_mix,
            withdraw_signing_key,
            republish_signing_key,
        ),
        Fault(
            "certs hanging, 10 % made-up kids",
            "hang",
            lambda phase: hang_mix(),
            injecting("certs", "hang"),
            server.heal,
        ),
        Fault("rotation, clocks 25 s apart", "skew", rotation_mix, rotate, nothing, False),
        Fault(
            "Redis 100 ms late",
            "delayed",
            identity_mix,
            delay_redis(0.1),
            undelay_redis,
            trickle=new_identity,
        ),
        Fault(
            "Redis 400 ms late",
            "delayed",
            identity_mix,
            delay_redis(0.4),
            undelay_redis,
            trickle=new_identity,
        ),
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


@dataclass
class Second:
    """One second of a phase, for the requests with known kids and no groups."""

    ratio: float  # their rate over the baseline's
    p99_ms: float


def p99(latencies: list[float]) -> float:
    """The 99th percentile of ``latencies`` (seconds), in milliseconds."""
    if not latencies:
        return 0.0
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)] * 1000


def seconds_of(samples: list[Sample], start: float, end: float, base_rate: float) -> list[Second]:
    """Each whole second from ``start`` to ``end``: the no-groups rate over ``base_rate``,
    and the p99 of the requests with known kids."""
    seconds = []
    for index in range(int(end - start)):
        low, high = start + index, start + index + 1
        inside = [sample for sample in samples if low <= sample.at < high]
        rate = sum(1 for sample in inside if sample.kind == "no groups")
        known = [sample.latency for sample in inside if sample.kind in ("no groups", "new key")]
        seconds.append(Second(rate / base_rate if base_rate else 0.0, p99(known)))
    return seconds


def run_fault(
    fault: Fault,
    team: Team,
    ports: list[int],
    connections: int,
    seconds: float,
    slow_seconds: float,
    new_identities: float,
) -> tuple[dict[str, PhaseFigures], float, dict[str, list[Second]], float]:
    """Baseline, fault, recovery: the figures of each phase, the recovery time, the
    seconds of the fault and of the recovery, and the baseline's p99 (ms)."""
    phase = ["before"]
    load = Load(ports, connections, lambda: fault.source(phase[0]))
    trickle = fault.trickle
    side = (
        Trickle(ports, new_identities, lambda: trickle(phase[0]), load.samples)
        if trickle is not None
        else None
    )
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
        if side is not None:
            side.stop()
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
    base_rate = results["before"].rate_no_groups
    by_second = {
        name: seconds_of(load.samples, marks[index], marks[index + 1], base_rate)
        for index, name in ((1, "during"), (2, "after"))
    }
    baseline = [
        s.latency
        for s in load.samples
        if marks[0] <= s.at < marks[1] and s.kind in ("no groups", "new key")
    ]
    return results, recovery, by_second, p99(baseline)


def print_fault(
    name: str,
    results: dict[str, PhaseFigures],
    recovery: float,
    same_mix: bool,
    by_second: dict[str, list[Second]],
    baseline_p99: float,
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
        for phase, seconds in by_second.items():
            if not seconds:
                continue
            listed = " ".join(f"{second.ratio:.2f}/{second.p99_ms:.0f}" for second in seconds)
            worst = min(second.ratio for second in seconds)
            slowest = max(second.p99_ms for second in seconds)
            print(
                f"    per second {phase:6s} (rate x baseline / p99 ms): {listed}"
                f"  -> worst {worst:.2f}x, p99 up to {slowest:.0f} ms"
                f" (baseline p99 {baseline_p99:.0f} ms)"
            )
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
    # Forced fetches for made-up kids meet the hanging endpoint every second, with
    # the default timeout (5 s) and budget (1 s).
    "hang": {"CF_ACCESS_KEYS_MIN_REFRESH_INTERVAL": 1},
    # Two servers, the second's clock 25 s ahead (benchmarks/skewed_app.py).
    "skew": {},
    # Redis through the delaying proxy.
    "delayed": {},
}
#: The clock offsets of the servers of a configuration: one server unless listed.
CLOCK_OFFSETS: dict[str, tuple[float, ...]] = {"skew": (0.0, 25.0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each phase")
    parser.add_argument("--worker-classes", default="sync,gthread")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--new-identities",
        type=float,
        default=20.0,
        help="new identities a second on the group route, beside the load, in identity"
        " and Redis faults",
    )
    parser.add_argument(
        "--slow-seconds", type=float, default=30.0, help="length of the slow identity fault"
    )
    parser.add_argument("--quick", action="store_true", help="tiny phases, sync workers only")
    parser.add_argument(
        "--only", default="", help="run only the faults whose name holds one of these (a,b)"
    )
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
    proxy = DelayingProxy(redis_port)
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
                wanted = [word for word in args.only.split(",") if word]
                for fault in faults(team, redis, redis_port, proxy):
                    if not wanted or any(word in fault.name for word in wanted):
                        by_config.setdefault(fault.config, []).append(fault)
                for database, (config, config_faults) in enumerate(by_config.items()):
                    cache_port = proxy.port if config == "delayed" else redis_port
                    number = database + len(CONFIGS) * rounds
                    shared = f"redis://127.0.0.1:{cache_port}/{number}"
                    environ = server.environ(CF_ACCESS_CACHE=shared)
                    for key, value in CONFIGS[config].items():
                        if value is None:
                            environ.pop(key, None)
                        else:
                            environ[key] = str(value)
                    team.renew_known()
                    servers = []
                    try:
                        for offset in CLOCK_OFFSETS.get(config, (None,)):
                            if offset is None:
                                servers.append(Gunicorn(free_port(), 2, environ, options))
                            else:
                                servers.append(
                                    Gunicorn(
                                        free_port(),
                                        2,
                                        {**environ, "BENCH_CLOCK_OFFSET": str(offset)},
                                        options,
                                        app="benchmarks.skewed_app:create_app()",
                                    )
                                )
                        for gunicorn in servers:
                            gunicorn.wait_until_serving()
                        for fault in config_faults:
                            results, recovery, by_second, baseline_p99 = run_fault(
                                fault,
                                team,
                                [gunicorn.port for gunicorn in servers],
                                args.connections,
                                args.seconds,
                                args.slow_seconds,
                                args.new_identities,
                            )
                            print_fault(
                                f"{fault.name} [{config}]",
                                results,
                                recovery,
                                fault.same_mix,
                                by_second,
                                baseline_p99,
                            )
                    finally:
                        for gunicorn in servers:
                            gunicorn.stop()
                print()
    finally:
        proxy.close()
        redis[0].stop()
    print("Fault benchmark done")


if __name__ == "__main__":
    main()
