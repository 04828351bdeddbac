"""City Events load test (issue 19): Locust, headless, against the local stack only.

The mix a city-events audience makes, with think times (0.5 to 2 s between a user's requests):
browse/list/search 70 % (lists by city and searches by word), get one event 15 %, join or
leave 10 %, auth 5 % (refreshing the session once it is 15 s old, else reading the profile). Each simulated user signs up once (register and
login) from a loopback address of its own, as each user behind API Gateway has its own
address (the API's per-address budgets then apply per user, not to the whole test).

The profile (LOAD_PROFILE) is a LoadTestShape, every one bounded in users and time:
  smoke   4 users for 45 s (CI: the whole path works under a little load)
  load    20 users for 3 minutes (the tested rate of the report)
  stress  5 users more every 15 s, from 5 to 100 (at most 330 s), until the reads' p95 over
          the last 10 s (100 samples at least) passes the budget (200 ms), or errors pass 1 %,
          for 3 checks in a row; where it broke is written to LOAD_STRESS_OUT (JSON)
  soak    12 users for 10 minutes (drift: latency and memory over time)
The seed (LOAD_SEED, infra/load/seed.py) names the events, cities and words.
"""

import collections
import itertools
import json
import os
import random
import time
import uuid

from locust import HttpUser, LoadTestShape, between, events, task
from requests.adapters import HTTPAdapter

SEED = json.load(open(os.environ["LOAD_SEED"]))
assert SEED["url"].startswith("http://127.0.0.1:"), "load tests run against the local stack only"
PROFILE = os.environ.get("LOAD_PROFILE", "smoke")
BUDGET_MS = float(os.environ.get("LOAD_BUDGET_MS", "200"))
READS = ("GET /v1/events (list)", "GET /v1/events (search)", "GET /v1/events/{id}")

_addresses = itertools.count()


class FromAddress(HTTPAdapter):
    """Connections from one loopback source address."""

    def __init__(self, source, **kwargs):
        self.source = source
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.source, 0)
        return super().init_poolmanager(*args, **kwargs)


class Attendee(HttpUser):
    wait_time = between(0.5, 2.0)

    def on_start(self):
        assert self.host.startswith("http://127.0.0.1:"), "loopback only"
        n = next(_addresses)
        # Never a proxy from the environment: every request goes to 127.0.0.1 from this address.
        self.client.trust_env = False
        self.client.mount("http://", FromAddress("127.0.%d.%d" % (40 + n // 250, 1 + n % 250)))
        self.refreshed_at = time.monotonic()
        self.rnd = random.Random()
        self.email = "load-%s@example.test" % uuid.uuid4().hex[:16]
        self.joined = set()
        self.client.post("/v1/auth/register", json={"email": self.email, "password": SEED["password"],
                                                    "display_name": "Load"}, name="POST /v1/auth/register")
        self.access, self.refresh_token = None, None
        self.login()

    def login(self):
        with self.client.post("/v1/auth/login", json={"email": self.email, "password": SEED["password"]},
                              name="POST /v1/auth/login", catch_response=True) as r:
            if r.status_code == 200:
                body = r.json()
                self.access, self.refresh_token = body["access_token"], body["refresh_token"]
            else:
                r.failure("login %s" % r.status_code)

    def auth(self):
        return {"authorization": "Bearer %s" % self.access} if self.access else {}

    # ---------------------------------------------------------------- browse 70 %
    @task(35)
    def list_city(self):
        city = self.rnd.choice(SEED["cities"])
        self.client.get("/v1/events", params={"city": city, "limit": 20}, name="GET /v1/events (list)")

    @task(35)
    def search(self):
        city = self.rnd.choice(SEED["cities"])
        word = self.rnd.choice(SEED["words"])
        self.client.get("/v1/events", params={"city": city, "q": word, "limit": 20}, name="GET /v1/events (search)")

    # ---------------------------------------------------------------- get 15 %
    @task(15)
    def get_event(self):
        self.client.get("/v1/events/%s" % self.rnd.choice(SEED["events"]), name="GET /v1/events/{id}")

    # ---------------------------------------------------------------- join / leave 10 %
    @task(10)
    def join_or_leave(self):
        if not self.access:
            return self.login()
        if self.joined and self.rnd.random() < 0.5:
            event = self.joined.pop()
            method, name = "DELETE", "DELETE /v1/events/{id}/join"
        else:
            event = self.rnd.choice(SEED["events"])
            method, name = "POST", "POST /v1/events/{id}/join"
        headers = dict(self.auth(), **{"idempotency-key": str(uuid.uuid4())})
        for attempt in range(2):
            if self.send_join(method, event, headers, name, last=attempt == 1):
                return

    def send_join(self, method, event, headers, name, last):
        """One send; False when it should be sent again (a 503: contention, the same key)."""
        with self.client.request(method, "/v1/events/%s/join" % event, headers=headers, name=name,
                                 catch_response=True) as r:
            if r.status_code == 503 and not last:
                # What the API asks of a client: wait Retry-After, send the same key again.
                r.success()
                time.sleep(min(2.0, float(r.headers.get("retry-after", "1") or 1)))
                return False
            # A full event waitlists (202); joining twice or leaving what was not joined is
            # the domain's answer (409/404), not a failure of the system.
            if r.status_code in (200, 201, 202):
                if method == "POST":
                    self.joined.add(event)
                r.success()
            elif r.status_code in (404, 409):
                r.success()
            elif r.status_code == 401:
                self.access = None
                r.failure("401: the session ended")
            else:
                r.failure("%s %s" % (r.status_code, r.text[:200]))
        return True

    # ---------------------------------------------------------------- auth 5 %
    @task(5)
    def refresh(self):
        if not self.refresh_token:
            return self.login()
        # A client refreshes when its token nears its end, not at random: at most every 15 s
        # here (the auth routes allow an address 5 a minute). Meanwhile it reads its profile.
        if time.monotonic() - self.refreshed_at < 15:
            self.client.get("/v1/me", headers=self.auth(), name="GET /v1/me")
            return
        self.refreshed_at = time.monotonic()
        with self.client.post("/v1/auth/refresh", json={"refresh_token": self.refresh_token},
                              name="POST /v1/auth/refresh", catch_response=True) as r:
            if r.status_code == 200:
                body = r.json()
                self.access, self.refresh_token = body["access_token"], body["refresh_token"]
            else:
                self.refresh_token = None
                r.failure("refresh %s" % r.status_code)


# Every read's latency in the last 10 s, pooled across the read routes (the stress check's own
# window: Locust's per-route current percentiles are the maximum below 20 samples).
_reads = collections.deque()


@events.request.add_listener
def _record(request_type, name, response_time, exception, **_):
    if name in READS:
        _reads.append((time.monotonic(), response_time, exception is not None))


def window_p95(now, seconds=10.0):
    while _reads and now - _reads[0][0] > seconds:
        _reads.popleft()
    times = sorted(r[1] for r in _reads)
    if len(times) < 100:
        return None
    return times[int(0.95 * len(times))]


def reads_p95(stats):
    """The worst current (last ~10 s) p95 of the read routes, in ms."""
    worst = 0.0
    for name in READS:
        entry = stats.get(name, "GET")
        if entry.num_requests:
            worst = max(worst, entry.get_current_response_time_percentile(0.95) or 0.0)
    return worst


class Profile(LoadTestShape):
    """Users over time for LOAD_PROFILE; None stops the test."""

    def __init__(self):
        super().__init__()
        self.broke = None
        self.over = 0
        self.window = []  # (time, requests, failures) samples for the stress check

    def tick(self):
        t = self.get_run_time()
        if PROFILE == "smoke":
            return (4, 2) if t < 45 else None
        if PROFILE == "load":
            return (20, 2) if t < 180 else None
        if PROFILE == "soak":
            return (12, 2) if t < 600 else None
        if PROFILE == "stress":
            users = min(100, 5 + 5 * int(t // 15))
            if t > 330:
                return self.stop("did not break within 330 s", users, held=True)
            # A step's first 5 s are its users signing up: not judged.
            if t % 15 >= 5 and t > 20 and self.broken(users):
                return None
            return (users, 5)
        raise SystemExit("LOAD_PROFILE must be smoke, load, stress or soak")

    def broken(self, users):
        stats = self.runner.stats
        total = stats.total
        now = time.time()
        self.window.append((now, total.num_requests, total.num_failures))
        self.window = [w for w in self.window if now - w[0] <= 10]
        requests = self.window[-1][1] - self.window[0][1]
        failures = self.window[-1][2] - self.window[0][2]
        p95 = window_p95(time.monotonic())
        error_rate = failures / requests if requests else 0.0
        why = None
        if p95 is not None and p95 > BUDGET_MS:
            why = "reads' p95 %.0f ms > %.0f ms (last 10 s)" % (p95, BUDGET_MS)
        elif requests >= 50 and error_rate > 0.01:
            why = "errors %.1f %% > 1 %% (last 10 s)" % (100 * error_rate)
        # Broken when it holds for three checks in a row (3 s), not on one slow request.
        self.over = self.over + 1 if why else 0
        if self.over >= 3:
            self.stop(why, users, p95=p95, error_rate=error_rate, rps=total.current_rps)
            return True
        return False

    def stop(self, why, users, **more):
        if self.broke is None:
            self.broke = dict(why=why, users=users, seconds=round(self.get_run_time(), 1), **more)
            out = os.environ.get("LOAD_STRESS_OUT")
            if out:
                with open(out, "w") as f:
                    json.dump(self.broke, f)
        return None


@events.test_stop.add_listener
def _summary(environment, **_):
    total = environment.stats.total
    print("load %s: %d requests, %d failures, %.1f req/s, reads' p95 %.0f ms" % (
        PROFILE, total.num_requests, total.num_failures, total.total_rps, reads_p95(environment.stats)))
