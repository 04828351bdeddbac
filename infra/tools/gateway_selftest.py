#!/usr/bin/env python3
"""The local gateway under overload (issue 16), against a real function process: a small
Runtime API client (this file, run with --function) that answers every invocation after
`SLOW_MS` and appends its request id to a file, so what ran can be counted.

What it shows, through infra/local_stack.py's own Function and gateway classes:
  1. past a route's rate and burst the gateway answers 429 {"message":"Too Many Requests"}
     itself (the function never sees those requests), and takes requests again at once when
     the burst has refilled;
  2. a request whose client hung up while it waited for an instance is never run;
  3. a request that waited past the integration timeout is answered 503 and never run.

Run by infra/test.sh (a few seconds, loopback only). Standard library only, plus local_stack's
imports (the stack's Python).
"""
import http.client
import json
import os
import socket
import sys
import tempfile
import threading
import time
import urllib.request

SLOW_MS = 1000


def function_main(ran_path):
    api = os.environ["AWS_LAMBDA_RUNTIME_API"]
    while True:
        with urllib.request.urlopen("http://%s/2018-06-01/runtime/invocation/next" % api) as r:
            rid = r.headers["Lambda-Runtime-Aws-Request-Id"]
            r.read()
        time.sleep(SLOW_MS / 1000.0)
        with open(ran_path, "a") as f:
            f.write(rid + "\n")
        body = json.dumps({"statusCode": 200, "headers": {"content-type": "application/json"},
                           "body": "{}"}).encode()
        req = urllib.request.Request("http://%s/2018-06-01/runtime/invocation/%s/response" % (api, rid),
                                     data=body, method="POST")
        urllib.request.urlopen(req).read()


def main():
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    import local_stack as ls

    state = tempfile.mkdtemp(prefix="gateway-selftest.")
    ran = os.path.join(state, "ran")
    open(ran, "w").close()
    # One instance: a second request waits for the first (Lambda at its concurrency limit).
    ls.MAX_INSTANCES = 1
    ls.INTEGRATION_TIMEOUT_S = 1.5
    wrapper = os.path.join(state, "function")
    with open(wrapper, "w") as f:
        f.write("#!/bin/sh\nexec %s %s --function %s\n" % (sys.executable, os.path.abspath(__file__), ran))
    os.chmod(wrapper, 0o755)
    fn = ls.Function("SlowFunction", wrapper, {"PATH": os.environ.get("PATH", "")}, 10, state, echo=False)
    routes = [("GET", "/slow", ls.route_matcher("/slow"), fn), ("GET", "/fast", ls.route_matcher("/fast"), fn)]
    throttles = ({"GET /fast": ls.TokenBucket(0.5, 5)}, {"ThrottlingRateLimit": 1000, "ThrottlingBurstLimit": 1000})
    server = ls.ThreadingHTTPServer(("127.0.0.1", 0), ls.make_gateway(routes, None, None, throttles))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]

    def get(path, timeout=10.0):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        try:
            c.request("GET", path)
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def wait_busy():
        # until the instance has taken an invocation (whatever the machine's speed)
        deadline = time.monotonic() + 30
        while not any(i.current is not None and not i.current.done.is_set() for i in fn.instances):
            if time.monotonic() > deadline:
                raise SystemExit("the instance never took the busy request")
            time.sleep(0.01)

    def ran_count():
        with open(ran) as f:
            return sum(1 for _ in f)

    failures = []

    def check(ok, what):
        print(("ok   " if ok else "FAIL ") + what)
        if not ok:
            failures.append(what)

    # Start the instance (its cold start) so later timings are the queue's alone.
    check(get("/slow")[0] == 200, "a request is answered")

    # 1. throttling: burst 5, then 429s from the gateway itself; refilled, taken again.
    before = ran_count()
    answers = [None] * 12

    def hit(i):
        answers[i] = get("/fast", timeout=30)

    threads = [threading.Thread(target=hit, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    throttled = [a for a in answers if a[0] == 429]
    check(len(throttled) >= 5, "past the burst of 5, the gateway answers 429 (%d of 12)" % len(throttled))
    check(all(b == b'{"message":"Too Many Requests"}' for _, b in throttled), "with API Gateway's own body")
    answered = sum(1 for a in answers if a[0] == 200)
    check(ran_count() - before == answered and answered >= 1,
          "a throttled request never reaches the function (%d ran, %d answered 200)"
          % (ran_count() - before, answered))
    time.sleep(2.2)  # 0.5 a second: at least one token back
    check(get("/fast")[0] == 200, "the bucket refilled: taken again at once")

    # 2. a client that hangs up while its request waits for the busy instance: never run.
    busy = threading.Thread(target=get, args=("/slow",))
    busy.start()
    wait_busy()
    before = ran_count()
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.1)
    s.close()
    busy.join()
    time.sleep(SLOW_MS / 1000.0 + 0.3)
    check(ran_count() - before == 1, "a request whose client left while it waited is dropped, not run "
          "(%d ran, the busy one only)" % (ran_count() - before))

    # 3. past the integration timeout: 503, and the waiting invocation never runs.
    ls.INTEGRATION_TIMEOUT_S = 0.3
    busy = threading.Thread(target=get, args=("/slow",))
    busy.start()
    wait_busy()
    before = ran_count()
    status, body = get("/slow")
    busy.join()
    time.sleep(SLOW_MS / 1000.0 + 0.3)
    check(status == 503 and body == b'{"message":"Service Unavailable"}',
          "a request past the integration timeout is answered 503 (%s %s)" % (status, body))
    ls.INTEGRATION_TIMEOUT_S = 30
    check(ran_count() - before == 1, "and never run (%d ran, the busy one only)" % (ran_count() - before))
    check(get("/slow")[0] == 200, "the stack serves at once afterwards")

    fn.stop()
    server.shutdown()
    if failures:
        print("gateway self-test: %d failed" % len(failures))
        return 1
    print("gateway self-test: all passed")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--function":
        function_main(sys.argv[2])
    else:
        sys.exit(main())
