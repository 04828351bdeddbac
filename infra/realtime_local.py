"""The local stack's WebSocket API, as API Gateway serves one (docs/realtime.md).

  + the template's WebSocket API (AWS::ApiGatewayV2::Api, ProtocolType WEBSOCKET) on
    ws://127.0.0.1:3001: its $connect, $default and $disconnect routes invoke their functions
    with API Gateway's WebSocket proxy event; $connect's status decides the handshake (and its
    Sec-WebSocket-Protocol header is the one answered), $default's body is sent back as one
    frame, $disconnect runs when the connection closes (either side)
  + API Gateway's limits: messages up to 128 KB (a larger one closes the connection, 1009),
    10 minutes idle and 2 hours in all (closed, 1001)
  + the management API (`PostToConnection`, `DeleteConnection`, `GetConnection`) on its own
    port, for the functions (REALTIME_ENDPOINT): a connection that is not open answers 410
    GoneException, as API Gateway does; `GET /_local/posts` lists what was posted (tests)

The WebSocket protocol itself is the `websockets` library's (infra/requirements-stack.txt).
"""

import base64
import json
import re
import secrets
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from websockets.sync.server import serve

MAX_MESSAGE_BYTES = 128 * 1024
IDLE_TIMEOUT_S = 600
MAX_LIFETIME_S = 2 * 3600


def routes_of(template):
    """{route key: function logical id} of the template's WebSocket API (first one found)."""
    res = template["Resources"]
    api = next((lid for lid, r in res.items() if r["Type"] == "AWS::ApiGatewayV2::Api"
                and r.get("Properties", {}).get("ProtocolType") == "WEBSOCKET"), None)
    if api is None:
        return None, {}
    integrations = {}
    for lid, r in res.items():
        if r["Type"] == "AWS::ApiGatewayV2::Integration":
            uri = getattr(r["Properties"].get("IntegrationUri"), "value", "")
            m = re.search(r"\$\{(\w+)\.Arn\}", uri)
            integrations[lid] = m.group(1) if m else None
    routes = {}
    for lid, r in res.items():
        if r["Type"] != "AWS::ApiGatewayV2::Route":
            continue
        target = getattr(r["Properties"].get("Target"), "value", "")
        integration = target.split("${", 1)[-1].rstrip("}") if "${" in target else None
        if integrations.get(integration):
            routes[r["Properties"]["RouteKey"]] = integrations[integration]
    return api, routes


def connection_id():
    # API Gateway's look: 12 random bytes, base64 (`L0SM9cOFvHcCIhw=`).
    return base64.b64encode(secrets.token_bytes(12)).decode()


class Realtime:
    def __init__(self, routes, log):
        """routes: {"$connect"|"$default"|"$disconnect": Function}."""
        self.routes = routes
        self.log = log
        self.lock = threading.Lock()
        self.open = {}  # connection id -> (websockets connection, connected_at ms, source ip)
        self.pending = {}  # id(connection) -> (connection id, subprotocol)
        self.posts = []  # (connection id, status, body) of every PostToConnection
        self.stage = "local"

    # ------------------------------------------------------------------ events
    def _event(self, route, cid, connected_at, source_ip, headers=None, body=None):
        now = time.time()
        ctx = {
            "routeKey": route,
            "eventType": {"$connect": "CONNECT", "$disconnect": "DISCONNECT"}.get(route, "MESSAGE"),
            "extendedRequestId": secrets.token_hex(8),
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "messageDirection": "IN",
            "stage": self.stage,
            "connectedAt": connected_at,
            "requestTimeEpoch": int(now * 1000),
            "identity": {"sourceIp": source_ip},
            "requestId": secrets.token_hex(8),
            "domainName": "127.0.0.1",
            "connectionId": cid,
            "apiId": "local",
        }
        if route == "$default":
            ctx["messageId"] = secrets.token_hex(8)
        event = {"requestContext": ctx, "isBase64Encoded": False}
        if headers is not None:
            event["headers"] = headers
            event["multiValueHeaders"] = {k: [v] for k, v in headers.items()}
        if body is not None:
            event["body"] = body
        return event

    def _invoke(self, route, event):
        fn = self.routes.get(route)
        if fn is None:
            return None
        kind, out = fn.invoke(json.dumps(event).encode())
        if kind != "response":
            sys.stderr.write("[local-stack] %s (%s) failed: %s\n" % (fn.lid, route, out[:300].decode("utf-8", "replace")))
            return {"statusCode": 500, "body": json.dumps({"message": "Internal server error"})}
        try:
            return json.loads(out) or {}
        except ValueError:
            return {"statusCode": 500, "body": json.dumps({"message": "Internal server error"})}

    # ------------------------------------------------------------------ the WebSocket server
    def process_request(self, connection, request):
        headers = {k.lower(): v for k, v in request.headers.raw_items()}
        cid = connection_id()
        connected_at = int(time.time() * 1000)
        ip = connection.remote_address[0] if connection.remote_address else "127.0.0.1"
        out = self._invoke("$connect", self._event("$connect", cid, connected_at, ip, headers=headers))
        if out is None:
            out = {"statusCode": 200}
        status = int(out.get("statusCode") or 200)
        if status != 200:
            body = out.get("body") or ""
            return connection.respond(status, body if body.endswith("\n") else body + "\n")
        answered = {k.lower(): v for k, v in (out.get("headers") or {}).items()}
        with self.lock:
            self.pending[id(connection)] = (cid, connected_at, ip, answered.get("sec-websocket-protocol"))
        return None

    def select_subprotocol(self, connection, offered):
        with self.lock:
            chosen = self.pending.get(id(connection), (None, None, None, None))[3]
        return chosen if chosen in offered else None

    def handler(self, connection):
        with self.lock:
            cid, connected_at, ip, _ = self.pending.pop(id(connection))
            self.open[cid] = (connection, connected_at, ip)
        ends = time.time() + MAX_LIFETIME_S
        try:
            while True:
                try:
                    message = connection.recv(timeout=min(IDLE_TIMEOUT_S, max(0.0, ends - time.time())))
                except TimeoutError:
                    connection.close(1001, "Going away")
                    break
                if isinstance(message, bytes):
                    body = base64.b64encode(message).decode()
                    event = self._event("$default", cid, connected_at, ip, body=body)
                    event["isBase64Encoded"] = True
                else:
                    event = self._event("$default", cid, connected_at, ip, body=message)
                out = self._invoke("$default", event)
                reply = (out or {}).get("body")
                if reply:
                    connection.send(reply)
        except Exception:  # the connection closed (either side, or past its size limit)
            pass
        finally:
            with self.lock:
                self.open.pop(cid, None)
            self._invoke("$disconnect", self._event("$disconnect", cid, connected_at, ip, headers={}))

    def start(self, port):
        server = serve(self.handler, "127.0.0.1", port, process_request=self.process_request,
                       select_subprotocol=self.select_subprotocol, max_size=MAX_MESSAGE_BYTES,
                       compression=None, ping_interval=None)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server, server.socket.getsockname()[1]

    # ------------------------------------------------------------------ the management API
    def management(self):
        realtime = self

        class Management(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _reply(self, status, body=b"", headers=None):
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _connection(self):
                path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
                if "/@connections/" not in path:
                    return None, None
                cid = path.split("/@connections/", 1)[1]
                with realtime.lock:
                    return cid, realtime.open.get(cid)

            def _gone(self):
                self._reply(410, b'{"message":null}', {"content-type": "application/json",
                                                      "x-amzn-errortype": "GoneException"})

            def do_GET(self):
                if self.path == "/_local/posts":
                    with realtime.lock:
                        posts = [{"connection_id": c, "status": s, "body": b} for c, s, b in realtime.posts]
                    return self._reply(200, json.dumps(posts).encode(), {"content-type": "application/json"})
                cid, conn = self._connection()
                if conn is None:
                    return self._gone()
                info = {"connectedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(conn[1] / 1000)),
                        "identity": {"sourceIp": conn[2]},
                        "lastActiveAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
                self._reply(200, json.dumps(info).encode(), {"content-type": "application/json"})

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                cid, conn = self._connection()
                if cid is None:
                    return self._reply(404, b'{"message":"Not Found"}', {"content-type": "application/json"})
                if len(body) > MAX_MESSAGE_BYTES:
                    return self._reply(413, b'{"message":"Request entity too large"}',
                                       {"content-type": "application/json", "x-amzn-errortype": "PayloadTooLargeException"})
                status = 200
                if conn is None:
                    status = 410
                else:
                    try:
                        text = body.decode("utf-8")
                        conn[0].send(text)
                    except UnicodeDecodeError:
                        conn[0].send(body)
                    except Exception:
                        status = 410  # closed between the lookup and the send
                with realtime.lock:
                    realtime.posts.append((cid, status, body.decode("utf-8", "replace")))
                    del realtime.posts[:-5000]
                if status == 410:
                    return self._gone()
                self._reply(200)

            def do_DELETE(self):
                cid, conn = self._connection()
                if conn is None:
                    return self._gone()
                try:
                    conn[0].close(1000, "Closed by the server")
                except Exception:
                    pass
                self._reply(204)

        return Management

    def start_management(self):
        server = ThreadingHTTPServer(("127.0.0.1", 0), self.management())
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server, "http://127.0.0.1:%d/%s" % (server.server_address[1], self.stage)
