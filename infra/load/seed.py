#!/usr/bin/env python3
"""Seeds a local stack for the load tests: an organizer (granted by the stack's admin) and
events in a few cities, their words what the searches ask for. Prints the seed as JSON.

Usage: seed.py --stack READY_FILE [--events 40] > seed.json. Loopback only."""

import argparse
import http.client
import json
import random
import socket
import urllib.parse
import uuid

CITIES = ["load north", "load south", "load east", "load west"]
CATEGORIES = ["music", "sports", "arts", "food", "tech"]
WORDS = ["jazz", "river", "market", "robot", "night", "garden", "marathon", "poetry", "street", "cinema"]
PASSWORD = "violet tram sings at dusk"


class Client:
    """HTTP/1.1 to the local gateway from one loopback source address (the API's per-address
    budgets are per source, as behind API Gateway)."""

    def __init__(self, url, source):
        u = urllib.parse.urlparse(url)
        assert u.hostname == "127.0.0.1", "load tests run against the local stack only"
        self.host, self.port, self.source = u.hostname, u.port, source

    def call(self, method, path, body=None, token=None, headers=None):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60, source_address=(self.source, 0))
        h = {"content-type": "application/json"}
        if token:
            h["authorization"] = "Bearer " + token
        h.update(headers or {})
        conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=h)
        r = conn.getresponse()
        data = r.read()
        conn.close()
        return r.status, (json.loads(data) if data else None)


def iso(days, hours=0):
    import datetime
    t = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0) + datetime.timedelta(days=days, hours=hours)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stack", required=True)
    ap.add_argument("--events", type=int, default=40)
    args = ap.parse_args()
    stack = json.load(open(args.stack))
    api = Client(stack["url"], "127.0.39.1")
    admin = stack["admin"]
    status, body = api.call("POST", "/v1/auth/login", {"email": admin["email"], "password": admin["password"]})
    assert status == 200, (status, body)
    admin_token = body["access_token"]
    email = "load-organizer-%s@example.test" % uuid.uuid4().hex[:12]
    status, body = api.call("POST", "/v1/auth/register", {"email": email, "password": PASSWORD, "display_name": "Load"})
    assert status == 201, (status, body)
    status, body = api.call("PUT", "/v1/admin/users/%s/roles" % body["id"], {"roles": ["organizer"]}, admin_token)
    assert status == 200, (status, body)
    status, body = api.call("POST", "/v1/auth/login", {"email": email, "password": PASSWORD})
    assert status == 200, (status, body)
    token = body["access_token"]
    rnd = random.Random(20261207)
    events = []
    for i in range(args.events):
        words = rnd.sample(WORDS, 3)
        body = {
            "title": "%s %s %d" % (words[0].title(), words[1], i),
            "description": "An evening of %s and %s in the city, number %d of the load test's events." % tuple(words[1:] + [i]),
            "city": CITIES[i % len(CITIES)], "category": CATEGORIES[i % len(CATEGORIES)], "venue": "Hall %d" % (i % 7),
            "tags": words[:2], "starts_at": iso(3 + i % 20, i % 5), "ends_at": iso(3 + i % 20, 3 + i % 5),
            "capacity": 20 + (i % 4) * 10,
        }
        status, out = api.call("POST", "/v1/events", body, token, {"idempotency-key": str(uuid.uuid4())})
        assert status == 201, (status, out)
        events.append(out["id"])
    print(json.dumps({"url": stack["url"], "cities": CITIES, "words": WORDS, "events": events,
                      "password": PASSWORD}))


if __name__ == "__main__":
    main()
