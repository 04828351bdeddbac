#!/usr/bin/env python3
"""The restore drill (docs/runbook.md, "Restore the table"): write data, note the time, damage
it, restore the table to the noted point in time into a new table, verify the data, and switch
the functions to it — against a local stack (moto restores to a point in time as DynamoDB does:
infra/moto_server.py, point_in_time_restores), or, with --endpoint-url left out, the steps an
operator runs in AWS.

Usage: restore_drill.py --stack READY_FILE [--event ID] [--json]   (make restore-drill)

Steps, each timed in the report:
 1. write: 40 drill items (their own partition, DRILL#<run>); read the event --event names;
 2. note T (and wait 1.1 s: a restore is to a second's precision in the stream's records);
 3. damage: delete 20 drill items and the event, overwrite 5, add one that did not exist at T;
 4. restore the table to T into <table>-restored-<run> (RestoreTableToPointInTime), wait ACTIVE;
 5. what a restore does not bring: TTL (its attribute as on the source), point-in-time
    recovery, the stream (NEW_AND_OLD_IMAGES: the outbox relay reads it) — set again;
 6. verify: every drill item as it was at T, the one added after T absent, the event back;
 7. switch: a gateway whose functions have TABLE_NAME = the restored table (locally, a second
    gateway attached to the same moto; in AWS a deploy: docs/runbook.md says what is built)
    answers GET /v1/events/{id} with the event; the damaged table's gateway answers 404.

Bounded: every wait stops by itself (a minute at most each); traffic goes to 127.0.0.1 only.
Prints a report; exits non-zero when a check fails.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid

import boto3

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def wait_for(what, check, timeout_s=60):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise SystemExit("restore drill: timed out waiting for %s" % what)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stack", required=True, help="the local stack's ready file")
    ap.add_argument("--json", action="store_true", help="print the report as one JSON object")
    ap.add_argument("--event", metavar="ID",
                    help="an event of the stack the drill deletes, restores and reads through a switched "
                         "gateway (without one, the switch is not checked)")
    args = ap.parse_args()
    stack = json.load(open(args.stack))
    endpoint = stack["aws_endpoint_url"]
    assert endpoint.startswith("http://127.0.0.1:"), "the drill runs against the local stack only"
    table = stack["resources"]["refs"]["Table"]
    ddb = boto3.client("dynamodb", endpoint_url=endpoint, region_name=stack["region"],
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    run = uuid.uuid4().hex[:12]
    report = {"run": run, "source_table": table, "steps": {}}
    clock = time.monotonic()

    def step(name):
        nonlocal clock
        now = time.monotonic()
        report["steps"][name] = round(now - clock, 3)
        clock = now

    # 1. Data: drill items, and one event of the table (the API's data, not ours).
    def drill_item(i, version):
        return {"pk": {"S": "DRILL#" + run}, "sk": {"S": "ITEM#%03d" % i},
                "version": {"N": str(version)}, "payload": {"S": "x" * (i * 7 % 300)}}
    items = [drill_item(i, 1) for i in range(40)]
    for chunk in range(0, len(items), 25):
        ddb.batch_write_item(RequestItems={table: [{"PutRequest": {"Item": it}} for it in items[chunk:chunk + 25]]})
    event = None
    if args.event:
        event = ddb.get_item(TableName=table, Key={"pk": {"S": "EVENT#" + args.event}, "sk": {"S": "EVENT"}},
                             ConsistentRead=True).get("Item")
        if event is None:
            raise SystemExit("restore drill: no event %s in %s" % (args.event, table))
    step("write")

    # 2. The point in time.
    at = time.time()
    time.sleep(1.1)
    report["restore_to"] = at
    step("note_time")

    # 3. Damage: what a bad script or a bad deploy does.
    for i in range(20):
        ddb.delete_item(TableName=table, Key={"pk": {"S": "DRILL#" + run}, "sk": {"S": "ITEM#%03d" % i}})
    for i in range(20, 25):
        ddb.put_item(TableName=table, Item=drill_item(i, 2))
    ddb.put_item(TableName=table, Item=drill_item(99, 1))
    if event is not None:
        ddb.delete_item(TableName=table, Key={"pk": event["pk"], "sk": event["sk"]})
    step("damage")

    # 4. Restore to T.
    target = "%s-restored-%s" % (table, run)
    out = ddb.restore_table_to_point_in_time(SourceTableName=table, TargetTableName=target,
                                             RestoreDateTime=at)
    report["target_table"] = target
    restored_at = out["TableDescription"].get("RestoreSummary", {}).get("RestoreDateTime")
    report["restore_summary_time"] = restored_at.timestamp() if restored_at else None
    wait_for("the restored table", lambda: ddb.describe_table(TableName=target)["Table"]["TableStatus"] == "ACTIVE")
    step("restore")

    # 5. What a restore does not carry over.
    ttl = ddb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    if ttl.get("TimeToLiveStatus") == "ENABLED":
        ddb.update_time_to_live(TableName=target, TimeToLiveSpecification={
            "Enabled": True, "AttributeName": ttl["AttributeName"]})
    ddb.update_continuous_backups(TableName=target, PointInTimeRecoverySpecification={
        "PointInTimeRecoveryEnabled": True})
    ddb.update_table(TableName=target, StreamSpecification={
        "StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
    described = ddb.describe_table(TableName=target)["Table"]
    report["settings"] = {
        "ttl": ddb.describe_time_to_live(TableName=target)["TimeToLiveDescription"].get("TimeToLiveStatus"),
        "pitr": ddb.describe_continuous_backups(TableName=target)["ContinuousBackupsDescription"]
        ["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"],
        "stream": described.get("StreamSpecification", {}).get("StreamViewType"),
        "indexes": sorted(i["IndexName"] for i in described.get("GlobalSecondaryIndexes", [])),
    }
    step("settings")

    # 6. Verify.
    restored = {}
    for page in ddb.get_paginator("query").paginate(
            TableName=target, KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": "DRILL#" + run}}, ConsistentRead=True):
        for it in page["Items"]:
            restored[it["sk"]["S"]] = it
    expected = {it["sk"]["S"]: it for it in items}
    checks = {
        "drill_items_as_at_T": restored == expected,
        "deleted_after_T_back": all("ITEM#%03d" % i in restored for i in range(20)),
        "overwritten_after_T_as_before": all(restored.get("ITEM#%03d" % i, {}).get("version") == {"N": "1"}
                                             for i in range(20, 25)),
        "added_after_T_absent": "ITEM#099" not in restored,
        "restored_to_the_time_asked": restored_at is not None and abs(restored_at.timestamp() - at) < 0.01,
        "damage_in_source": len(ddb.query(TableName=table, KeyConditionExpression="pk = :pk",
                                          ExpressionAttributeValues={":pk": {"S": "DRILL#" + run}},
                                          ConsistentRead=True)["Items"]) == 21,
    }
    if event is not None:
        back = ddb.get_item(TableName=target, Key={"pk": event["pk"], "sk": event["sk"]}, ConsistentRead=True)
        checks["event_back"] = back.get("Item") == event
    report["restored_items"] = len(restored)
    step("verify")

    # 7. Switch: functions with TABLE_NAME = target behind a gateway of their own.
    if event is not None:
        event_id = event["pk"]["S"].split("#", 1)[1]
        with tempfile.TemporaryDirectory(prefix="restore-drill-") as state:
            ready = os.path.join(state, "ready.json")
            log = open(os.path.join(state, "gateway.out"), "w")
            gateway = subprocess.Popen(
                [sys.executable, os.path.join(ROOT, "infra", "local_stack.py"), "--no-build", "--quiet",
                 "--port", "0", "--realtime-port", "0", "--state-dir", os.path.join(state, "s"),
                 "--ready-file", ready, "--attach", args.stack, "--env", "TABLE_NAME=" + target,
                 "--exit-with-parent"],
                stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
            try:
                wait_for("the switched gateway", lambda: os.path.exists(ready) or gateway.poll() is not None)
                if gateway.poll() is not None:
                    log.close()
                    raise SystemExit("restore drill: the switched gateway failed:\n" + open(log.name).read())
                switched = json.load(open(ready))["url"]
                status_new, body = get("%s/v1/events/%s" % (switched, event_id))
                status_old, _ = get("%s/v1/events/%s" % (stack["url"], event_id))
                checks["switched_functions_read_the_restored_table"] = (
                    status_new == 200 and body.get("id") == event_id)
                checks["damaged_table_misses_the_event"] = status_old == 404
                report["switch"] = {"restored_gateway": status_new, "damaged_gateway": status_old}
            finally:
                gateway.terminate()
                try:
                    gateway.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    gateway.kill()
    step("switch")
    report["checks"] = checks
    report["ok"] = all(checks.values())
    if args.json:
        print(json.dumps(report))
    else:
        print("restore drill %s: %s -> %s at %.3f" % (run, table, target, at))
        for name, seconds in report["steps"].items():
            print("  %-10s %7.3f s" % (name, seconds))
        for name, ok in checks.items():
            print("  %-45s %s" % (name, "ok" if ok else "FAILED"))
        print("  restored settings: %s" % report["settings"])
    sys.exit(0 if report["ok"] else 1)


if __name__ == "__main__":
    main()
