#!/usr/bin/env python3
"""Open-loop read load on the local stack: GET /v1/events/{id} at fixed rates, as a crowd does
(requests are sent on schedule whether or not earlier ones were answered), loopback only,
bounded in count and time.

  load_read.py --url http://127.0.0.1:3000 --event evt_... [--rates 10,25,50,100,200,50,0,50]
               [--seconds 10] [--timeout 10] [--json out.json]

Each step sends rate x seconds requests from anonymous callers (a few hundred client
addresses on 127.x, so no one address meets the per-instance brake) and waits at most
`--timeout` for each; the next step starts as soon as the previous one has sent its last
request (so a step right after an overload shows the overload's backlog), and a rate of 0 is a
pause (the load stops: the step after it shows whether the stack recovered). Latency is
measured from each request's scheduled send time (no coordinated omission). Printed per step:
sent, answered 200, refused (429 from the gateway's throttling or the brake), 503, other,
client timeouts, and p50/p95/p99 of all requests (a timeout or an error counts as slower than
any answer); then the highest rate whose p95 stayed under 50 ms and under 200 ms.

Standard library only.
"""
import argparse
import concurrent.futures
import http.client
import json
import statistics
import sys
import threading
import time
import urllib.parse


def one(url, path, timeout, source, scheduled):
    u = urllib.parse.urlsplit(url)
    if u.hostname not in ("127.0.0.1", "localhost"):
        raise SystemExit("load_read.py sends to loopback only, not %s" % u.hostname)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout, source_address=(source, 0))
    try:
        conn.request("GET", path, headers={"accept": "application/json"})
        r = conn.getresponse()
        r.read()
        return r.status, time.perf_counter() - scheduled
    except (OSError, http.client.HTTPException):
        return None, time.perf_counter() - scheduled
    finally:
        conn.close()


def step(url, path, rate, seconds, timeout, pool):
    if rate <= 0:
        time.sleep(seconds)  # a pause: the load stops
        return []
    n = int(rate * seconds)
    futures = []
    t0 = time.perf_counter() + 0.05
    for i in range(n):
        scheduled = t0 + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        source = "127.0.%d.%d" % (100 + (i // 250) % 50, 1 + i % 250)
        futures.append(pool.submit(one, url, path, timeout, source, scheduled))
    return futures


def summarize(rate, futures, timeout):
    results = [f.result() for f in futures]
    lat = sorted((dt if status == 200 else float("inf")) for status, dt in results)
    answered = [dt for status, dt in results if status == 200]

    def pct(p):
        if not lat:
            return None
        return lat[min(len(lat) - 1, max(0, int(-(-p * len(lat) // 100)) - 1))]

    return {
        "rate": rate,
        "sent": len(results),
        "ok": len(answered),
        "refused_429": sum(1 for s, _ in results if s == 429),
        "unavailable_503": sum(1 for s, _ in results if s == 503),
        "other": sum(1 for s, _ in results if s not in (None, 200, 429, 503)),
        "timeouts": sum(1 for s, dt in results if s is None),
        "p50_ms": pct(50) * 1e3 if pct(50) is not None else None,
        "p95_ms": pct(95) * 1e3 if pct(95) is not None else None,
        "p99_ms": pct(99) * 1e3 if pct(99) is not None else None,
        "answered_mean_ms": statistics.fmean(answered) * 1e3 if answered else None,
    }


def fmt(v):
    if v is None:
        return "-"
    if v == float("inf"):
        return "timeout"
    return "%.0f" % v


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--event", required=True, help="the event id to read")
    ap.add_argument("--rates", default="10,25,50,100,200,50,0,50",
                    help="requests a second, one step each (0: a pause of one step's length)")
    ap.add_argument("--seconds", type=float, default=10.0, help="length of each step")
    ap.add_argument("--timeout", type=float, default=10.0, help="a client gives up after this (s)")
    ap.add_argument("--json")
    args = ap.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    if sum(r * args.seconds for r in rates) > 20000:
        raise SystemExit("bounded: at most 20 000 requests a run")
    path = "/v1/events/%s" % args.event
    # Enough workers for every request in flight (rate x timeout) at the highest rate: a
    # worker short would delay sends and charge the stack for the load generator's queue.
    workers = int(max(rates) * args.timeout * 1.2) + 16
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers)
    pending = []
    for rate in rates:
        futures = step(args.url, path, rate, args.seconds, args.timeout, pool)
        pending.append((rate, futures))
        print("sent %d at %g/s" % (len(futures), rate), file=sys.stderr)
    rows = [summarize(rate, futures, args.timeout) for rate, futures in pending if rate > 0]
    pool.shutdown(wait=True)
    print("| req/s | sent | 200 | 429 | 503 | other | client timeouts | p50 ms | p95 ms | p99 ms |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print("| %g | %d | %d | %d | %d | %d | %d | %s | %s | %s |" % (
            r["rate"], r["sent"], r["ok"], r["refused_429"], r["unavailable_503"], r["other"], r["timeouts"],
            fmt(r["p50_ms"]), fmt(r["p95_ms"]), fmt(r["p99_ms"])))
    for bound in (50, 200):
        ok = [r["rate"] for r in rows if r["p95_ms"] is not None and r["p95_ms"] < bound]
        print("sustained read rate at p95 < %d ms: %s req/s" % (bound, "%g" % max(ok) if ok else "none of the steps"))
    if args.json:
        json.dump({"seconds": args.seconds, "timeout": args.timeout, "steps": rows}, open(args.json, "w"), indent=1)


if __name__ == "__main__":
    threading.stack_size(256 * 1024)
    main()
