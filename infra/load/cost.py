#!/usr/bin/env python3
"""docs/cost.md from a load run's measurements (docs/load/<profile>/costs.json: per route the
function, its duration and its AWS calls per request) and template.yaml (each function's
memory), with the price list below (us-east-1, arm64, on-demand; check the pricing pages
before quoting: they change).

Usage: cost.py [--costs docs/load/load/costs.json] [--out docs/cost.md]
"""

import argparse
import json
import math
import os

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# USD, us-east-1, as published for 2026 (AWS pricing pages); the model's only inputs besides
# the measurements.
PRICES = {
    "lambda_gb_s": 0.0000133334,      # arm64, per GB-second (billed per ms)
    "lambda_request": 0.20 / 1e6,
    "http_api_request": 1.00 / 1e6,   # first 300 M a month; 0.90 after
    "ddb_rru": 0.125 / 1e6,           # on-demand read request unit (4 KB strongly consistent)
    "ddb_wru": 0.625 / 1e6,           # on-demand write request unit (1 KB)
    "sqs_fifo_request": 0.50 / 1e6,
    "sqs_request": 0.40 / 1e6,
    "xray_trace": 5.00 / 1e6,         # recorded
    "logs_gb": 0.50,                  # CloudWatch Logs ingestion
}
# Capacity units per call: the items this API reads and writes are under 1 KB (events ~0.6 KB),
# pages of 20 events ~12 KB. Reads are counted strongly consistent (the worst case; several are
# eventually consistent).
RRU = {"DynamoDB.GetItem": 1, "DynamoDB.Query": 3, "DynamoDB.BatchGetItem": 3, "DynamoDB.Scan": 3,
       "DynamoDB.TransactGetItems": 2}
WRU = {"DynamoDB.PutItem": 1, "DynamoDB.UpdateItem": 1, "DynamoDB.DeleteItem": 1, "DynamoDB.BatchWriteItem": 25}
# The routes of the mix (infra/load/locustfile.py); their shares are the ones measured (the
# requests each function answered during the run; sign-ups, once per user, are left out).
MIX_ROUTES = ("GET /v1/events", "GET /v1/events/{id}", "POST /v1/events/{id}/join",
              "DELETE /v1/events/{id}/join", "POST /v1/auth/refresh", "GET /v1/me")
LOG_BYTES_PER_REQUEST = 1200       # the access line, the EMF metrics line, a span or two
# X-Ray's default rule: the first request each second per function (the reservoir), then 5 %.
RESERVOIR_PER_S = 1.0
SAMPLED = 0.05
# What a join sets off after its answer (decision 0004): the stream invokes the outbox relay
# (batches of up to 100 records: one invocation per join at low traffic, the worst case), which
# sends one FIFO message; the consumer's event source mapping receives and deletes it (2 SQS
# requests) and the consumer writes the recipients' inbox items (one here: the joiner).
ASYNC_PER_JOIN = {"invocations": 2, "lambda_ms": 2 * 15.0, "sqs_fifo": 3, "wru": 1}


def template_memory():
    class Loader(yaml.SafeLoader):
        pass

    def any_tag(loader, suffix, node):
        if isinstance(node, yaml.ScalarNode):
            return loader.construct_scalar(node)
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node)
        return loader.construct_mapping(node)

    Loader.add_multi_constructor("!", any_tag)
    t = yaml.load(open(os.path.join(ROOT, "template.yaml")), Loader=Loader)
    default = int(t["Globals"]["Function"].get("MemorySize", 128))
    out = {}
    for lid, r in t["Resources"].items():
        if r.get("Type") == "AWS::Serverless::Function":
            out[lid] = int(r["Properties"].get("MemorySize", default))
    return out


def per_request(route, m, memory):
    mb = memory.get(m["function"], 128)
    billed_ms = math.ceil(m["duration_ms_mean"])
    calls = m["calls_per_request"]
    rru = sum(RRU.get(k, 0) * v for k, v in calls.items())
    wru = sum(WRU.get(k, 0) * v for k, v in calls.items()) + 2 * calls.get("transact_items", 0)
    sqs = calls.get("SQS.SendMessage", 0)
    c = {
        "lambda": PRICES["lambda_request"] + billed_ms / 1000.0 * mb / 1024.0 * PRICES["lambda_gb_s"],
        "api": PRICES["http_api_request"],
        "dynamodb": rru * PRICES["ddb_rru"] + wru * PRICES["ddb_wru"],
        "sqs": sqs * PRICES["sqs_fifo_request"],
        "xray": SAMPLED * PRICES["xray_trace"],  # the reservoir is a fixed cost (below)
        "logs": LOG_BYTES_PER_REQUEST / 1e9 * PRICES["logs_gb"],
    }
    return c, dict(mb=mb, billed_ms=billed_ms, rru=rru, wru=wru, sqs=sqs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--costs", default=os.path.join(ROOT, "docs/load/load/costs.json"))
    ap.add_argument("--out", default=os.path.join(ROOT, "docs/cost.md"))
    args = ap.parse_args()
    measured = json.load(open(args.costs))
    memory = template_memory()
    rows, mix_cost = [], {k: 0.0 for k in ("lambda", "api", "dynamodb", "sqs", "xray", "logs")}
    missing = [r for r in MIX_ROUTES if r not in measured["routes"]]
    if missing:
        raise SystemExit("the run measured no requests of %s: run a longer profile" % missing)
    counted = sum(measured["routes"][r]["requests"] for r in MIX_ROUTES)
    mix = {r: measured["routes"][r]["requests"] / counted for r in MIX_ROUTES}
    for route, share in mix.items():
        m = measured["routes"][route]
        c, facts = per_request(route, m, memory)
        for k, v in c.items():
            mix_cost[k] += share * v
        rows.append((route, share, m, facts, sum(c.values())))
    join = measured["routes"].get("POST /v1/events/{id}/join")
    join_cost = None
    if join:
        c, facts = per_request("POST /v1/events/{id}/join", join, memory)
        a = ASYNC_PER_JOIN
        async_cost = (a["invocations"] * PRICES["lambda_request"] + a["lambda_ms"] / 1000.0 * 128 / 1024.0 * PRICES["lambda_gb_s"]
                      + a["sqs_fifo"] * PRICES["sqs_fifo_request"] + a["wru"] * PRICES["ddb_wru"])
        join_cost = (sum(c.values()) + async_cost) * 1000
        # What the mix's joins set off belongs to the mix too.
        mix_cost["lambda"] += mix["POST /v1/events/{id}/join"] * (
            a["invocations"] * PRICES["lambda_request"] + a["lambda_ms"] / 1000.0 * 128 / 1024.0 * PRICES["lambda_gb_s"])
        mix_cost["sqs"] += mix["POST /v1/events/{id}/join"] * a["sqs_fifo"] * PRICES["sqs_fifo_request"]
        mix_cost["dynamodb"] += mix["POST /v1/events/{id}/join"] * a["wru"] * PRICES["ddb_wru"]
    per_million = {k: v * 1e6 for k, v in mix_cost.items()}
    total = sum(per_million.values())
    lines = [
        "# Cost model", "",
        "Generated by `infra/load/cost.py` from the `load` profile's measurements (docs/load/load/costs.json: "
        "%s builds on the local stack; per route the function's mean duration and its AWS calls per request, "
        "from the sampled requests' spans) and template.yaml (memory per function), with AWS's us-east-1 "
        "on-demand prices for 2026 (arm64 Lambda, HTTP API, DynamoDB on-demand, SQS FIFO, X-Ray, CloudWatch "
        "Logs: the table in the script). Local durations stand in for Lambda's billed ones (same binaries, a "
        "slower CPU than Graviton and moto instead of DynamoDB: an upper bound)." % measured.get("build", "?"), "",
        "## Per request, by route", "",
        "| route | share of the mix | memory MB | billed ms | RRU | WRU | SQS | USD per 1 M |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for route, share, m, f, usd in sorted(rows, key=lambda r: -r[1]):
        lines.append("| %s | %.0f %% | %d | %d | %.2f | %.2f | %.2f | %.2f |" % (
            route, 100 * share, f["mb"], f["billed_ms"], f["rru"], f["wru"], f["sqs"], usd * 1e6))
    lines += ["", "RRU/WRU: DynamoDB read/write request units per request (reads counted strongly consistent, "
              "a page of 20 events as 3 RRU, a transaction's item as 2 WRU): counted from the calls each "
              "request made, not measured — moto answers ReturnConsumedCapacity with a constant per call, "
              "not by item size. A write's rate-limit counter is one of its UpdateItems. Shares: the "
              "requests each route answered in the run.", "",
              "## 1 M requests of the mix", "", "| part | USD |", "|---|---|"]
    for k, v in per_million.items():
        lines.append("| %s | %.2f |" % (k, v))
    lines.append("| **total** | **%.2f** |" % total)
    if join_cost is not None:
        lines += ["", "## 1 000 joins", "",
                  "%.4f USD: the join request (its function, its transaction with the outbox item, the API "
                  "request) and what it sets off (the outbox relay and the consumer: two invocations, three SQS "
                  "FIFO requests, one inbox write). A hot event's join (decision 0012) costs less DynamoDB "
                  "(0.1 write request per join: 10 joins per transaction)." % join_cost]
    lines += ["", "## At 10× and 100×", "",
              "1× is 10 M requests a month of this mix (a city's platform at ~4 requests/s on average).", "",
              "| scale | requests a month | requests/s (mean) | USD a month (per request) | X-Ray reservoir | fixed | total |",
              "|---|---|---|---|---|---|---|"]
    fixed = 3.0 + 0.10 * 12 + 0.40 * 6   # a dashboard, ~12 alarms, 6 secrets
    functions = len({measured["routes"][r]["function"] for r in MIX_ROUTES}) + 2  # + relay, consumer
    month_s = 30 * 86400
    for scale, n in (("1×", 10e6), ("10×", 100e6), ("100×", 1000e6)):
        api_discount = 0.0
        if n > 300e6:
            api_discount = (n - 300e6) * (PRICES["http_api_request"] - 0.90 / 1e6)
        rate = n / month_s
        # The reservoir traces each function's first request of every second: at most 1/s per
        # function, fewer when the function sees less than that.
        reservoir = sum(min(RESERVOIR_PER_S, rate * mix[r]) for r in MIX_ROUTES) + 2 * min(
            RESERVOIR_PER_S, rate * mix["POST /v1/events/{id}/join"])
        reservoir_usd = reservoir * month_s * PRICES["xray_trace"]
        usage_usd = total * n / 1e6 - api_discount
        lines.append("| %s | %d M | %.1f | %.0f | %.0f | %.0f | %.0f |" % (
            scale, n / 1e6, rate, usage_usd, reservoir_usd, fixed, usage_usd + reservoir_usd + fixed))
    lines.append("")
    lines.append("(%d functions serve the mix and its joins' aftermath; the reservoir is X-Ray's 1 trace per "
                 "second per function, which at low traffic traces most requests.)" % functions)
    lines += ["",
              "Every part is per request: the bill scales linearly (10 M → 1 000 M requests a month is 100×), "
              "with the HTTP API's price falling past 300 M. What changes at 100×: DynamoDB on-demand costs "
              "about 7× provisioned capacity at a steady rate — at 100× (~385 req/s of this mix) provisioned "
              "capacity with auto scaling (and reserved capacity) is the first saving; the API request price "
              "is the largest share of the mix, so caching public reads at a CDN (they answer `Cache-Control: "
              "public, max-age=5`) removes most of it; X-Ray's 5 % sampling is cut to a fixed rate per second.",
              "", "Regenerate: `make load-load` (writes docs/load/load/costs.json), then "
              "`.tools/stack/bin/python infra/load/cost.py`."]
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
