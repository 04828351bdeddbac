#!/usr/bin/env python3
"""The functions `make bench` measures (infra/bench.sh), and what it reports about them.

  bench_suite.py suite --ready READY.json --fixtures FIXTURES.json --root ROOT --out SUITE.json
      Every function of template.yaml (and the two baselines: a bare lambda_runtime hello and a
      bare CRUD function, bench/crud) with the event it is invoked with: an API Gateway v2
      request naming the bench stack's fixtures (tests/tests/bench_fixtures.rs), or the SQS,
      stream or rotation event of an event-source function.
  bench_suite.py report --timing BENCH.json --requests REQUESTS.json --root ROOT
      The goals of issue 16 as ratios of this run (get_event against the baselines), the AWS
      requests per call of every function, and every function's deploy zip (its release binary
      zipped as `bootstrap`, deflated as sam/cargo-lambda do).

Standard library only.
"""
import argparse
import copy
import json
import os
import re
import sys
import zipfile

# Function (binary), how it is invoked. "auth": which fixture token; "expect": the status every
# invocation must answer (None: the first one changes state and its repeats answer otherwise:
# a replay, a 404 after a leave, a 401 after a logout; reported, not required).
HTTP = [
    # name, binary, method, route, path params, query, body, auth, headers, expect
    ("crud", "crud", "GET", "/v1/events/{id}", {"id": "event"}, None, None, None, {}, 200),
    ("healthz", "healthz", "GET", "/healthz", {}, None, None, None, {}, 200),
    ("readyz", "readyz", "GET", "/readyz", {}, None, None, None, {}, 200),
    ("openapi", "openapi", "GET", "/openapi.json", {}, None, None, None, {}, 200),
    ("not_found", "not_found", "GET", "/nowhere", {}, None, None, None, {}, 404),
    ("jwks", "jwks", "GET", "/.well-known/jwks.json", {}, None, None, None, {}, 200),
    ("get_event", "get_event", "GET", "/v1/events/{id}", {"id": "event"}, None, None, None, {}, 200),
    ("get_event-allowlisted", "get_event", "GET", "/v1/events/{id}", {"id": "event"}, None, None, None,
     {"@allowlisted": True}, 200),
    ("list_events", "list_events", "GET", "/v1/events", {}, {"city": "city"}, None, None, {}, 200),
    ("batch_get_events", "batch_get_events", "POST", "/v1/events/batch", {}, None,
     {"ids": ["@event"]}, None, {}, 200),
    ("create_event", "create_event", "POST", "/v1/events", {}, None, "@new_event", "organizer",
     {"idempotency-key": "bench-create"}, 201),
    ("update_event", "update_event", "PATCH", "/v1/events/{id}", {"id": "event_to_change"}, None,
     {"title": "Bench, renamed"}, "organizer", {"if-match": "@event_to_change_etag"}, None),
    ("cancel_event", "cancel_event", "DELETE", "/v1/events/{id}", {"id": "event_to_cancel"}, None, None,
     "organizer", {}, None),
    ("join_event", "join_event", "POST", "/v1/events/{id}/join", {"id": "event"}, None, None, "joiner",
     {"idempotency-key": "bench-join"}, 201),
    ("get_join", "get_join", "GET", "/v1/events/{id}/join", {"id": "event"}, None, None, "attendee", {}, 200),
    ("leave_event", "leave_event", "DELETE", "/v1/events/{id}/join", {"id": "event"}, None, None, "leaver",
     {"idempotency-key": "bench-leave"}, 200),
    ("list_attendees", "list_attendees", "GET", "/v1/events/{id}/attendees", {"id": "event"}, None, None,
     "organizer", {}, 200),
    ("my_joins", "my_joins", "GET", "/v1/me/joins", {}, None, None, "attendee", {}, 200),
    ("list_notifications", "list_notifications", "GET", "/v1/me/notifications", {}, None, None, "attendee",
     {}, 200),
    ("read_notifications", "read_notifications", "POST", "/v1/me/notifications/read", {}, None, {},
     "attendee", {}, None),
    ("me", "me", "GET", "/v1/me", {}, None, None, "me", {}, 200),
    ("logout", "logout", "POST", "/v1/auth/logout", {}, None, None, "logout", {}, None),
    ("register", "register", "POST", "/v1/auth/register", {}, None,
     {"email": "bench-register@example.com", "password": "@password", "display_name": "Bench"}, None,
     {"idempotency-key": "bench-register"}, None),
    ("login", "login", "POST", "/v1/auth/login", {}, None, {"email": "@login_email", "password": "@password"},
     None, {"@warm": 20}, 200),
    ("refresh", "refresh", "POST", "/v1/auth/refresh", {}, None, {"refresh_token": "@refresh_token"}, None,
     {}, None),
    ("mfa_verify", "mfa_verify", "POST", "/v1/auth/mfa/verify", {}, None,
     {"mfa_token": "bench-not-a-challenge", "code": "000000"}, None, {}, None),
    ("totp_enroll", "totp_enroll", "POST", "/v1/me/mfa/totp", {}, None, {"password": "not the password"},
     "me", {"@warm": 20}, None),
    ("totp_activate", "totp_activate", "POST", "/v1/me/mfa/totp/activate", {}, None, {"code": "000000"},
     "me", {}, None),
    ("totp_disable", "totp_disable", "DELETE", "/v1/me/mfa/totp", {}, None,
     {"password": "not the password", "code": "000000"}, "me", {"@warm": 20}, None),
    ("set_roles", "set_roles", "PUT", "/v1/admin/users/{id}/roles", {"id": "me_id"}, None,
     {"roles": ["attendee"]}, "admin", {}, None),
    # Feature flags (issue 19): the admin's read of the flags item, and a set refused for a
    # reason that is blank (what a set costs before its transaction).
    ("get_flags", "get_flags", "GET", "/v1/admin/flags", {}, None, None, "admin", {}, 200),
    ("set_flag", "set_flag", "PUT", "/v1/admin/flags/{name}", {"name": "flag_name"}, None,
     {"enabled": True, "reason": " "}, "admin", {}, 422),
    # Sign in with OpenID Connect (issue 18): a start (the provider's discovery, then one
    # write), and a callback whose state no sign-in has (what a callback costs before the
    # provider: the state's conditional delete).
    ("oidc_start", "oidc_start", "GET", "/v1/auth/oidc/{provider}/start", {"provider": "oidc_provider"}, None,
     None, None, {}, 200),
    ("oidc_callback", "oidc_callback", "GET", "/v1/auth/oidc/{provider}/callback", {"provider": "oidc_provider"},
     {"code": "oidc_code", "state": "oidc_state"}, None, None, {}, 400),
]

# The functions of template.yaml that are not HTTP routes: (name, binary, event file or builder).
SOURCES = [
    ("outbox_relay", "outbox_relay", "dynamodb-stream-outbox-insert.json", None),
    ("notifications_consumer", "notifications_consumer", "sqs-outbox-message.json", None),
    # An empty batch: the writer's init and its per-invocation overhead (a real intake message
    # names a queued join that a replay would only find already admitted).
    ("join_writer", "join_writer", {"Records": []}, None),
    ("rotate_keys", "rotate_keys", "@rotation", None),
    # The WebSocket routes (issue 17): a connect whose token is refused (what a cold connect
    # costs before it registers anything), a ping, a disconnect of an unknown connection.
    ("realtime_connect", "realtime_connect", "websocket-connect.json", None),
    ("realtime_message", "realtime_message", "websocket-message-ping.json", None),
    ("realtime_disconnect", "realtime_disconnect", "websocket-disconnect.json", None),
]

# X-Ray (issue 15): the rows above run as Lambda does with active tracing and an unsampled
# invocation; these are the same binaries with X-Ray off and with a sampled invocation.
XRAY = [
    ("healthz-xray-off", "healthz", "off"),
    ("healthz-sampled", "healthz", "sampled"),
    ("consumer-xray-off", "notifications_consumer", "off"),
    ("consumer-sampled", "notifications_consumer", "sampled"),
]

ALLOWLISTED_IP = "203.0.113.250"


def fixture(fx, v):
    if isinstance(v, str) and v.startswith("@"):
        return fx[v[1:]]
    if isinstance(v, list):
        return [fixture(fx, x) for x in v]
    if isinstance(v, dict):
        return {k: fixture(fx, x) for k, x in v.items()}
    return v


def http_event(root, fx, method, route, params, query, body, auth, headers):
    with open(os.path.join(root, "events", "apigw-get-healthz.json")) as f:
        e = json.load(f)
    path = route
    for k, v in params.items():
        path = path.replace("{%s}" % k, fx[v])
    e["routeKey"] = e["requestContext"]["routeKey"] = "%s %s" % (method, route)
    e["rawPath"] = e["requestContext"]["http"]["path"] = path
    e["requestContext"]["http"]["method"] = method
    if params:
        e["pathParameters"] = {k: fx[v] for k, v in params.items()}
    if query:
        e["queryStringParameters"] = {k: fx[v] for k, v in query.items()}
        e["rawQueryString"] = "&".join("%s=%s" % (k, fx[v]) for k, v in query.items())
    if auth:
        e["headers"]["authorization"] = "Bearer " + fx[auth]
    for k, v in headers.items():
        if not k.startswith("@"):
            e["headers"][k] = fixture(fx, v)
    if headers.get("@allowlisted"):
        e["requestContext"]["http"]["sourceIp"] = ALLOWLISTED_IP
        e["headers"]["x-forwarded-for"] = ALLOWLISTED_IP
    if body is not None:
        if body == "@new_event":
            body = {"title": "Bench event", "description": "Created by make bench", "city": fx["city"],
                    "category": "music", "venue": "The Hall", "tags": [], "starts_at": "2030-01-01T18:00:00Z",
                    "ends_at": "2030-01-01T20:00:00Z", "capacity": 50}
        e["body"] = json.dumps(fixture(fx, body))
        e["headers"]["content-type"] = "application/json"
    return e


def suite(args):
    root = args.root
    env = json.load(open(args.ready))["env"]
    fx = json.load(open(args.fixtures))
    fx.update({"flag_name": "hot_intake", "oidc_provider": "local", "oidc_code": "bench-code", "oidc_state": "bench-state-no-sign-in-has"})
    # The limits below: counted in the table as in production, never reached by the replays.
    base_env = {k: v for k, v in env.items() if k not in ("LOG_SPANS", "TABLE_WARM_UP")}
    functions = json.load(open(args.ready))["functions"]
    limits = dict(RATE_LIMIT_API_PER_MINUTE="1000000", RATE_LIMIT_AUTH_PER_MINUTE="1000000",
                  RATE_LIMIT_ALLOWLIST=ALLOWLISTED_IP)

    def function_env(binary):
        # The function's own variables as the stack runs it (TABLE_WARM_UP, its secrets), as
        # production runs it (no LOG_SPANS), with the limits above.
        out = {k: v for k, v in functions.get(binary, base_env).items() if k != "LOG_SPANS"}
        out.update(limits)
        return out

    subjects = [{"name": "hello", "cmd": [root + "/target/" + args.profile + "/hello"],
                 "event": root + "/events/apigw-get-healthz.json", "cwd": root, "env": dict(base_env)}]
    for name, binary, method, route, params, query, body, auth, headers, expect in HTTP:
        s = {"name": name, "cmd": [root + "/target/" + args.profile + "/" + binary], "cwd": root,
             "event": http_event(root, fx, method, route, params, query, body, auth, headers),
             "env": function_env(binary)}
        if expect:
            s["expect_status"] = expect
        if "@warm" in headers:
            s["warm"] = headers["@warm"]
        subjects.append(s)
    for name, binary, event, expect in SOURCES:
        if event == "@rotation":
            event = {"SecretId": fx["signing_secret"], "ClientRequestToken": fx["signing_version"],
                     "Step": "finishSecret"}
        elif isinstance(event, str):
            event = root + "/events/" + event
        subjects.append({"name": name, "cmd": [root + "/target/" + args.profile + "/" + binary], "cwd": root,
                         "event": event, "env": function_env(binary)})
    by_name = {s["name"]: s for s in subjects}
    for name, of, mode in XRAY:
        s = copy.deepcopy(by_name[of])
        s["name"] = name
        if mode == "off":
            s["env"]["AWS_XRAY_DAEMON_ADDRESS"] = ""
        else:
            s["trace_sampled"] = True
        subjects.append(s)
    if args.only:
        keep = set(args.only.split(","))
        subjects = [s for s in subjects if s["name"] in keep]
    json.dump({"subjects": subjects}, open(args.out, "w"), indent=1)


def zip_size(path):
    import io
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        info = zipfile.ZipInfo("bootstrap")
        info.external_attr = 0o755 << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        with open(path, "rb") as f:
            z.writestr(info, f.read())
    return len(buf.getvalue())


def report(args):
    t = json.load(open(args.timing))["functions"]
    req = json.load(open(args.requests))["functions"] if args.requests else {}

    def get(name, key):
        return t.get(name, {}).get("summary", {}).get(key)

    def cold(name):
        i, f = get(name, "init_ms_median"), get(name, "first_ms_median")
        return None if i is None or f is None else i + f

    print("\n== issue 16: get_event against the baselines (this run)")
    rows = []
    for name in ("hello", "crud", "get_event", "get_event-allowlisted"):
        rows.append((name, get(name, "init_ms_median"), get(name, "first_ms_median"), cold(name),
                     (get(name, "warm_us_p50") or 0) / 1e3, (get(name, "warm_us_p99") or 0) / 1e3,
                     get(name, "max_rss_mib"),
                     req.get(name, {}).get("summary", {}).get("requests_warm_mean")))
    print("| subject | init ms | first ms | cold total ms | warm p50 ms | warm p99 ms | RSS MiB | AWS requests/call |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print("| %s | %s |" % (r[0], " | ".join("-" if v is None else ("%.2f" % v) for v in r[1:])))
    g, c, h = "get_event", "crud", "hello"
    warm_rt = None
    if get(c, "warm_us_p50") is not None:
        warm_rt = get(c, "warm_us_p50") / 1e3  # one GetItem round trip, warm (the baseline's p50)

    def ratio(a, b):
        return "-" if a is None or b in (None, 0) else "%.2f" % (a / b)

    print("\ngoals:")
    print("  cold total get_event / crud          = %s  (goal <= 1.0)" % ratio(cold(g), cold(c)))
    if get(h, "init_ms_median") is not None and warm_rt is not None and get(g, "init_ms_median") is not None:
        bound = 2 * get(h, "init_ms_median") + warm_rt
        print("  init get_event                       = %.2f ms; 2 x hello + one round trip = %.2f ms  (goal <=)"
              % (get(g, "init_ms_median"), bound))
    if get(g, "warm_us_p50") is not None and get(c, "warm_us_p50") is not None:
        print("  warm p50 get_event - crud            = %+.2f ms  (goal <= 0: the same GetItem floor)"
              % ((get(g, "warm_us_p50") - get(c, "warm_us_p50")) / 1e3))
        print("  warm p99 get_event / crud            = %s  (goal <= 2.0)"
              % ratio(get(g, "warm_us_p99"), get(c, "warm_us_p99")))
    n = req.get(g, {}).get("summary", {}).get("requests_warm_mean")
    print("  AWS requests per get_event call      = %s  (goal 1)" % ("-" if n is None else "%.2f" % n))
    print("  max RSS                              = %.1f MiB (%s)  (goal <= 16)" % max(
        (get(name, "max_rss_mib") or 0, name) for name in t))

    print("\n== deploy zips (release binary as bootstrap, deflate -9; this machine's architecture: %s)"
          % os.uname().machine)
    sizes = []
    for name, d in t.items():
        binary = d["cmd"][0]
        if os.path.exists(binary):
            sizes.append((os.path.basename(binary), zip_size(binary) / 1e6, os.path.getsize(binary) / 1e6))
    for b, z, raw in sorted(set(sizes), key=lambda x: -x[1]):
        print("  %-24s zip %5.2f MB  binary %5.2f MB%s" % (b, z, raw, "  OVER 3.0" if z > 3.0 else ""))
    arm = os.path.join(args.root, "target", "lambda")
    if os.path.isdir(arm):
        print("\n  arm64 (cargo lambda build --release --arm64, target/lambda):")
        for b in sorted(os.listdir(arm)):
            p = os.path.join(arm, b, "bootstrap")
            if os.path.exists(p):
                z = zip_size(p) / 1e6
                print("  %-24s zip %5.2f MB%s" % (b, z, "  OVER 3.0" if z > 3.0 else ""))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("suite")
    s.add_argument("--ready", required=True)
    s.add_argument("--fixtures", required=True)
    s.add_argument("--root", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--only", help="comma-separated subject names")
    s.add_argument("--profile", default="release", help="target/<profile>/ (debug: a quick check of the suite)")
    r = sub.add_parser("report")
    r.add_argument("--timing", required=True)
    r.add_argument("--requests")
    r.add_argument("--root", required=True)
    args = ap.parse_args()
    if args.cmd == "suite":
        suite(args)
    else:
        report(args)


if __name__ == "__main__":
    sys.exit(main())
