#!/usr/bin/env python3
"""Prints an X-Ray trace of the local stack as a waterfall: one line per segment and
subsegment, in tree order, with its start offset, duration, service, operation and outcome.

  make trace ID=1-6b162a1e-0123456789abcdef01234567     # one trace
  make trace                                            # the last traces (summaries)
  make trace FILTER='annotation.user_id = "u-1"'        # a user's traces (X-Ray filter syntax)

The trace id is in every log line of the request (`trace_id`) and in the X-Ray console's URL.
It reads moto's X-Ray API (BatchGetTraces / GetTraceSummaries), which the local stack's X-Ray
daemon stand-in fills, at --endpoint (default: the stack `make dev` started, from
.local/ready.json if present, else http://127.0.0.1:4566). Against AWS, use the same calls
with `aws xray batch-get-traces --trace-ids ...` and the console's trace view.
"""

import argparse
import datetime
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def client(endpoint):
    import boto3

    return boto3.client("xray", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def flatten(doc, parent, out):
    """Segments and their nested subsegments, each with its parent id."""
    own = {k: v for k, v in doc.items() if k != "subsegments"}
    own["_parent"] = doc.get("parent_id") or parent
    own["_segment"] = doc.get("type") != "subsegment" and parent is None
    out.append(own)
    for sub in doc.get("subsegments") or []:
        flatten(sub, doc["id"], out)


def outcome(p):
    flags = [f for f in ("fault", "error", "throttle") if p.get(f)]
    cause = p.get("cause") or {}
    exc = (cause.get("exceptions") or [{}])[0] if isinstance(cause, dict) else {}
    text = "/".join(flags).upper() if flags else "ok"
    if exc.get("type") or exc.get("message"):
        text += " %s: %s" % (exc.get("type", ""), (exc.get("message") or "")[:60])
    return text


def describe(p):
    aws = p.get("aws") or {}
    bits = []
    if aws.get("operation"):
        bits.append(aws["operation"])
    if aws.get("table_name"):
        bits.append("table=%s" % aws["table_name"])
    if aws.get("queue_url"):
        bits.append("queue=%s" % aws["queue_url"].rsplit("/", 1)[-1])
    status = (p.get("http") or {}).get("response", {}).get("status")
    if status:
        bits.append("HTTP %s" % status)
    retries = (p.get("metadata") or {}).get("retries")
    if retries:
        bits.append("retries=%s" % retries)
    ann = p.get("annotations") or {}
    bits.extend("%s=%s" % (k, v) for k, v in sorted(ann.items()) if k != "route")
    return " ".join(bits)


def waterfall(pieces, width=30):
    if not pieces:
        return "no segments"
    t0 = min(p["start_time"] for p in pieces)
    t1 = max(p.get("end_time") or p["start_time"] for p in pieces)
    span = max(t1 - t0, 1e-6)
    ids = {p["id"] for p in pieces}
    children = {}
    for p in pieces:
        children.setdefault(p["_parent"] if p["_parent"] in ids else None, []).append(p)
    lines = ["%9s %9s  %-*s  %s" % ("start ms", "took ms", width, "timeline", "name / what / outcome")]

    def walk(parent, depth):
        for p in sorted(children.get(parent, []), key=lambda q: q["start_time"]):
            start = p["start_time"] - t0
            took = (p.get("end_time") or p["start_time"]) - p["start_time"]
            a = int(start / span * width)
            b = max(a + 1, int((start + took) / span * width))
            bar = " " * a + "#" * (b - a) + " " * (width - b)
            orphan = " (parent %s not in trace)" % p["_parent"] if parent is None and p["_parent"] else ""
            kind = "[%s] " % p.get("origin", "segment") if p["_segment"] else ""
            lines.append("%9.1f %9.1f  %s  %s%s%s  %s  %s%s" % (
                start * 1e3, took * 1e3, bar[:width], "  " * depth, kind, p.get("name"),
                describe(p), outcome(p), orphan))
            walk(p["id"], depth + 1)

    walk(None, 0)
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("trace_id", nargs="?", help="1-xxxxxxxx-xxxxxxxxxxxxxxxxxxxxxxxx (none: list the last traces)")
    ap.add_argument("--endpoint", help="moto server (default: the running `make dev` stack)")
    ap.add_argument("--minutes", type=int, default=15, help="how far back the list looks")
    ap.add_argument("--filter", help='an X-Ray filter expression for the list, e.g. annotation.user_id = "u-1"')
    ap.add_argument("--json", action="store_true", help="print the raw documents")
    args = ap.parse_args()
    endpoint = args.endpoint
    ready = os.path.join(ROOT, ".local", "ready.json")
    if not endpoint and os.path.exists(ready):
        endpoint = json.load(open(ready)).get("aws_endpoint_url")
    endpoint = endpoint or "http://127.0.0.1:4566"
    xray = client(endpoint)
    if not args.trace_id:
        now = datetime.datetime.now(datetime.timezone.utc)
        kwargs = {"FilterExpression": args.filter} if args.filter else {}
        out = xray.get_trace_summaries(StartTime=now - datetime.timedelta(minutes=args.minutes), EndTime=now, **kwargs)
        for s in out.get("TraceSummaries", []):
            ann = {k: [list(v["AnnotationValue"].values())[0] for v in vs] for k, vs in (s.get("Annotations") or {}).items()}
            print("%s %7.1f ms  %-6s %s %s" % (
                s["Id"], (s.get("ResponseTime") or 0) * 1e3,
                "FAULT" if s.get("HasFault") else "ERROR" if s.get("HasError") else "ok",
                ",".join(x["Name"] for x in s.get("ServiceIds") or []),
                " ".join("%s=%s" % (k, "|".join(map(str, v))) for k, v in sorted(ann.items()) if k != "request_id")))
        print("%d traces in the last %d minutes; `make trace ID=<id>` shows one" % (
            len(out.get("TraceSummaries", [])), args.minutes))
        return 0
    out = xray.batch_get_traces(TraceIds=[args.trace_id])
    pieces = []
    for t in out.get("Traces", []):
        for seg in t.get("Segments", []):
            flatten(json.loads(seg["Document"]), None, pieces)
    if args.json:
        print(json.dumps(pieces, indent=2))
        return 0
    if not pieces:
        print("no trace %s at %s (not sampled, not finished, or not this stack)" % (args.trace_id, endpoint))
        return 1
    print("trace %s: %d segments and subsegments\n" % (args.trace_id, len(pieces)))
    print(waterfall(pieces))
    return 0


if __name__ == "__main__":
    sys.exit(main())
