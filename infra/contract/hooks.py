"""Schemathesis hooks for `make test`'s contract run (infra/contract.sh).

Authentication the way a real client does it: one organizer account registered and logged in
from its own loopback address, its access token renewed with the refresh token before the
5-minute lifetime runs out.
"""

import http.client
import json
import os
import time
import uuid

import schemathesis
import urllib3.connection
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


def admin_token():
    """The local stack's first admin (stack.json), to make the contract account an organizer."""
    with open(os.environ["CONTRACT_STACK_JSON"]) as f:
        admin = json.load(f)["admin"]
    status, body = call("POST", "/v1/auth/login", {"email": admin["email"], "password": admin["password"]})
    assert status == 200, (status, body)
    return body["access_token"]


class Session:
    """One organizer account: registered, given the organizer role by the admin (before its
    first login: a role change revokes sessions), then logged in; renewed by refresh, or by
    logging in again when a generated logout revoked its session."""

    def __init__(self):
        self.email = None
        self.refresh_token = None

    def login(self):
        status, body = call("POST", "/v1/auth/login", {"email": self.email, "password": PASSWORD})
        assert status == 200, (status, body)
        self.refresh_token = body["refresh_token"]
        return body["access_token"]

    def token(self):
        if self.refresh_token:
            status, body = call("POST", "/v1/auth/refresh", {"refresh_token": self.refresh_token})
            if status == 200:
                self.refresh_token = body["refresh_token"]
                return body["access_token"]
        if self.email:
            return self.login()
        email = f"contract-{uuid.uuid4().hex}@example.com"
        status, body = call(
            "POST",
            "/v1/auth/register",
            {"email": email, "password": PASSWORD, "display_name": "Contract"},
            {"idempotency-key": str(uuid.uuid4())},
        )
        assert status == 201, (status, body)
        status, granted = call(
            "PUT",
            f"/v1/admin/users/{body['id']}/roles",
            {"roles": ["attendee", "organizer"]},
            {"authorization": f"Bearer {admin_token()}"},
        )
        assert status == 200, (status, granted)
        self.email = email
        return self.login()


SESSION = Session()

# Every generated request leaves from 127.0.0.88, the stack's rate-limit allowlist
# (infra/test.sh): the run tests the operations, not the limiter.
CONTRACT_ADDRESS = ("127.0.0.88", 0)
_create_connection = urllib3.util.connection.create_connection


def _from_contract_address(address, *args, **kwargs):
    kwargs["source_address"] = CONTRACT_ADDRESS
    return _create_connection(address, *args, **kwargs)


urllib3.util.connection.create_connection = _from_contract_address


# Renewed every 4 minutes: access tokens live 5.
@schemathesis.auth(refresh_interval=240)
class Bearer:
    def get(self, case, ctx):
        return SESSION.token()

    def set(self, case, data, ctx):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"
