#!/usr/bin/env python3
"""A tiny client of the realtime WebSocket API (docs/realtime.md): signs in (or takes a token),
connects with the token in Sec-WebSocket-Protocol, resumes from a notification id if given,
pings every 4 minutes and prints every frame as it arrives. Loopback by default; stops after
--seconds (bounded, as every tool here) or Ctrl-C.

  .tools/stack/bin/python infra/tools/ws_listen.py --email me@example.com --password '…'
  make listen EMAIL=me@example.com PASSWORD='…'          (with `make dev` running)
"""

import argparse
import json
import sys
import time
import urllib.request

from websockets.sync.client import connect

PROTOCOL = "city-events.v1"


def login(api, email, password):
    req = urllib.request.Request(api.rstrip("/") + "/v1/auth/login",
                                 data=json.dumps({"email": email, "password": password}).encode(),
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        out = json.load(r)
    if "access_token" not in out:
        sys.exit("login did not return an access token (a second factor? use --token): %s" % out)
    return out["access_token"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="ws://127.0.0.1:3001", help="the WebSocket API")
    ap.add_argument("--api", default="http://127.0.0.1:3000", help="the HTTP API (to sign in)")
    ap.add_argument("--email")
    ap.add_argument("--password")
    ap.add_argument("--token", help="an access token instead of --email/--password")
    ap.add_argument("--resume-from", help="a notification id: first ask for what came after it")
    ap.add_argument("--seconds", type=float, default=600, help="stop after this long")
    args = ap.parse_args()
    token = args.token or (args.email and args.password and login(args.api, args.email, args.password))
    if not token:
        sys.exit("give --token, or --email and --password")
    ends = time.time() + args.seconds
    with connect(args.url, subprotocols=[PROTOCOL, token], open_timeout=10) as ws:
        print("connected to %s (protocol %s)" % (args.url, ws.subprotocol), flush=True)
        if args.resume_from:
            ws.send(json.dumps({"action": "resume", "from": args.resume_from, "id": "resume"}))
        next_ping = time.time() + 240
        while time.time() < ends:
            try:
                frame = ws.recv(timeout=max(0.1, min(next_ping, ends) - time.time()))
            except TimeoutError:
                if time.time() >= next_ping:
                    ws.send(json.dumps({"action": "ping", "id": "keep-alive"}))
                    next_ping = time.time() + 240
                continue
            print(frame, flush=True)


if __name__ == "__main__":
    main()
