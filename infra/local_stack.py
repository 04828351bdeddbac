#!/usr/bin/env python3
"""The local stack: City Events on one machine, with no AWS account and no Docker.

  moto server (DynamoDB, DynamoDB Streams, SQS, Secrets Manager) on loopback
  + the resources template.yaml declares, created from the template itself
  + every function as its real binary, under a local Lambda Runtime API
  + the HTTP API's routes on http://127.0.0.1:3000 as API Gateway (payload v2), with its
    overload behaviour: the template's route throttling (429 {"message":"Too Many Requests"}
    past a route's rate and burst), and a request whose client hung up or that waited past
    the 30 s integration timeout (503) dropped, never handed to a function
  + the event sources: the table's stream and the SQS queues, polled as Lambda does
  + X-Ray as Lambda does it: a trace header per invocation, the function's segment recorded,
    and an X-Ray daemon stand-in (UDP) that forwards the functions' segment documents to
    moto's X-Ray API (PutTraceSegments), so `aws xray batch-get-traces` answers locally.
  + the WebSocket API on ws://127.0.0.1:3001 and its management API (infra/realtime_local.py)
  + an OpenID Connect provider to sign in with (oidc-provider, OpenID Certified; infra/oidc)

Usage: infra/local_stack.py [--port 3000] [--moto-port 4566] [--no-build] [--release] [--ready-file F]
Ctrl-C (or SIGTERM) stops everything. See docs/decisions/0001-local-stack.md for the design.
"""

import argparse
import base64
import collections
import datetime
import faulthandler
import json
import os
import queue
import random
import re
import secrets
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import yaml

from realtime_local import Realtime, routes_of as websocket_routes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REGION = "us-east-1"
ACCOUNT = "123456789012"
STACK = "city-events-local"
MAX_INSTANCES = int(os.environ.get("LOCAL_MAX_INSTANCES", "16"))  # per function, like a reserved concurrency
# socketserver listens with a backlog of 5: a burst of hundreds of connections (the joins test
# opens 500 at once) overflowed it and clients timed out connecting. API Gateway takes them all.
ThreadingHTTPServer.request_queue_size = 1024
QUEUE_WAIT_S = 300  # longest an invocation waits for a free instance
# An HTTP API's integration timeout (30 s, its default and maximum): past it the gateway answers
# 503 and an invocation still waiting for an instance is dropped, never run.
INTEGRATION_TIMEOUT_S = float(os.environ.get("LOCAL_INTEGRATION_TIMEOUT_S", "30"))


def log(msg):
    print("[local-stack] %s" % msg, flush=True)


# --------------------------------------------------------------------------- template


class Tagged:
    """A CloudFormation intrinsic (!Ref, !GetAtt, !Sub, ...) kept for later resolution."""

    def __init__(self, tag, value):
        self.tag, self.value = tag, value


def _cfn_loader():
    class Loader(yaml.SafeLoader):
        pass

    def construct(loader, suffix, node):
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return Tagged(suffix, value)

    Loader.add_multi_constructor("!", construct)
    return Loader


def load_template(path):
    with open(path) as f:
        return yaml.load(f, Loader=_cfn_loader())


class Resolver:
    """Resolves the intrinsics the template uses against what we created in moto."""

    def __init__(self, template):
        self.template = template
        self.refs = {}  # logical id -> Ref value
        self.attrs = {}  # (logical id, attr) -> value
        self.params = {
            k: v.get("Default") for k, v in template.get("Parameters", {}).items()
        }
        self.params.update({"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::StackName": STACK})

    def __call__(self, v):
        if isinstance(v, Tagged):
            t, x = v.tag, v.value
            if t == "Ref":
                return self.ref(x)
            if t == "GetAtt":
                name, attr = x.split(".", 1) if isinstance(x, str) else x
                return self.attrs[(name, attr)]
            if t == "Join":
                sep, items = x
                items = self(items)
                return sep.join(str(i) for i in (items if isinstance(items, list) else [items]))
            if t == "Sub":
                return re.sub(r"\$\{([^}]+)\}", lambda m: str(self._sub(m.group(1))), x)
            raise ValueError("unsupported intrinsic !%s" % t)
        if isinstance(v, list):
            out = []
            for i in v:
                r = self(i)
                out.extend(r) if isinstance(i, Tagged) and i.tag == "Ref" and isinstance(r, list) else out.append(r)
            return out
        if isinstance(v, dict):
            return {k: self(x) for k, x in v.items()}
        return v

    def _sub(self, name):
        return self.attrs[tuple(name.split(".", 1))] if "." in name else self.ref(name)

    def ref(self, name):
        if name in self.params:
            p = self.template.get("Parameters", {}).get(name, {})
            value = self.params[name]
            if p.get("Type") == "CommaDelimitedList" and isinstance(value, str):
                return [s.strip() for s in value.split(",")]
            return value
        return self.refs[name]


# --------------------------------------------------------------------------- moto resources


def aws_client(service, endpoint):
    import boto3
    from botocore.config import Config

    # Short timeouts: a stalled call to moto must not freeze an event-source poller for
    # botocore's default 60 s.
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(connect_timeout=2, read_timeout=10, retries={"max_attempts": 3, "mode": "standard"}),
    )


def create_resources(template, resolver, endpoint, visibility_timeout=None):
    """Creates exactly what template.yaml declares (the kinds moto serves) and fills `resolver`.
    `visibility_timeout` (seconds) replaces the queues' own, so that tests of redelivery and of
    the DLQ do not wait 5 x 180 s."""
    ddb, sqs, sm = (aws_client(s, endpoint) for s in ("dynamodb", "sqs", "secretsmanager"))
    resources = template["Resources"]
    created = []
    for lid, res in resources.items():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::DynamoDB::Table":
            name = "%s-%s" % (STACK, lid)
            args = dict(
                TableName=name,
                AttributeDefinitions=props["AttributeDefinitions"],
                KeySchema=props["KeySchema"],
                BillingMode=props.get("BillingMode", "PAY_PER_REQUEST"),
            )
            if props.get("GlobalSecondaryIndexes"):
                args["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
            if props.get("StreamSpecification"):
                args["StreamSpecification"] = dict(StreamEnabled=True, **props["StreamSpecification"])
            desc = ddb.create_table(**args)["TableDescription"]
            ttl = props.get("TimeToLiveSpecification")
            if ttl:
                ddb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
            if props.get("PointInTimeRecoverySpecification"):
                ddb.update_continuous_backups(
                    TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
            resolver.refs[lid] = name
            resolver.attrs[(lid, "Arn")] = desc["TableArn"]
            resolver.attrs[(lid, "StreamArn")] = desc.get("LatestStreamArn")
            created.append("table %s" % name)
    # Queues: a queue whose redrive target is not created yet waits for the next pass.
    pending = {lid: r for lid, r in resources.items() if r["Type"] == "AWS::SQS::Queue"}
    while pending:
        progressed = False
        for lid, res in list(pending.items()):
            props = res.get("Properties", {})
            try:
                attrs = {}
                for key in ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds", "DeduplicationScope",
                            "FifoThroughputLimit"):
                    if key in props:
                        attrs[key] = str(props[key])
                if visibility_timeout is not None and "VisibilityTimeout" in attrs:
                    attrs["VisibilityTimeout"] = str(visibility_timeout)
                if props.get("FifoQueue"):
                    attrs["FifoQueue"] = "true"
                    attrs["ContentBasedDeduplication"] = str(bool(props.get("ContentBasedDeduplication"))).lower()
                if "RedrivePolicy" in props:
                    attrs["RedrivePolicy"] = json.dumps(resolver(props["RedrivePolicy"]))
            except KeyError:
                continue
            name = "%s-%s%s" % (STACK, lid, ".fifo" if props.get("FifoQueue") else "")
            url = sqs.create_queue(QueueName=name, Attributes=attrs)["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            resolver.refs[lid] = url
            resolver.attrs[(lid, "Arn")] = arn
            resolver.attrs[(lid, "QueueName")] = name
            resolver.attrs[(lid, "QueueUrl")] = url
            created.append("queue %s" % name)
            del pending[lid]
            progressed = True
        if not progressed:
            raise SystemExit("queues with unresolvable redrive targets: %s" % ", ".join(pending))
    for lid, res in resources.items():
        if res["Type"] == "AWS::SecretsManager::Secret":
            name = "%s-%s" % (STACK, lid)
            props = res.get("Properties", {})
            if "GenerateSecretString" in props:
                arn, what = sm.create_secret(Name=name, SecretString=secrets.token_hex(32))["ARN"], "fresh random value"
            elif "SecretString" in props:
                arn, what = sm.create_secret(Name=name, SecretString=resolver(props["SecretString"]))["ARN"], "the template's value"
            else:
                # As in AWS: no value until its rotation schedule's first rotation writes one.
                arn, what = sm.create_secret(Name=name)["ARN"], "no value until rotated"
            resolver.refs[lid] = arn
            created.append("secret %s (%s)" % (name, what))
    for lid, res in resources.items():
        if res["Type"] == "AWS::Serverless::HttpApi":
            resolver.refs[lid] = "local"
    return created


# --------------------------------------------------------------------------- OpenID Connect


OIDC_PROVIDER_NAME = "local"
OIDC_CLIENT_ID = "city-events-local"


def start_oidc_provider(redirect_base, log_dir, children):
    """Starts the local OpenID Connect provider (infra/oidc/provider.mjs, with the oidc-provider
    that infra/setup.sh installed into .tools/oidc) with one client whose redirect URI is this
    stack's callback; returns what the functions and tests need, or None without Node."""
    modules = os.path.join(ROOT, ".tools", "oidc")
    if not os.path.isdir(os.path.join(modules, "node_modules", "oidc-provider")) or not shutil_which("node"):
        log("no local OpenID Connect provider (run infra/setup.sh; needs Node.js 20+)")
        return None
    port = free_port()
    secret = secrets.token_urlsafe(32)
    secret_file = os.path.join(log_dir, "..", "oidc-client-secret")
    with open(secret_file, "w") as f:
        f.write(secret)
    os.chmod(secret_file, 0o600)
    redirect = "%s/v1/auth/oidc/%s/callback" % (redirect_base, OIDC_PROVIDER_NAME)
    proc = subprocess.Popen(["node", os.path.join(ROOT, "infra", "oidc", "provider.mjs"), "--port", str(port),
                             "--client-id", OIDC_CLIENT_ID, "--client-secret-file", secret_file,
                             "--redirect-uri", redirect, "--modules", modules],
                            stdout=open(os.path.join(log_dir, "oidc-provider.log"), "ab"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    children.append(proc)
    issuer = "http://127.0.0.1:%d" % port
    if not wait_http(issuer + "/.well-known/openid-configuration", 30):
        raise SystemExit("the OpenID Connect provider did not start (see %s/oidc-provider.log)" % log_dir)
    return {"name": OIDC_PROVIDER_NAME, "issuer": issuer, "client_id": OIDC_CLIENT_ID, "client_secret": secret,
            "redirect_base": redirect_base}


def shutil_which(cmd):
    import shutil
    return shutil.which(cmd)


# --------------------------------------------------------------------------- functions


class Invocation:
    def __init__(self, payload, trace_header, timeout_s):
        self.id = str(uuid.uuid4())
        self.payload = payload
        self.trace = trace_header
        self.timeout_s = timeout_s
        self.deadline_ms = None  # set when an instance takes it: the timeout runs from there
        self.picked = threading.Event()
        self.done = threading.Event()
        self.result = None  # ("response"|"error"|"dropped", bytes)
        self.instance = None
        self.abandoned = False  # its caller stopped waiting before an instance took it
        self.lock = threading.Lock()  # abandoning it and taking it exclude each other


class Function:
    """One Lambda function: its binary, its environment and a pool of instances, each a real
    process with its own Runtime API endpoint, handling one invocation at a time. Instances
    start on demand (a cold start) when every running one is busy, up to MAX_INSTANCES."""

    def __init__(self, lid, binary, env, timeout_s, log_dir, echo):
        self.lid, self.binary, self.env, self.timeout_s = lid, binary, env, timeout_s
        self.queue = collections.deque()  # invocations waiting for an instance
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)  # an invocation queued, or an instance gone
        self.instances = []
        self.waiting = 0  # instances blocked in /next right now (free for the next invocation)
        self.log_path = os.path.join(log_dir, "%s.log" % lid)
        self.echo = echo

    def invoke(self, payload, trace_header=None, gone=None):
        """Runs one invocation; returns ("response"|"error", body bytes), or ("dropped", b"")
        when `gone()` (the caller left, or waited past its timeout) turned true before an
        instance took it: such an invocation never runs. `trace_header` is the caller's (an
        HTTP request's X-Amzn-Trace-Id); without one a new trace starts."""
        trace = LambdaTrace(self, trace_header)
        inv = Invocation(payload, trace.header(), self.timeout_s)
        result = self._run(inv, gone)
        if result[0] != "dropped":
            trace.finish(inv.id, result[0])
        return result

    def _run(self, inv, gone=None):
        with self.lock:
            alive = [i for i in self.instances if i.proc.poll() is None]
            # A free instance for each invocation already queued and this one, else a cold start
            # (counted from the instances actually waiting: no estimate that can drift).
            starting = sum(1 for i in alive if not i.ready)
            if self.waiting + starting <= len(self.queue) and len(alive) < MAX_INSTANCES:
                alive.append(Instance(self))
            self.instances = alive
            self.queue.append(inv)
            self.cond.notify()
        # Waiting for a free instance is not execution time (Lambda would start another one):
        # the function's timeout counts from the moment an instance takes the invocation.
        give_up = time.monotonic() + QUEUE_WAIT_S
        while not inv.picked.wait(0.05):
            if (gone is not None and gone()) or time.monotonic() > give_up:
                with inv.lock:  # against an instance taking it right now
                    if not inv.picked.is_set():
                        inv.abandoned = True
                        return ("dropped", b"")
                break
        ends = time.monotonic() + self.timeout_s + 1
        while not inv.done.wait(0.05):
            if time.monotonic() > ends:
                # Lambda kills a timed-out instance; its invocation fails.
                if inv.instance is not None:
                    inv.instance.kill()
                return ("error", json.dumps({"errorType": "Sandbox.Timedout",
                                             "errorMessage": "Task timed out after %s seconds" % self.timeout_s}).encode())
            if gone is not None and gone():
                # It runs to its end (a running Lambda is not stopped); nobody reads the answer.
                return ("dropped", b"")
        return inv.result

    def stop(self):
        for i in self.instances:
            i.kill()


class Instance:
    """One process of a function and the Runtime API endpoint it polls."""

    def __init__(self, fn):
        self.fn = fn
        self.current = None
        self.ready = False  # it has asked for an invocation once (its cold start is over)
        self.dead = False
        self.counted = False  # counted in fn.waiting (free for the next invocation)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), runtime_api(fn, self))
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        env = dict(fn.env)
        env.update({
            "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:%d" % self.server.server_address[1],
            "AWS_LAMBDA_FUNCTION_NAME": fn.lid,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/" + fn.lid,
            "AWS_LAMBDA_LOG_STREAM_NAME": "local/" + secrets.token_hex(8),
        })
        self.proc = subprocess.Popen([fn.binary], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        with open(self.fn.log_path, "ab") as out:
            for line in iter(self.proc.stdout.readline, b""):
                out.write(line)
                out.flush()
                if self.fn.echo:
                    sys.stdout.write("%-30s| %s" % (self.fn.lid, line.decode("utf-8", "replace")))
                    sys.stdout.flush()
        self.proc.wait()
        with self.fn.cond:
            self.dead = True  # it no longer counts as a free instance
            if self.counted:
                self.fn.waiting -= 1
                self.counted = False
            self.fn.cond.notify_all()
        # A dead instance takes its invocation with it, as in Lambda.
        inv = self.current
        if inv is not None and not inv.done.is_set():
            inv.result = ("error", json.dumps({"errorType": "Runtime.ExitError",
                                               "errorMessage": "instance exited with %s" % self.proc.returncode}).encode())
            inv.done.set()
        self.server.shutdown()

    def kill(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass


def runtime_api(fn, instance):
    class RuntimeApi(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def _body(self):
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                data = b""
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return data
                    data += self.rfile.read(size)
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _send(self, status, body=b"", headers=()):
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for k, v in headers:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path.split("?")[0] != "/2018-06-01/runtime/invocation/next":
                return self._send(404, b'{"errorMessage":"unknown path"}')
            instance.current = None
            instance.ready = True
            inv = None
            with fn.cond:
                if not instance.counted:  # (counted already when it posted its last answer)
                    fn.waiting += 1
                    instance.counted = True
                try:
                    while inv is None and not instance.dead:
                        if not fn.queue:
                            fn.cond.wait()
                            continue
                        candidate = fn.queue.popleft()
                        with candidate.lock:
                            # Its caller gave up while it waited (left, or past the integration
                            # timeout): API Gateway never hands such a request to Lambda.
                            if not candidate.abandoned:
                                candidate.picked.set()  # taken: it runs, whatever its caller does
                                inv = candidate
                finally:
                    if instance.counted:
                        fn.waiting -= 1
                        instance.counted = False
            if inv is None:
                try:
                    self._send(500, b'{"errorMessage":"the instance is gone"}')
                except OSError:
                    pass  # its process is gone with it
                return None
            inv.instance = instance
            instance.current = inv
            inv.deadline_ms = int(time.time() * 1000 + inv.timeout_s * 1000)
            self._send(200, inv.payload, [
                ("Lambda-Runtime-Aws-Request-Id", inv.id),
                ("Lambda-Runtime-Deadline-Ms", str(inv.deadline_ms)),
                ("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:%s:%s:function:%s" % (REGION, ACCOUNT, fn.lid)),
                ("Lambda-Runtime-Trace-Id", inv.trace),
            ])

        def do_POST(self):
            body = self._body()
            path = self.path.split("?")[0]
            prefix = "/2018-06-01/runtime/invocation/"
            if path == "/2018-06-01/runtime/init/error":
                sys.stderr.write("[local-stack] %s failed to start: %s\n" % (fn.lid, body.decode("utf-8", "replace")))
                return self._send(202, b'{"status":"OK"}')
            if path.startswith(prefix):
                rid, _, kind = path[len(prefix):].partition("/")
                inv = instance.current
                if inv is None or inv.id != rid or inv.done.is_set():
                    return self._send(400, b'{"errorMessage":"unknown or finished request id"}')
                inv.result = ("response" if kind == "response" else "error", body)
                with fn.cond:
                    # Free from now on (the runtime asks for the next invocation right after
                    # this answer): the next caller takes it rather than a cold start, as in
                    # Lambda.
                    if not instance.counted:
                        fn.waiting += 1
                        instance.counted = True
                inv.done.set()
                return self._send(202, b'{"status":"OK"}')
            self._send(404, b'{"errorMessage":"unknown path"}')

    return RuntimeApi


# --------------------------------------------------------------------------- HTTP API


def route_matcher(path):
    """Compiles an HttpApi path (`/v1/events/{id}`, `/files/{proxy+}`) to a regex."""
    parts = []
    for seg in path.strip("/").split("/"):
        m = re.fullmatch(r"\{(\w+)\+\}", seg)
        if m:
            parts.append("(?P<%s>.+)" % m.group(1))
            continue
        m = re.fullmatch(r"\{(\w+)\}", seg)
        parts.append("(?P<%s>[^/]+)" % m.group(1) if m else re.escape(seg))
    return re.compile("^/" + "/".join(parts) + "$")


def text_content(content_type):
    ct = (content_type or "").lower()
    return ct.startswith("text/") or any(t in ct for t in ("json", "xml", "javascript", "x-www-form-urlencoded"))


# --------------------------------------------------------------------------- X-Ray

# Lambda's default sampling rule: the first request of each second, then 5 % of the rest, per
# function. LOCAL_XRAY_SAMPLING=1 samples every new trace (`make dev` does), 0 none.
XRAY_SAMPLING = os.environ.get("LOCAL_XRAY_SAMPLING", "default")
if XRAY_SAMPLING != "default":
    try:
        XRAY_SAMPLING = min(1.0, max(0.0, float(XRAY_SAMPLING)))
    except ValueError:
        raise SystemExit("LOCAL_XRAY_SAMPLING must be a share between 0 and 1, got %r" % XRAY_SAMPLING)


class DefaultRule:
    """X-Ray's default rule (reservoir 1/s, then a fixed rate of 5 %), per function."""

    def __init__(self):
        self.lock = threading.Lock()
        self.second = {}

    def sample(self, fn):
        if XRAY_SAMPLING != "default":
            return random.random() < XRAY_SAMPLING
        now = int(time.time())
        with self.lock:
            if self.second.get(fn) != now:
                self.second[fn] = now
                return True
        return random.random() < 0.05


SAMPLING = DefaultRule()


def parse_trace_header(header):
    """`Root=1-...;Parent=...;Sampled=1` -> dict (the keys present)."""
    out = {}
    for part in (header or "").split(";"):
        k, _, v = part.strip().partition("=")
        if k:
            out[k] = v
    return out if re.fullmatch(r"1-[0-9a-f]{8}-[0-9a-f]{24}", out.get("Root", "")) else {}


class XrayDaemon:
    """A stand-in for the X-Ray daemon: receives segment documents over UDP on loopback (the
    daemon's format: a `{"format": "json", "version": 1}` line, then the document), batches
    them (up to 50, or what arrived within 100 ms) and sends them to moto with
    PutTraceSegments, as the daemon does to X-Ray. Documents X-Ray refuses are logged."""

    def __init__(self, endpoint, stop, log_path):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.client = aws_client("xray", endpoint)
        self.docs = queue.Queue()
        self.stop = stop
        self.log_path = log_path
        self.received = 0
        self.refused = 0
        threading.Thread(target=self._receive, daemon=True).start()
        threading.Thread(target=self._send, daemon=True).start()

    def _note(self, msg):
        with open(self.log_path, "a") as f:
            f.write("%s %s\n" % (datetime.datetime.now(datetime.timezone.utc).isoformat(), msg))

    def _receive(self):
        while not self.stop.is_set():
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            header, _, doc = data.partition(b"\n")
            try:
                head = json.loads(header)
                if not isinstance(head, dict) or head.get("format") != "json":
                    raise ValueError("not a json segment header")
                text = doc.decode()
                json.loads(text)
            except (ValueError, UnicodeDecodeError) as e:
                # What the daemon does too: drop it, keep serving.
                self._note("dropped a malformed datagram (%s): %r" % (e, data[:200]))
                continue
            self.received += 1
            self.docs.put(text)

    def put(self, doc):
        """A document of the local Lambda service itself (the function's segment)."""
        self.docs.put(json.dumps(doc))

    def _send(self):
        while not self.stop.is_set():
            try:
                batch = [self.docs.get(timeout=0.2)]
            except queue.Empty:
                continue
            deadline = time.time() + 0.1
            while len(batch) < 50 and time.time() < deadline:
                try:
                    batch.append(self.docs.get(timeout=max(0.0, deadline - time.time())))
                except queue.Empty:
                    break
            try:
                out = self.client.put_trace_segments(TraceSegmentDocuments=batch)
            except Exception as e:  # moto down: the daemon drops what it cannot send, as X-Ray's does
                self._note("PutTraceSegments failed, %d documents dropped: %s" % (len(batch), e))
                continue
            for bad in out.get("UnprocessedTraceSegments") or []:
                self.refused += 1
                self._note("X-Ray refused segment %s: %s %s" % (bad.get("Id"), bad.get("ErrorCode"), bad.get("Message")))


XRAY = None  # the stack's daemon stand-in, once started


class LambdaTrace:
    """What the Lambda service does for one invocation with active tracing: continue the
    caller's trace (or start one, sampled by X-Ray's default rule), give the function a header whose
    Parent is the function's segment, and record that segment when the invocation ends."""

    def __init__(self, fn, upstream):
        up = parse_trace_header(upstream)
        self.fn = fn
        self.root = up.get("Root") or "1-%08x-%s" % (int(time.time()), secrets.token_hex(12))
        parent = up.get("Parent") or ""
        self.parent = parent if re.fullmatch(r"[0-9a-f]{16}", parent) else None
        if up.get("Sampled") in ("0", "1"):
            self.sampled = up["Sampled"] == "1"
        else:
            self.sampled = SAMPLING.sample(fn.lid)
        self.id = secrets.token_hex(8)
        self.start = time.time()

    def header(self):
        return "Root=%s;Parent=%s;Sampled=%d" % (self.root, self.id, 1 if self.sampled else 0)

    def finish(self, request_id, kind):
        if not self.sampled or XRAY is None:
            return
        doc = {"name": self.fn.lid, "id": self.id, "trace_id": self.root, "start_time": self.start,
               "end_time": time.time(), "origin": "AWS::Lambda::Function",
               "aws": {"request_id": request_id,
                       "function_arn": "arn:aws:lambda:%s:%s:function:%s" % (REGION, ACCOUNT, self.fn.lid)}}
        if self.parent:
            doc["parent_id"] = self.parent
        if kind != "response":
            doc["fault"] = True
        XRAY.put(doc)


def rotate_keys(fn, secret_arn):
    """What Secrets Manager does on a rotation: the four steps, one invocation each."""
    token = str(uuid.uuid4())
    for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
        kind, out = fn.invoke(json.dumps({"SecretId": secret_arn, "ClientRequestToken": token, "Step": step}).encode())
        if kind != "response":
            return 500, {"step": step, "error": out.decode("utf-8", "replace")}
    return 200, {"rotated": True, "version": token}


class TokenBucket:
    """API Gateway's throttling of one route: a token bucket of `burst` tokens refilled at
    `rate` a second; a request takes one or is answered 429."""

    def __init__(self, rate, burst):
        self.rate, self.burst = float(rate), float(burst)
        self.tokens = self.burst
        self.at = time.monotonic()
        self.lock = threading.Lock()

    def take(self):
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
            self.at = now
            if self.tokens >= 1:
                self.tokens -= 1
                return True
            return False


def route_throttles(template):
    """route key (or "$default") -> TokenBucket, from the HttpApi's DefaultRouteSettings and
    RouteSettings; LOCAL_THROTTLING=off turns them off (a load test of the functions alone)."""
    if os.environ.get("LOCAL_THROTTLING", "on") == "off":
        return {}, None
    api = next((r.get("Properties", {}) for r in template["Resources"].values()
                if r["Type"] == "AWS::Serverless::HttpApi"), {})

    def bucket(settings):
        rate, burst = settings.get("ThrottlingRateLimit"), settings.get("ThrottlingBurstLimit")
        return TokenBucket(rate, burst) if rate is not None and burst is not None else None

    default = api.get("DefaultRouteSettings", {})
    per_route = {}
    for key, settings in (api.get("RouteSettings") or {}).items():
        per_route[key] = bucket(dict(default, **settings))
    return per_route, default


def client_gone(sock):
    """Whether the client closed its side of `sock` (readable with nothing to read)."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        return sock.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


def make_gateway(routes, default_route, controls=None, throttles=None):
    """routes: list of (method, path, regex, Function); controls: local-only POST endpoints
    under /_local/ (not part of the API; they do what an operator or AWS would); throttles: the
    template's route throttling (route_throttles)."""
    controls = controls or {}
    per_route, default_settings = throttles or ({}, None)
    buckets_lock = threading.Lock()

    def bucket_of(route_key):
        # Each route has its own bucket: RouteSettings, or a copy of DefaultRouteSettings.
        with buckets_lock:
            if route_key not in per_route:
                rate = (default_settings or {}).get("ThrottlingRateLimit")
                burst = (default_settings or {}).get("ThrottlingBurstLimit")
                per_route[route_key] = TokenBucket(rate, burst) if rate is not None and burst is not None else None
            return per_route[route_key]

    # Most specific first, as API Gateway: more literal segments, then no greedy variable, then
    # a route of the request's own method before ANY on the same path.
    def specificity(r):
        segs = r[1].strip("/").split("/")
        return (
            -sum(1 for s in segs if not s.startswith("{")),
            any(s.endswith("+}") for s in segs),
            -len(segs),
            r[0] == "ANY",
        )

    ordered = sorted(routes, key=specificity)

    class Gateway(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def handle_any(self):
            started = time.time()
            url = urllib.parse.urlsplit(self.path)
            path = urllib.parse.unquote(url.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            method = self.command
            if method == "POST" and path in controls:
                status, result = controls[path]()
                return self._reply(status, {"content-type": "application/json"}, json.dumps(result).encode(), [])
            route, params = None, None
            for m, p, rx, fn in ordered:
                if m not in ("ANY", method):
                    continue
                match = rx.match(path)
                if match:
                    route, params = (m, p, fn), match.groupdict()
                    break
            if route is None and default_route is not None:
                route, params = ("ANY", "$default", default_route), None
            if route is None:
                return self._reply(404, {"content-type": "application/json"}, b'{"message":"Not Found"}', [])
            m, p, fn = route
            route_key = "$default" if p == "$default" else "%s %s" % (m, p)
            request_id = base64.b32encode(secrets.token_bytes(10)).decode().rstrip("=")[:16]
            bucket = bucket_of(route_key) if (per_route or default_settings) else None
            if bucket is not None and not bucket.take():
                # API Gateway's own answer past a route's rate and burst (not the function's).
                return self._reply(429, {"content-type": "application/json", "apigw-requestid": request_id},
                                   b'{"message":"Too Many Requests"}', [])
            headers, cookies = {}, []
            for k, v in self.headers.items():
                k = k.lower()
                if k == "cookie":
                    cookies.extend(c.strip() for c in v.split(";") if c.strip())
                    continue
                headers[k] = headers[k] + "," + v if k in headers else v
            # An HTTP API records no X-Ray segment of its own (only REST APIs do): it passes the
            # client's X-Amzn-Trace-Id on, or a new root, and Lambda continues it.
            trace = headers.get("x-amzn-trace-id")
            if not parse_trace_header(trace):
                trace = "Root=1-%08x-%s" % (int(time.time()), secrets.token_hex(12))
            headers["x-amzn-trace-id"] = trace
            headers.setdefault("x-forwarded-for", self.client_address[0])
            headers.setdefault("x-forwarded-proto", "http")
            headers.setdefault("x-forwarded-port", str(self.server.server_address[1]))
            query = {}
            for k, v in urllib.parse.parse_qsl(url.query, keep_blank_values=True):
                query[k] = query[k] + "," + v if k in query else v
            is_text = text_content(headers.get("content-type"))
            try:
                text_body = body.decode("utf-8") if is_text else None
            except UnicodeDecodeError:
                text_body = None
            event = {
                "version": "2.0",
                "routeKey": route_key,
                "rawPath": url.path,
                "rawQueryString": url.query,
                "headers": headers,
                "requestContext": {
                    "accountId": ACCOUNT,
                    "apiId": "local",
                    "domainName": headers.get("host", "127.0.0.1"),
                    "domainPrefix": headers.get("host", "127.0.0.1").split(".")[0],
                    "http": {
                        "method": method,
                        "path": url.path,
                        "protocol": self.request_version,
                        "sourceIp": self.client_address[0],
                        "userAgent": headers.get("user-agent", ""),
                    },
                    "requestId": request_id,
                    "routeKey": route_key,
                    "stage": "$default",
                    "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
                    "timeEpoch": int(started * 1000),
                },
                "isBase64Encoded": bool(body) and text_body is None,
            }
            if cookies:
                event["cookies"] = cookies
            if query:
                event["queryStringParameters"] = query
            if params:
                event["pathParameters"] = params
            if body:
                event["body"] = text_body if text_body is not None else base64.b64encode(body).decode()
            timed_out = []

            def gone():
                # The client hung up, or the integration timeout passed: stop waiting, and
                # never run the invocation if no instance has taken it yet.
                if time.time() - started > INTEGRATION_TIMEOUT_S:
                    timed_out.append(True)
                    return True
                return client_gone(self.connection)

            kind, out = fn.invoke(json.dumps(event).encode(), trace, gone)
            base = {"apigw-requestid": request_id}
            if kind == "dropped":
                if timed_out:
                    return self._reply(503, dict(base, **{"content-type": "application/json"}),
                                       b'{"message":"Service Unavailable"}', [])
                self.close_connection = True
                return None
            if kind != "response":
                sys.stderr.write("[local-stack] %s failed: %s\n" % (fn.lid, out[:500].decode("utf-8", "replace")))
                return self._reply(500, dict(base, **{"content-type": "application/json"}),
                                   b'{"message":"Internal Server Error"}', [])
            try:
                resp = json.loads(out)
                status = int(resp.get("statusCode", 200))
                hdrs = {k.lower(): v for k, v in (resp.get("headers") or {}).items()}
                for k, vs in (resp.get("multiValueHeaders") or {}).items():
                    hdrs[k.lower()] = ", ".join(vs)
                payload = resp.get("body") or ""
                payload = base64.b64decode(payload) if resp.get("isBase64Encoded") else payload.encode()
                return self._reply(status, dict(base, **hdrs), payload, resp.get("cookies") or [])
            except (ValueError, AttributeError):
                return self._reply(500, dict(base, **{"content-type": "application/json"}),
                                   b'{"message":"Internal Server Error"}', [])

        def _reply(self, status, headers, body, cookies):
            self.send_response(status)
            for k, v in headers.items():
                if k not in ("content-length", "connection", "transfer-encoding"):
                    self.send_header(k, v)
            for c in cookies:
                self.send_header("set-cookie", c)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = handle_any

        def __getattr__(self, name):
            # Any other method (TRACE, QUERY, ...): API Gateway hands a method no route takes
            # to $default, as it does an unknown path.
            if name.startswith("do_"):
                return self.handle_any
            raise AttributeError(name)

    return Gateway


# --------------------------------------------------------------------------- event sources


def matches_filter(pattern, record):
    """The subset of Lambda event filtering the template uses: exact values and prefixes."""
    for key, want in pattern.items():
        have = record.get(key) if isinstance(record, dict) else None
        if isinstance(want, dict):
            if not isinstance(have, dict) or not matches_filter(want, have):
                return False
            continue
        ok = False
        for w in want:
            if isinstance(w, dict) and "prefix" in w:
                ok = ok or (isinstance(have, str) and have.startswith(w["prefix"]))
            else:
                ok = ok or have == w
        if not ok:
            return False
    return True


def _jsonable(v):
    if isinstance(v, datetime.datetime):
        return int(v.timestamp())
    if isinstance(v, (bytes, bytearray)):
        return base64.b64encode(v).decode()
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_jsonable(x) for x in v]
    return v


def poll_stream(fn, props, resolver, endpoint, stop):
    """DynamoDB stream -> function, with partial batch failures, retries and the on-failure
    destination, per shard, in order."""
    streams = aws_client("dynamodbstreams", endpoint)
    sqs = aws_client("sqs", endpoint)
    arn = resolver(props["Stream"])
    batch_size = int(props.get("BatchSize", 100))
    max_retries = int(props.get("MaximumRetryAttempts", -1))
    patterns = [json.loads(f["Pattern"]) for f in props.get("FilterCriteria", {}).get("Filters", [])]
    on_failure = props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
    on_failure_url = None
    if on_failure is not None:
        failure_arn = resolver(on_failure)
        on_failure_url = next(v for (lid, a), v in resolver.attrs.items() if a == "QueueUrl"
                              and resolver.attrs.get((lid, "Arn")) == failure_arn)
    iterators = {}
    pending = {}  # shard -> records not yet delivered
    last_seq = {}  # shard -> sequence number of the last record read

    def reopen(sid):
        if sid in last_seq:
            return streams.get_shard_iterator(StreamArn=arn, ShardId=sid, ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                                              SequenceNumber=last_seq[sid])["ShardIterator"]
        return streams.get_shard_iterator(StreamArn=arn, ShardId=sid, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]

    while not stop.is_set():
        for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"].get("Shards", []):
            sid = shard["ShardId"]
            if sid not in iterators:
                iterators[sid] = reopen(sid)
                pending[sid] = []
        idle = True
        for sid in list(iterators):
            if len(pending[sid]) < batch_size and iterators[sid]:
                out = streams.get_records(ShardIterator=iterators[sid], Limit=batch_size)
                iterators[sid] = out.get("NextShardIterator")
                if not out.get("Records"):
                    # moto restores a deep copy of its tables when a transaction is cancelled, and
                    # an iterator keeps reading the replaced shard: re-open after the last record.
                    iterators[sid] = reopen(sid)
                for r in out.get("Records", []):
                    last_seq[sid] = r["dynamodb"]["SequenceNumber"]
                    r = _jsonable(r)
                    r["eventSourceARN"] = arn
                    if not patterns or any(matches_filter(p, r) for p in patterns):
                        pending[sid].append(r)
            attempts = 0
            while pending[sid] and not stop.is_set():
                idle = False
                batch = pending[sid][:batch_size]
                kind, out = fn.invoke(json.dumps({"Records": batch}).encode())
                failed_from = None
                if kind == "response":
                    failures = (json.loads(out or b"{}") or {}).get("batchItemFailures") or []
                    seqs = [f.get("itemIdentifier") for f in failures]
                    if seqs:
                        idx = [i for i, r in enumerate(batch) if r["dynamodb"]["SequenceNumber"] in seqs]
                        failed_from = min(idx) if idx else 0
                else:
                    failed_from = 0
                if failed_from is None:
                    pending[sid] = pending[sid][len(batch):]
                    attempts = 0
                    continue
                # Checkpoint before the first failed record and retry from it.
                pending[sid] = pending[sid][failed_from:]
                attempts += 1
                if 0 <= max_retries < attempts:
                    dropped = pending[sid][: len(batch) - failed_from]
                    if on_failure_url:
                        sqs.send_message(QueueUrl=on_failure_url, MessageBody=json.dumps({
                            "requestContext": {"condition": "RetryAttemptsExhausted", "functionArn": fn.lid},
                            "DDBStreamBatchInfo": {"streamArn": arn, "shardId": sid,
                                                   "startSequenceNumber": dropped[0]["dynamodb"]["SequenceNumber"],
                                                   "endSequenceNumber": dropped[-1]["dynamodb"]["SequenceNumber"],
                                                   "batchSize": len(dropped)}}))
                    pending[sid] = pending[sid][len(dropped):]
                    attempts = 0
                else:
                    time.sleep(min(0.2 * attempts, 2))
        if idle:
            stop.wait(0.2)


def poll_queue(fn, props, resolver, endpoint, stop):
    """SQS -> function, as Lambda's SQS event source: long polling, partial batch failures
    (only the failed messages return after their visibility timeout), the queue's own redrive
    to its DLQ."""
    sqs = aws_client("sqs", endpoint)
    arn = resolver(props["Queue"])
    url = next(v for (lid, a), v in resolver.attrs.items()
               if a == "QueueUrl" and resolver.attrs.get((lid, "Arn")) == arn)
    batch_size = int(props.get("BatchSize", 10))
    partial = "ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or [])
    while not stop.is_set():
        out = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=min(batch_size, 10), WaitTimeSeconds=1,
                                  AttributeNames=["All"], MessageAttributeNames=["All"])
        msgs = out.get("Messages", [])
        if not msgs:
            continue
        records = []
        for m in msgs:
            attrs = {}
            for k, v in (m.get("MessageAttributes") or {}).items():
                attrs[k] = {"stringValue": v.get("StringValue"), "binaryValue": None,
                            "stringListValues": [], "binaryListValues": [], "dataType": v.get("DataType")}
                if v.get("BinaryValue") is not None:
                    attrs[k]["binaryValue"] = base64.b64encode(v["BinaryValue"]).decode()
            records.append({
                "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m.get("Body", ""),
                "attributes": m.get("Attributes", {}), "messageAttributes": attrs,
                "md5OfBody": m.get("MD5OfBody"), "eventSource": "aws:sqs", "eventSourceARN": arn,
                "awsRegion": REGION,
            })
        trace = None
        kind, body = fn.invoke(json.dumps({"Records": records}).encode(), trace)
        if kind != "response":
            continue  # every message returns after its visibility timeout
        failed = set()
        if partial:
            try:
                failed = {f.get("itemIdentifier") for f in (json.loads(body or b"{}") or {}).get("batchItemFailures") or []}
            except ValueError:
                continue
        done = [r for r in records if r["messageId"] not in failed]
        if done:
            sqs.delete_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(done)])


# --------------------------------------------------------------------------- main


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, timeout_s):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            time.sleep(0.1)
    return False


def main():
    # `kill -USR1 <pid>` prints every thread's stack (to diagnose a stuck poller).
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=3000, help="the HTTP API (0: any free port)")
    ap.add_argument("--moto-port", type=int, default=4566, help="moto server (0: any free port)")
    ap.add_argument("--realtime-port", type=int, default=3001, help="the WebSocket API (0: any free port)")
    ap.add_argument("--template", default=os.path.join(ROOT, "template.yaml"))
    ap.add_argument("--no-build", action="store_true", help="use the binaries already built")
    ap.add_argument("--release", action="store_true",
                    help="run release builds (target/release, what sam build ships) instead of debug ones: "
                         "for measurements (make dev RELEASE=1, make load-read)")
    ap.add_argument("--state-dir", default=os.path.join(ROOT, ".local"))
    ap.add_argument("--ready-file", help="write the stack's addresses here as JSON once it serves")
    ap.add_argument("--quiet", action="store_true", help="do not echo function logs to the console")
    ap.add_argument("--exit-with-parent", action="store_true", help="stop when the parent process exits")
    ap.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                    help="override a function environment variable (repeatable)")
    ap.add_argument("--queue-visibility-timeout", type=int, metavar="SECONDS",
                    help="replace the queues' visibility timeout (tests of redelivery use a few seconds)")
    ap.add_argument("--attach", metavar="READY_FILE",
                    help="a second gateway: use the moto server and resources of the stack that wrote "
                         "READY_FILE (no resources, admin or event sources of its own)")
    ap.add_argument("--txn-hold-ms", type=float, default=float(os.environ.get("MOTO_TXN_HOLD_MS", "10")),
                    help="how long a committed DynamoDB transaction holds its items, so that overlapping "
                         "ones conflict as in DynamoDB (0: never)")
    ap.add_argument("--faults", metavar="PLAN.json",
                    help="a fault plan for moto server (throttling, 500s, latency, outages; see "
                         "infra/moto_server.py); change it at run time with POST <moto>/_faults")
    args = ap.parse_args()

    parent = os.getppid()
    stop = threading.Event()
    children = []

    def shutdown(*_):
        stop.set()

    signal.signal(signal.SIGINT, shutdown)
    signal.signal(signal.SIGTERM, shutdown)

    template = load_template(args.template)
    functions = {lid: r for lid, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}
    binaries = sorted({r["Metadata"]["BuildProperties"]["Binary"] for r in functions.values()} | {"create_admin"})
    if not args.no_build:
        log("building %d functions (cargo build --bins; the first build takes a few minutes)" % len(binaries))
        cmd = ["cargo", "build", "--workspace"] + (["--release"] if args.release else []) + \
            [a for b in binaries for a in ("--bin", b)]
        if subprocess.call(cmd, cwd=ROOT) != 0:
            raise SystemExit("build failed")
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    profile = "release" if args.release else "debug"
    missing = [b for b in binaries if not os.path.exists(os.path.join(target, profile, b))]
    if missing:
        raise SystemExit("missing binaries (build first): %s" % ", ".join(missing))

    os.makedirs(os.path.join(args.state_dir, "logs"), exist_ok=True)
    log_dir = os.path.join(args.state_dir, "logs")
    attached = json.load(open(args.attach)) if args.attach else None
    moto = None
    if attached:
        endpoint = attached["aws_endpoint_url"]
    else:
        moto_port = args.moto_port or free_port()
        endpoint = "http://127.0.0.1:%d" % moto_port
        # moto with DynamoDB requests serialised, as DynamoDB applies each atomically.
        moto = subprocess.Popen([sys.executable, os.path.join(ROOT, "infra", "moto_server.py"),
                                 "-H", "127.0.0.1", "-p", str(moto_port), "--txn-hold-ms", str(args.txn_hold_ms)]
                                + (["--faults", args.faults] if args.faults else []),
                                stdout=open(os.path.join(log_dir, "moto.log"), "ab"), stderr=subprocess.STDOUT,
                                start_new_session=True)
        children.append(moto)
    try:
        resolver = Resolver(template)
        if attached:
            resolver.refs.update(attached["resources"]["refs"])
            resolver.attrs.update({tuple(k.split("|", 1)): v for k, v in attached["resources"]["attrs"].items()})
            log("attached to moto server %s and the resources of %s" % (endpoint, args.attach))
        else:
            if not wait_http(endpoint + "/moto-api/", 30):
                raise SystemExit("moto server did not start on %s (see %s/moto.log)" % (endpoint, log_dir))
            log("moto server on %s (transactions hold their items %g ms; faults: %s)"
                % (endpoint, args.txn_hold_ms, args.faults or "none"))
            log("faults at run time: curl -X POST %s/_faults -d '{\"seed\":1,\"rules\":[{\"service\":\"dynamodb\",\"throttle\":0.05}]}'"
                "  (off: -d '{}'; counts: curl %s/_faults)" % (endpoint, endpoint))
            for line in create_resources(template, resolver, endpoint, args.queue_visibility_timeout):
                log("created %s" % line)

        port = args.port if args.port else free_port()
        # Sign in with OpenID Connect: the local provider (the first stack's), its client secret
        # where the template keeps it, and this gateway's callback as the redirect.
        oidc = attached.get("oidc") if attached else start_oidc_provider("http://127.0.0.1:%d" % port, log_dir, children)
        if oidc and not attached and "OidcClientSecrets" in resolver.refs:
            aws_client("secretsmanager", endpoint).put_secret_value(
                SecretId=resolver.refs["OidcClientSecrets"], SecretString=json.dumps({oidc["name"]: oidc["client_secret"]}))
            log("OpenID Connect provider %s (client %s; sign in as any account name: docs/decisions/0015-oidc.md)"
                % (oidc["issuer"], oidc["client_id"]))
        # The WebSocket API's management endpoint, where the consumer's pushes go: this stack's,
        # or (a second gateway) the first one's, which holds the connections.
        resolver.refs.setdefault("RealtimeApi", "local")
        resolver.refs.setdefault("RealtimeStage", "local")
        realtime, management = None, attached and attached.get("realtime_management_url")
        if not attached:
            realtime = Realtime({}, log)
            management_server, management = realtime.start_management()

        global XRAY
        XRAY = XrayDaemon(endpoint, stop, os.path.join(log_dir, "xray-daemon.log"))
        log("X-Ray daemon stand-in on udp://%s -> %s (PutTraceSegments; sampling: %s)"
            % (XRAY.address, endpoint, "1/s + 5 % per function (LOCAL_XRAY_SAMPLING=1: all)"
               if XRAY_SAMPLING == "default" else XRAY_SAMPLING))
        globals_ = template.get("Globals", {}).get("Function", {})
        base_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_EC2_METADATA_DISABLED": "true",
            "TZ": ":UTC",
            "AWS_XRAY_DAEMON_ADDRESS": XRAY.address,
            # Spans go to the log too (LOG_SPANS), so a function's log shows its calls locally.
            "LOG_SPANS": "true",
        }
        if os.environ.get("LOG_LEVEL"):
            base_env["LOG_LEVEL"] = os.environ["LOG_LEVEL"]
        fns, routes, default_route, sources = {}, [], None, []
        for lid, res in functions.items():
            props = res.get("Properties", {})
            env = dict(resolver(globals_.get("Environment", {}).get("Variables", {})))
            env.update(resolver(props.get("Environment", {}).get("Variables", {})))
            env = {k: str(v) for k, v in env.items()}
            for k, v in base_env.items():
                env.setdefault(k, v) if k == "LOG_LEVEL" else env.__setitem__(k, v)
            if os.environ.get("LOG_LEVEL"):
                env["LOG_LEVEL"] = os.environ["LOG_LEVEL"]
            if "REALTIME_ENDPOINT" in env and management:
                env["REALTIME_ENDPOINT"] = management
            if "OIDC_PROVIDERS" in env:
                env["OIDC_PROVIDERS"] = json.dumps([{k: oidc[k] for k in ("name", "issuer", "client_id")}] if oidc else [])
                if oidc:
                    env["OIDC_REDIRECT_BASE"] = oidc["redirect_base"]
                    # The local provider is plain http on loopback (never allowed in AWS).
                    env["OIDC_ALLOW_LOOPBACK_HTTP"] = "true"
            for kv in args.env:
                k, _, v = kv.partition("=")
                env[k] = v
            binary = os.path.join(target, profile, res["Metadata"]["BuildProperties"]["Binary"])
            timeout_s = int(props.get("Timeout", globals_.get("Timeout", 3)))
            fn = Function(lid, binary, env, timeout_s, log_dir, echo=not args.quiet)
            fns[lid] = fn
            for ev in (props.get("Events") or {}).values():
                p = ev.get("Properties", {})
                if ev["Type"] == "HttpApi":
                    if p["Path"] == "$default":
                        default_route = fn
                    else:
                        routes.append((p["Method"].upper(), p["Path"], route_matcher(p["Path"]), fn))
                elif attached:
                    continue  # the first stack polls the event sources
                elif ev["Type"] == "DynamoDB":
                    sources.append(threading.Thread(target=poll_stream, args=(fn, p, resolver, endpoint, stop), daemon=True))
                elif ev["Type"] == "SQS":
                    sources.append(threading.Thread(target=poll_queue, args=(fn, p, resolver, endpoint, stop), daemon=True))
        for t in sources:
            t.start()
        ws_server, ws_url = None, None
        if realtime is not None:
            _, ws_routes = websocket_routes(template)
            realtime.routes = {key: fns[lid] for key, lid in ws_routes.items() if lid in fns}
            if realtime.routes:
                ws_server, ws_port = realtime.start(args.realtime_port)
                ws_url = "ws://127.0.0.1:%d" % ws_port

        # The first admin, with fresh credentials: there is no default account anywhere.
        admin_env = dict(next(iter(fns.values())).env) if fns else {}
        admin = attached and subprocess.CompletedProcess([], 0, stdout=json.dumps(attached["admin"]), stderr="")
        admin = admin or subprocess.run([os.path.join(target, profile, "create_admin"), "--email", "admin@city-events.local",
                                "--name", "Local Admin"], env=admin_env, capture_output=True, text=True)
        if admin.returncode != 0:
            raise SystemExit("creating the local admin failed: %s" % admin.stderr.strip())
        admin_info = json.loads(admin.stdout.strip().splitlines()[-1])
        if not attached:
            log("admin account: %s / %s (generated now; see docs/runbook.md)" % (admin_info["email"], admin_info["password"]))

        rotation = next((fns[lid] for lid, r in functions.items()
                         if r["Metadata"]["BuildProperties"]["Binary"] == "rotate_keys"), None)
        # The secret a rotation schedule rotates with that function. A schedule with
        # RotateImmediatelyOnUpdate rotates at deployment: here, when the stack starts.
        schedule = next((r["Properties"] for r in template["Resources"].values()
                         if r["Type"] == "AWS::SecretsManager::RotationSchedule"), None)
        secret_arn = schedule and resolver(schedule["SecretId"])
        if rotation and secret_arn and not attached and schedule.get("RotateImmediatelyOnUpdate"):
            status, out = rotate_keys(rotation, secret_arn)
            if status != 200:
                raise SystemExit("the first key rotation failed: %s" % out)
            log("rotated %s (as at deployment): version %s" % (secret_arn, out["version"]))
        controls = {"/_local/rotate-keys": lambda: rotate_keys(rotation, secret_arn)} if rotation else {}
        server = ThreadingHTTPServer(("127.0.0.1", port),
                                     make_gateway(routes, default_route, controls, route_throttles(template)))
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = "http://127.0.0.1:%d" % port
        for m, p, _, fn in sorted(routes, key=lambda r: r[1]):
            log("route %-7s %-40s -> %s" % (m, p, fn.lid))
        if default_route:
            log("route %-7s %-40s -> %s" % ("ANY", "$default", default_route.lid))
        log("%d event sources polling (stream relay, queue consumers)" % len(sources))
        if ws_url:
            for key, fn in sorted(realtime.routes.items()):
                log("websocket %-12s -> %s" % (key, fn.lid))
            log("serving the WebSocket API on %s (management API %s)" % (ws_url, management))
        info = {"url": url, "aws_endpoint_url": endpoint, "region": REGION, "log_dir": log_dir, "admin": admin_info,
                "xray_daemon": XRAY.address,
                "realtime_url": ws_url, "realtime_management_url": management,
                "oidc": oidc,
                "resources": {"refs": resolver.refs, "attrs": {"%s|%s" % k: v for k, v in resolver.attrs.items()}},
                # Every function's variables (the signers' SIGNING_KEYS_SECRET_ID too): tests
                # and `cargo lambda watch` run any function with it.
                # (TABLE_WARM_UP is one function's own choice, not everyone's: left out.)
                "env": {k: v for fn in fns.values() for k, v in fn.env.items()
                        if k.isupper() and k not in ("PATH", "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_LOG_STREAM_NAME",
                                                     "TABLE_WARM_UP")},
                # Each function's own variables, by binary (make bench runs each with its own).
                "functions": {os.path.basename(fn.binary): {k: v for k, v in fn.env.items() if k != "PATH"}
                              for fn in fns.values()}}
        # The same environment, for running one function on its own with `cargo lambda watch`.
        with open(os.path.join(args.state_dir, "function.env"), "w") as f:
            for k, v in sorted(info["env"].items()):
                f.write("%s=%s\n" % (k, v))
        if args.ready_file:
            tmp = args.ready_file + ".tmp"
            with open(tmp, "w") as f:
                json.dump(info, f)
            os.replace(tmp, args.ready_file)
        log("serving the HTTP API on %s (Ctrl-C stops everything)" % url)
        while not stop.wait(0.5):
            if args.exit_with_parent and os.getppid() != parent:
                break
            if moto is not None and moto.poll() is not None and not stop.is_set():
                log("moto server exited (%s)" % moto.returncode)
        log("stopping")
        server.shutdown()
        if ws_server is not None:
            ws_server.shutdown()
            management_server.shutdown()
        for fn in fns.values():
            fn.stop()
    finally:
        for c in children:
            if c.poll() is None:
                try:
                    os.killpg(c.pid, signal.SIGTERM)
                except OSError:
                    pass


if __name__ == "__main__":
    main()
