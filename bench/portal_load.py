"""The load driver of the portal benchmark: simulated families, each an httpx client with its
own cookie jar and address, that log in and activate as a browser does; the phases they play;
and the closed loop that times them.

`bench.portal_bench` serves the portal, seeds it, runs these phases and writes the report.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date

import httpx

NEW_PASSWORD = "Vacances-2027!"
BIRTH_DATE = date(2017, 3, 14)
CHOSEN_LOGIN = "login, chosen password"
FAILED_LOGINS = "failed logins, in turn"
ACTIVATION = "activation (6 requests)"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
# Failed logins per identifier the bench allows itself: the lockout comes at the 5th.
FAILURES_PER_IDENTIFIER = 4


@dataclass
class Credentials:
    """Who can log in: (identifier, password) of each group of accounts."""

    activated: list[tuple[str, str]]
    provisional: list[tuple[str, str]]
    to_activate: list[tuple[str, str]]


# --- Clients ---------------------------------------------------------------------------------


_addresses = itertools.count(1)


def new_address() -> str:
    """A client address never used before in this run (RFC 2544's benchmarking range)."""
    number = next(_addresses)
    return f"198.18.{number // 250 % 256}.{number % 250 + 1}"


class Rotation:
    """Identifiers in turn, each at most `uses` times (then None): failures stay under the
    lockout of one identifier."""

    def __init__(self, items: Sequence[tuple[str, str]], uses: int) -> None:
        self._items = list(items)
        self._left = [uses] * len(items)
        self._next = 0

    def next(self) -> tuple[str, str] | None:
        for _ in range(len(self._items)):
            index, self._next = self._next, (self._next + 1) % len(self._items)
            if self._left[index] > 0:
                self._left[index] -= 1
                return self._items[index]
        return None


@dataclass
class Sample:
    """One login, or one whole activation flow: its requests' latencies and statuses."""

    latencies: list[float]
    statuses: list[int]
    expected: list[int]
    kind: str = ""

    @property
    def total(self) -> float:
        return sum(self.latencies)

    @property
    def ok(self) -> bool:
        return self.statuses == self.expected


async def _timed(call: Awaitable[httpx.Response]) -> tuple[float, httpx.Response]:
    start = time.perf_counter()
    response = await call
    return time.perf_counter() - start, response


async def _csrf(client: httpx.AsyncClient, path: str) -> str:
    page = await client.get(path)
    match = CSRF.search(page.text)
    if match is None:
        raise RuntimeError(f"no CSRF token on {path} ({page.status_code})")
    return match[1]


Attempt = Callable[[httpx.AsyncClient], Awaitable["Sample | None"]]


async def health(client: httpx.AsyncClient) -> Sample:
    latency, response = await _timed(client.get("/health"))
    return Sample([latency], [response.status_code], [200])


def login(
    credentials: Callable[[], tuple[str, str] | None],
    *,
    activation: bool = False,
    expected: int = 303,
    new_client_address: bool = False,
    kind: str = "",
) -> Attempt:
    """One login: fetch the form (not timed), post it (timed)."""
    path = "/activation" if activation else "/connexion"

    async def attempt(client: httpx.AsyncClient) -> Sample | None:
        pair = credentials()
        if pair is None:
            return None
        identifier, password = pair
        headers = {"X-Forwarded-For": new_address()} if new_client_address else None
        token = await _csrf(client, path)
        form = {"identifier": identifier, "password": password, "csrf_token": token}
        latency, response = await _timed(client.post(path, data=form, headers=headers))
        return Sample([latency], [response.status_code], [expected], kind)

    return attempt


def in_turn(*attempts: Attempt) -> Attempt:
    """Each attempt after the other: kinds compared under the same load, at the same time."""
    turns = itertools.cycle(attempts)

    async def attempt(client: httpx.AsyncClient) -> Sample | None:
        return await next(turns)(client)

    return attempt


def activation_flow(
    pool: list[tuple[str, str]], confirmation_path: Callable[[str], str]
) -> Attempt:
    """A family activates: the letter's credentials, the form, the link (6 requests);
    `confirmation_path` reads the link from the family's mailbox."""

    async def flow(client: httpx.AsyncClient) -> Sample | None:
        if not pool:
            return None
        identifier, password = pool.pop()
        client.cookies.clear()
        latencies: list[float] = []
        statuses: list[int] = []

        async def step(call: Awaitable[httpx.Response]) -> httpx.Response:
            latency, response = await _timed(call)
            latencies.append(latency)
            statuses.append(response.status_code)
            return response

        def token(response: httpx.Response) -> str:
            match = CSRF.search(response.text)
            return match[1] if match else ""

        page = await step(client.get(f"/activation?identifiant={identifier}"))
        await step(
            client.post(
                "/activation",
                data={"identifier": identifier, "password": password, "csrf_token": token(page)},
            )
        )
        page = await step(client.get("/activation/finaliser"))
        await step(
            client.post(
                "/activation/finaliser",
                data={
                    "new_password": NEW_PASSWORD,
                    "confirm_password": NEW_PASSWORD,
                    "email": f"famille.{identifier}@example.org",
                    "birth_date": BIRTH_DATE.strftime("%d/%m/%Y"),
                    "csrf_token": token(page),
                },
            )
        )
        if statuses == [200, 303, 200, 303]:
            link = await asyncio.to_thread(confirmation_path, identifier)
            page = await step(client.get(link))
            await step(client.post(link, data={"csrf_token": token(page)}))
        return Sample(latencies, statuses, [200, 303, 200, 303, 200, 200])

    return flow


# --- Measuring -------------------------------------------------------------------------------


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))]


@dataclass
class Level:
    """One phase at one concurrency: what the clients got."""

    phase: str
    concurrency: int
    seconds: float
    samples: list[Sample] = field(default_factory=list)
    probe: list[float] = field(default_factory=list)  # /health latencies meanwhile

    @property
    def done(self) -> int:
        return len(self.samples)

    @property
    def rate(self) -> float:
        return self.done / self.seconds if self.seconds else 0.0

    @property
    def totals(self) -> list[float]:
        return [sample.total for sample in self.samples]

    @property
    def requests(self) -> list[float]:
        return [latency for sample in self.samples for latency in sample.latencies]

    def kinds(self) -> dict[str, list[Sample]]:
        """The samples of each kind, in the order the kinds came."""
        found: dict[str, list[Sample]] = {}
        for sample in self.samples:
            found.setdefault(sample.kind, []).append(sample)
        return found

    @property
    def unexpected(self) -> Counter[int]:
        found: Counter[int] = Counter()
        for sample in self.samples:
            if not sample.ok:
                found.update(
                    status
                    for status, wanted in itertools.zip_longest(sample.statuses, sample.expected)
                    if status != wanted and status is not None
                )
        return found


@contextlib.asynccontextmanager
async def browsers(
    base_url: str, count: int, *, limits: httpx.Limits | None = None
) -> AsyncIterator[list[httpx.AsyncClient]]:
    """`count` clients, made before any clock starts (an httpx client costs milliseconds of
    CPU to make), each with its own cookie jar and its own address. By default idle
    connections are dropped before uvicorn's 5 s keep-alive closes them under us."""
    clients = [
        httpx.AsyncClient(
            base_url=base_url,
            headers={"X-Forwarded-For": new_address()},
            timeout=120,
            limits=limits or httpx.Limits(keepalive_expiry=3.0),
        )
        for _ in range(count)
    ]
    try:
        yield clients
    finally:
        for client in clients:
            await client.aclose()


async def closed_loop(
    clients: Sequence[httpx.AsyncClient],
    phase: str,
    concurrency: int,
    duration: float,
    attempt: Attempt,
    *,
    probe: httpx.AsyncClient | None = None,
) -> Level:
    """`concurrency` clients, each sending its next attempt as soon as the previous one is
    answered, for `duration` seconds (attempts in flight then are finished and counted);
    `probe` meanwhile asks /health 20 times a second."""
    samples: list[Sample] = []
    probed: list[float] = []
    start = time.perf_counter()
    deadline = start + duration

    async def client_loop(client: httpx.AsyncClient) -> None:
        while time.perf_counter() < deadline:
            sample = await attempt(client)
            if sample is None:
                return
            samples.append(sample)

    async def probe_loop(client: httpx.AsyncClient) -> None:
        while time.perf_counter() < deadline:
            probed.append((await health(client)).total)
            await asyncio.sleep(0.05)

    tasks = [client_loop(client) for client in clients[:concurrency]]
    if probe is not None:
        tasks.append(probe_loop(probe))
    await asyncio.gather(*tasks)
    return Level(phase, concurrency, time.perf_counter() - start, samples, probed)


# --- Phases ----------------------------------------------------------------------------------


def failed_logins(credentials: Credentials) -> Attempt:
    """Wrong passwords and unknown identifiers in turn, each from a new client address and
    no identifier failing more than FAILURES_PER_IDENTIFIER times: no throttle trips."""
    wrong_activated = Rotation(
        [(identifier, "Mauvais-Mot-2027!") for identifier, _ in credentials.activated],
        FAILURES_PER_IDENTIFIER,
    )
    wrong_provisional = Rotation(
        [(identifier, "ABCDEFGH") for identifier, _ in credentials.provisional],
        FAILURES_PER_IDENTIFIER,
    )
    unknown = (f"inconnu.{number}" for number in itertools.count(1))
    return in_turn(
        login(
            wrong_activated.next,
            expected=401,
            new_client_address=True,
            kind="wrong password, activated account",
        ),
        login(
            wrong_provisional.next,
            expected=401,
            new_client_address=True,
            kind="wrong password, provisional one outstanding",
        ),
        login(
            lambda: (next(unknown), "Vacances-2027!"),
            expected=401,
            new_client_address=True,
            kind="unknown identifier",
        ),
    )


async def main_phases(
    url: str,
    credentials: Credentials,
    confirmation_path: Callable[[str], str],
    *,
    concurrency: list[int],
    sweep: list[int],
    duration: float,
) -> list[Level]:
    """Every phase at every concurrency level (the chosen-password login at the `sweep`
    levels too), one after the other, against the portal at `url`."""
    levels: list[Level] = []
    activated = itertools.cycle(credentials.activated)
    provisional = itertools.cycle(credentials.provisional)
    pool = list(reversed(credentials.to_activate))
    failed = failed_logins(credentials)
    phases: list[tuple[str, Attempt]] = [
        ("health (no hash)", health),
        (CHOSEN_LOGIN, login(lambda: next(activated))),
        ("login, provisional password", login(lambda: next(provisional), activation=True)),
        (FAILED_LOGINS, failed),
        (ACTIVATION, activation_flow(pool, confirmation_path)),
    ]
    top = max(concurrency)
    async with browsers(url, top + 1) as clients:
        # Warm-up, untimed: connections, templates, the two decoy hashes.
        await asyncio.gather(*(health(client) for client in clients))
        await failed(clients[0])
        for name, attempt in phases:
            wanted = concurrency
            if name == CHOSEN_LOGIN:
                wanted = sorted({*concurrency, *sweep})
            for level_concurrency in wanted:
                probe = clients[top] if name == CHOSEN_LOGIN and level_concurrency == top else None
                # Three kinds share the failed logins' time: they get three times as long.
                seconds = duration * (3 if name == FAILED_LOGINS else 1)
                level = await closed_loop(
                    clients, name, level_concurrency, seconds, attempt, probe=probe
                )
                levels.append(level)
                _print_level(level)
    return levels


def _print_level(level: Level) -> None:
    print(
        f"  {level.phase:<30} c={level.concurrency:<3} {level.done:>4} in {level.seconds:5.2f} s"
        f"  p50 {percentile(level.totals, 0.5) * 1000:6.0f} ms"
        f"  p95 {percentile(level.totals, 0.95) * 1000:6.0f} ms"
        + (f"  unexpected {dict(level.unexpected)}" if level.unexpected else ""),
        flush=True,
    )


async def logins_alone_and_loaded(
    url: str, credentials: Credentials, *, clients: int, duration: float
) -> tuple[Level, Level]:
    """Chosen-password logins from one client, then from `clients` at once."""
    activated = itertools.cycle(credentials.activated)
    attempt = login(lambda: next(activated))
    async with browsers(url, clients) as browsing:
        await attempt(browsing[0])
        alone = await closed_loop(browsing, "login", 1, duration, attempt)
        loaded = await closed_loop(browsing, "login", clients, duration, attempt)
    return alone, loaded
