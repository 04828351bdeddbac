"""Schemathesis hooks for `make test`'s contract run (infra/contract.sh).

Authentication the way a real client does it: one account registered and logged in from its
own loopback address (so the fuzzing of the auth routes from 127.0.0.1 cannot rate-limit it),
its access token renewed with the refresh token before the 5-minute lifetime runs out.
"""

import http.client
import json
import os
import time
import uuid

import schemathesis
import urllib3.util.connection

GATEWAY = os.environ["CONTRACT_GATEWAY"]  # host:port of the local API Gateway
CLIENT_ADDRESS = ("127.0.0.77", 0)
PASSWORD = "contract-Test-passw0rd-!"


def call(method, path, body=None, headers=None, attempts=20):
    """One JSON request from the hook's own address; 429/503 are waited out (Retry-After)."""
    host, port = GATEWAY.rsplit(":", 1)
    for _ in range(attempts):
        conn = http.client.HTTPConnection(host, int(port), timeout=60, source_address=CLIENT_ADDRESS)
        h = {"content-type": "application/json", **(headers or {})}
        conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=h)
        r = conn.getresponse()
        data = r.read()
        conn.close()
        if r.status in (429, 503):
            time.sleep(float(r.getheader("retry-after") or 1))
            continue
        return r.status, json.loads(data or b"null")
    raise RuntimeError(f"{method} {path}: still rate limited or unavailable")


class Session:
    def __init__(self):
        self.refresh_token = None

    def token(self):
        if self.refresh_token:
            status, body = call("POST", "/v1/auth/refresh", {"refresh_token": self.refresh_token})
            if status == 200:
                self.refresh_token = body["refresh_token"]
                return body["access_token"]
        email = f"contract-{uuid.uuid4().hex}@example.com"
        status, body = call(
            "POST",
            "/v1/auth/register",
            {"email": email, "password": PASSWORD, "display_name": "Contract"},
            {"idempotency-key": str(uuid.uuid4())},
        )
        assert status == 201, (status, body)
        status, body = call("POST", "/v1/auth/login", {"email": email, "password": PASSWORD})
        assert status == 200, (status, body)
        self.refresh_token = body["refresh_token"]
        return body["access_token"]


SESSION = Session()

# Every generated request leaves from 127.0.0.88, the stack's rate-limit allowlist
# (infra/test.sh): the run tests the operations, not the limiter.
CONTRACT_ADDRESS = ("127.0.0.88", 0)
_create_connection = urllib3.util.connection.create_connection


def _from_contract_address(address, *args, **kwargs):
    kwargs["source_address"] = CONTRACT_ADDRESS
    return _create_connection(address, *args, **kwargs)


urllib3.util.connection.create_connection = _from_contract_address
urllib3.connection.connection.create_connection = _from_contract_address


# Renewed every 4 minutes: access tokens live 5.
@schemathesis.auth(refresh_interval=240)
class Bearer:
    def get(self, case, ctx):
        return SESSION.token()

    def set(self, case, data, ctx):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"
