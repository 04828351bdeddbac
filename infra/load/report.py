#!/usr/bin/env python3
"""The load test's report (issue 19): PNG plots and a markdown summary from Locust's CSVs and
the local stack's own logs.

Usage: report.py --csv PREFIX --logs STACK_LOG_DIR --profile NAME --out DIR [--stress FILE]
                 [--since UNIX] [--build release|debug] [--bytes FILE]

Plots: latency percentiles over time, throughput, error rate, per-route p50/p95/p99. Summary:
per route the client's percentiles, and where the time went — the function (its access
lines' duration_ms), DynamoDB in moto (the SDK spans of the same requests), the gateway and
the client (the rest) — and the reads' p95 against the budget (200 ms).
"""

import argparse
import csv
import glob
import json
import os
import statistics

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

BUDGET_MS = 200.0
READS = ("GET /v1/events (list)", "GET /v1/events (search)", "GET /v1/events/{id}")
# A Locust name -> the API Gateway route its requests take.
ROUTES = {
    "GET /v1/events (list)": "GET /v1/events",
    "GET /v1/events (search)": "GET /v1/events",
    "GET /v1/events/{id}": "GET /v1/events/{id}",
    "POST /v1/events/{id}/join": "POST /v1/events/{id}/join",
    "DELETE /v1/events/{id}/join": "DELETE /v1/events/{id}/join",
    "POST /v1/auth/refresh": "POST /v1/auth/refresh",
    "POST /v1/auth/login": "POST /v1/auth/login",
    "POST /v1/auth/register": "POST /v1/auth/register",
    "GET /v1/me": "GET /v1/me",
}


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def pct(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100.0 * len(values)))]


def stack_times(log_dir, since):
    """Per route: the functions' durations, and per request the DynamoDB time (its spans)."""
    by_trace = {}
    ops = {}  # trace -> {"DynamoDB.GetItem": n, ..., "transact_items": n}
    access = []
    # Spans and access lines are matched within one function's log: the outbox relay and the
    # consumer carry the join's trace id on, and their calls are not the join's.
    for path in glob.glob(os.path.join(log_dir, "*.log")):
        with open(path, errors="replace") as f:
            for line in f:
                if not line.startswith("{"):
                    continue
                try:
                    l = json.loads(line)
                except ValueError:
                    continue
                if l.get("type") == "span":
                    # Spans reach the log for sampled requests only (X-Ray's rule locally too).
                    name = str(l.get("name", ""))
                    ms = float(l.get("duration_ms") or 0) if name.startswith("DynamoDB.") else 0.0
                    key = (path, l.get("trace_id"))
                    by_trace[key] = by_trace.get(key, 0.0) + ms
                    calls = ops.setdefault(key, {})
                    if name.startswith(("DynamoDB.", "SQS.")):
                        calls[name] = calls.get(name, 0) + 1
                        items = (l.get("attributes") or {}).get("metadata.transact_items")
                        if items:
                            calls["transact_items"] = calls.get("transact_items", 0) + int(items)
                elif l.get("message") == "request completed" and l.get("route"):
                    access.append((path, l))
    out = {}
    for path, l in access:
        key = (path, l.get("trace_id"))
        ts = l.get("timestamp", "")
        if since and ts:
            import datetime
            try:
                t = datetime.datetime.fromisoformat(ts.replace("Z", "+00:00")[:26] + "+00:00").timestamp()
            except ValueError:
                t = since
            if t < since:
                continue
        r = out.setdefault(l["route"], {"function": [], "dynamodb": [], "calls": {}, "traced": 0,
                                        "function_name": l.get("function")})
        r["function"].append(float(l.get("duration_ms") or 0))
        if key in by_trace:
            r["dynamodb"].append(by_trace[key])
            r["traced"] += 1
            for k, v in ops.get(key, {}).items():
                r["calls"][k] = r["calls"].get(k, 0) + v
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--csv", required=True, help="Locust's --csv prefix")
    ap.add_argument("--logs", required=True, help="the local stack's log directory")
    ap.add_argument("--profile", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--stress", help="where the stress profile broke (JSON)")
    ap.add_argument("--since", type=float, default=0.0, help="unix time the test started")
    ap.add_argument("--build", default="release")
    ap.add_argument("--bytes", help="response bytes by encoding (JSON, run.sh measures them)")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    stats = rows(args.csv + "_stats.csv")
    all_history = rows(args.csv + "_stats_history.csv")
    history = [r for r in all_history if r["Name"] == "Aggregated"]
    t0 = num(history[0]["Timestamp"]) if history else 0
    t = [num(r["Timestamp"]) - t0 for r in history]
    # The reads' p95 each second: the worst current (last ~10 s) p95 of the read routes.
    reads_at = {}
    for r in all_history:
        if r["Name"] in READS and num(r["Requests/s"]) > 0:
            ts = num(r["Timestamp"]) - t0
            reads_at[ts] = max(reads_at.get(ts, 0.0), num(r["95%"]))

    fig, ax = plt.subplots(figsize=(9, 4))
    for col in ("50%", "95%", "99%"):
        ax.plot(t, [num(r[col]) for r in history], label="p" + col.rstrip("%"))
    ax.plot(sorted(reads_at), [reads_at[k] for k in sorted(reads_at)], color="black", linewidth=0.8,
            linestyle=":", label="reads' p95 (worst read route)")
    ax.axhline(BUDGET_MS, color="red", linestyle="--", linewidth=0.8, label="budget (reads' p95)")
    ax2 = ax.twinx()
    ax2.plot(t, [num(r["User Count"]) for r in history], color="grey", linewidth=0.8, label="users")
    ax2.set_ylabel("users")
    ax.set_xlabel("seconds")
    ax.set_ylabel("ms (all requests, last ~10 s)")
    ax.set_title("%s: latency percentiles over time" % args.profile)
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, "latency.png"), dpi=90)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(9, 3.5))
    ax.plot(t, [num(r["Requests/s"]) for r in history], label="requests/s")
    ax.plot(t, [num(r["Failures/s"]) for r in history], label="failures/s", color="red")
    ax.set_xlabel("seconds")
    ax.set_title("%s: throughput" % args.profile)
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, "throughput.png"), dpi=90)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(9, 3))
    ax.plot(t, [100.0 * num(r["Failures/s"]) / num(r["Requests/s"]) if num(r["Requests/s"]) > 0 else 0.0
                for r in history], color="red")
    ax.set_xlabel("seconds")
    ax.set_ylabel("% of requests")
    ax.set_title("%s: error rate" % args.profile)
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, "errors.png"), dpi=90)
    plt.close(fig)

    routes = [r for r in stats if r["Name"] != "Aggregated"]
    fig, ax = plt.subplots(figsize=(10, 4))
    width = 0.27
    for i, col in enumerate(("50%", "95%", "99%")):
        ax.bar([k + (i - 1) * width for k in range(len(routes))], [num(r[col]) for r in routes], width,
               label="p" + col.rstrip("%"))
    ax.set_xticks(range(len(routes)))
    ax.set_xticklabels([r["Name"].replace(" /v1", "\n/v1") for r in routes], fontsize=7)
    ax.axhline(BUDGET_MS, color="red", linestyle="--", linewidth=0.8)
    ax.set_ylabel("ms")
    ax.set_title("%s: per-route percentiles (whole run)" % args.profile)
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, "routes.png"), dpi=90)
    plt.close(fig)

    times = stack_times(args.logs, args.since)
    total = next(r for r in stats if r["Name"] == "Aggregated")
    seconds = (t[-1] if t else 0) or 1
    lines = [
        "# Load test: %s" % args.profile, "",
        "Locust (headless) against the local stack on 127.0.0.1 (%s builds of the functions, moto as "
        "DynamoDB/SQS, the local gateway), this 2-core machine. Mix: list/search 70 %%, get 15 %%, "
        "join/leave 10 %%, refresh 5 %%, think time 0.5–2 s; each user signs up first." % args.build, "",
        "- Requests: %d in %.0f s (%.1f req/s), failures %d (%.2f %%)" % (
            num(total["Request Count"]), seconds, num(total["Requests/s"]), num(total["Failure Count"]),
            100.0 * num(total["Failure Count"]) / max(1.0, num(total["Request Count"]))),
        "- Peak users: %d" % max([num(r["User Count"]) for r in history] or [0]),
    ]
    reads = [r for r in routes if r["Name"] in READS]
    worst = max([num(r["95%"]) for r in reads] or [float("nan")])
    lines.append("- Reads' p95 (worst read route, whole run): %.0f ms — budget %.0f ms: **%s**" % (
        worst, BUDGET_MS, "met" if worst <= BUDGET_MS else "not met"))
    if args.stress and os.path.exists(args.stress):
        broke = json.load(open(args.stress))
        if broke.get("held"):
            lines.append("- Stress: held the budget up to %d users (%.0f s): %s" % (broke["users"], broke["seconds"], broke["why"]))
        else:
            lines.append("- Stress: broke at %d users after %.0f s (%.1f req/s): %s" % (
                broke["users"], broke["seconds"], broke.get("rps") or 0, broke["why"]))
    if args.bytes and os.path.exists(args.bytes):
        b = json.load(open(args.bytes))
        lines.append("- Response bytes of a list page (20 events): identity %d, gzip %d (%.0f %% saved), br %d (%.0f %% saved)" % (
            b["identity"], b["gzip"], 100 - 100.0 * b["gzip"] / b["identity"], b["br"], 100 - 100.0 * b["br"] / b["identity"]))
    lines += ["", "![latency](latency.png)", "![throughput](throughput.png)", "![errors](errors.png)",
              "![routes](routes.png)", "",
              "## Per route: the client's percentiles, and where the time went (medians)", "",
              "| route | requests | failures | p50 | p95 | p99 | function p50 | DynamoDB (moto) p50 | gateway+client p50 |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in routes:
        st = times.get(ROUTES.get(r["Name"], ""), {"function": [], "dynamodb": []})
        f50, d50 = pct(st["function"], 50), pct(st["dynamodb"], 50)
        lines.append("| %s | %d | %d | %.0f | %.0f | %.0f | %.1f | %.1f | %.1f |" % (
            r["Name"], num(r["Request Count"]), num(r["Failure Count"]), num(r["50%"]), num(r["95%"]),
            num(r["99%"]), f50, d50, num(r["50%"]) - f50))
    lines += ["", "Function p50: the functions' own `duration_ms` (their access lines); DynamoDB: the sum of a "
              "request's DynamoDB spans, the time the function waited on moto; gateway+client: the client's "
              "median less the function's (the local gateway's queueing and the Runtime API hop). DynamoDB is "
              "measured on the sampled requests (their spans reach the log: X-Ray's default rule, 1/s and 5 %), "
              "and sums overlapping calls (a join's parallel reads), so it can pass the function's time. Two "
              "routes share `GET /v1/events` (list and search): their function columns are the route's."]
    # What the cost model (infra/load/cost.py, docs/cost.md) reads: per route, the function,
    # its duration, and its AWS calls per request (from the sampled requests' spans).
    per_route = {}
    for route, st in times.items():
        if not st["function"]:
            continue
        traced = max(1, st["traced"])
        per_route[route] = {
            "function": st["function_name"], "requests": len(st["function"]),
            "duration_ms_mean": statistics.fmean(st["function"]), "duration_ms_p50": pct(st["function"], 50),
            "traced": st["traced"], "calls_per_request": {k: v / traced for k, v in sorted(st["calls"].items())},
        }
    with open(os.path.join(args.out, "costs.json"), "w") as f:
        json.dump({"profile": args.profile, "build": args.build, "routes": per_route}, f, indent=1, sort_keys=True)
    with open(os.path.join(args.out, "summary.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines[:9]))


if __name__ == "__main__":
    main()
