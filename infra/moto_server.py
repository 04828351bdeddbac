"""moto server with DynamoDB's per-request atomicity (writes one at a time, reads side by side).

moto serves requests on many threads and does not lock its DynamoDB backend: two concurrent
conditional UpdateItem calls can both pass their condition (the rate limiter let 101 of 100
through), and a cancelled TransactWriteItems restores a deep copy of every table, undoing writes
other threads made meanwhile and orphaning open stream iterators. Real DynamoDB applies each
request atomically, so this launcher serialises DynamoDB and DynamoDB Streams requests (only
those: SQS long polls and everything else stay concurrent) and otherwise runs moto as
`moto_server` does. Transactions are replaced too (see check_then_write_transactions).

Two ways it is made as unforgiving as AWS on a bad day (issue 12):

- Transaction conflicts. A committed transaction holds its items for a short window
  (`--txn-hold-ms`, default 10 ms: the order of DynamoDB's own commit time); another transaction
  touching a held item in that window is cancelled with reason `TransactionConflict` (per-item
  reasons, DynamoDB's wire format), and a single-item write to it fails with
  `TransactionConflictException`. Requests are serialised here, so without this two
  transactions could never overlap and the code that must handle a conflict would never run.
- A fault plan (`--faults FILE` or `MOTO_FAULTS` as JSON, replaced at run time by
  `POST /_faults`, read with `GET /_faults` with the counts so far): per service (`dynamodb`,
  `dynamodbstreams`, `sqs`, `secretsmanager`, `*`) and operation (`PutItem`, `*`), the share of
  requests answered with throttling, with a 500, delayed, and an outage switch (`down`: every
  request answered 503 at once; `hang`: held past the SDK's timeouts). Random draws come from
  one seeded generator, so a run with the same seed and the same requests fails the same way.
  Faults hit the system under test: requests of the Rust SDK (the functions). The local stack's
  own pollers (boto3, standing in for Lambda's event source mappings, which AWS runs) and the
  tests' bookkeeping (`app/e2e-tests` in the User-Agent) are left alone, unless a rule says
  `"all_clients": true`.

  {"seed": 7, "rules": [{"service": "*", "operation": "*", "throttle": 0.02,
    "error": 0.02, "latency": 0.05, "latency_ms": 200, "outage": null}]}

Usage: moto_server.py [-H 127.0.0.1] [-p 4566] [--txn-hold-ms 10] [--faults plan.json]
"""
import argparse
import copy
import io
import json
import os
import random
import threading
import time

from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app


def check_then_write_transactions():
    """moto's TransactWriteItems deep-copies every table it touches as its rollback backup
    (once per *item* of the transaction), checking each condition just before writing that
    item, and on a cancelled transaction swaps the table for the copy. On a table of thousands
    of items a transaction took seconds, and the swap orphaned open stream iterators. Requests
    are serialised (below), so checking every condition first and writing only when all hold is
    the same all-or-nothing outcome without any copy: the transaction of DynamoDB's model."""
    import moto.dynamodb.models as models
    from moto.dynamodb.exceptions import (
        ConditionalCheckFailed,
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import ItemSizeTooLarge, MockValidationException
    from moto.dynamodb.models.dynamo_type import DynamoType

    def item_size(attrs):
        return sum(len(name.encode()) + DynamoType(value).size() for name, value in attrs.items())

    def transact_write_items(self, transact_items):
        if len(transact_items) > 100:
            raise TooManyTransactionsException()
        seen = set()
        ops = []
        for item in transact_items:
            if len(item) > 1:
                raise TransactWriteSingleOpException
            op_type, op = next(iter(item.items()))
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")
            table = self.get_table(op["TableName"])
            if op_type == "Put":
                attrs = op["Item"]
                key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = attrs[table.range_key_attr]
            else:
                key = op["Key"]
            unique = (op["TableName"], str(dict(sorted(key.items()))))
            if unique in seen:
                raise MultipleTransactionsException()
            seen.add(unique)
            ops.append((op_type, op, key))
        # Phase 0: what DynamoDB refuses before running anything (a ValidationException for the
        # whole request): keys over 2 048 / 1 024 bytes (table and index keys), an item over
        # 400 KB, a request over 4 MB. moto checks some of these only as it writes each item,
        # which left the items before the bad one written.
        if not ops:
            raise MockValidationException("1 validation error detected: Value null at 'transactItems' failed to satisfy constraint: Member must not be null")
        total = 0
        for op_type, op, key in ops:
            table = self.get_table(op["TableName"])
            table._validate_key_sizes(key)
            if op_type == "Put":
                table._validate_key_sizes(op["Item"])
                size = item_size(op["Item"])
                if size > 400 * 1024:
                    raise ItemSizeTooLarge()
                total += size
        if total > 4 * 1024 * 1024:
            raise MockValidationException("Transaction request cannot be larger than 4 MB")
        # Conflicts: an item another transaction committed less than the hold window ago.
        now = time.monotonic()
        held = [CONFLICTS.is_held(op["TableName"], key, now) for _, op, key in ops]
        if any(held):
            CONFLICTS.count("transaction")
            raise TransactionCanceledException([
                ("TransactionConflict", "Transaction is ongoing for the item", None) if h else (None, None, None)
                for h in held
            ])
        # Phase 1: every condition against the state before the transaction.
        errors, failed = [], False
        for op_type, op, key in ops:
            condition = op.get("ConditionExpression")
            current = self.get_item(op["TableName"], key)
            if condition is not None and not get_filter_expression(
                condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
            ).expr(current):
                old = None
                if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                    old = current.to_json()["Attributes"]
                errors.append(("ConditionalCheckFailed", ConditionalCheckFailed().message, old))
                failed = True
            else:
                errors.append((None, None, None))
        if failed:
            raise TransactionCanceledException(errors)
        # Phase 2: the writes (their conditions held, and nothing ran in between). Should one
        # still fail (an update that grows an item past 400 KB), the items written before it
        # are put back as they were: all or nothing, as in DynamoDB.
        # The stream sees the transaction only once it committed, and only its final items:
        # moto would record each write as it happens (and the rollback's writes too), which a
        # stream consumer (the outbox relay) would act on.
        undo, changes = [], []
        shards = {}
        for _, op, _ in ops:
            table = self.get_table(op["TableName"])
            if op["TableName"] not in shards:
                shards[op["TableName"]] = table.stream_shard
                table.stream_shard = None
        CONFLICTS.inside_transaction = True
        try:
            apply_writes(self, ops, undo, changes)
        except Exception:
            for table_name, key, before in reversed(undo):
                if before is None:
                    self.delete_item(table_name, key)
                else:
                    self.put_item(table_name, before)
            raise
        finally:
            CONFLICTS.inside_transaction = False
            for name, shard in shards.items():
                self.get_table(name).stream_shard = shard
        for table_name, before, after in changes:
            shard = shards.get(table_name)
            if shard is not None:
                shard.add(before, after)
        CONFLICTS.hold([(op["TableName"], key) for _, op, key in ops], time.monotonic())

    def apply_writes(self, ops, undo, changes):
        for op_type, op, key in ops:
            if op_type == "ConditionCheck":
                continue
            current = self.get_item(op["TableName"], key)
            undo.append((op["TableName"], key, current.to_json()["Attributes"] if current else None))
            before = copy.deepcopy(current) if current is not None else None
            names, values = op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
            if op_type == "Put":
                self.put_item(op["TableName"], op["Item"], expression_attribute_names=names,
                              expression_attribute_values=values)
            elif op_type == "Delete":
                self.delete_item(op["TableName"], key, expression_attribute_names=names,
                                 expression_attribute_values=values)
            elif op_type == "Update":
                self.update_item(op["TableName"], key, update_expression=op["UpdateExpression"],
                                 expression_attribute_names=names, expression_attribute_values=values)
            after = self.get_item(op["TableName"], key)
            changes.append((op["TableName"], before, copy.deepcopy(after) if after is not None else None))

    models.DynamoDBBackend.transact_write_items = transact_write_items

    # Single-item writes to an item a transaction holds fail as in DynamoDB.
    from moto.dynamodb.exceptions import DynamodbException

    class TransactionConflictException(DynamodbException):
        def __init__(self):
            super().__init__("com.amazonaws.dynamodb.v20120810#TransactionConflictException",
                             "Transaction is ongoing for the item")

    def guarded(name):
        original = getattr(models.DynamoDBBackend, name)

        def write(self, table_name, key_or_item, *args, **kwargs):
            if not CONFLICTS.inside_transaction and CONFLICTS.window_s > 0:
                table = self.get_table(table_name)
                key = {a: key_or_item[a] for a in (table.hash_key_attr, table.range_key_attr)
                       if a and a in key_or_item}
                if CONFLICTS.is_held(table_name, key, time.monotonic()):
                    CONFLICTS.count("write")
                    raise TransactionConflictException()
            return original(self, table_name, key_or_item, *args, **kwargs)

        setattr(models.DynamoDBBackend, name, write)

    for name in ("put_item", "update_item", "delete_item"):
        guarded(name)


def point_in_time_restores():
    """moto's RestoreTableToPointInTime copies the source table as it is now, whatever time was
    asked for, and restores a table without point-in-time recovery as readily as one with it.
    DynamoDB restores the table as it was at RestoreDateTime (or at LatestRestorableDateTime),
    only within [EarliestRestorableDateTime, now], only with recovery enabled. Here the table
    as it was is the table now with its stream's changes after that time undone, newest first
    (the template's table streams NEW_AND_OLD_IMAGES, and moto keeps every record of a
    stack's life). A restored table has no stream, TTL or recovery of its own, as in DynamoDB."""
    import datetime
    from moto.dynamodb import models, responses
    from moto.dynamodb.exceptions import (MockValidationException, PointInTimeRecoveryUnavailable,
                                          SourceTableNotFoundException)
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.core.exceptions import JsonRESTError

    class InvalidRestoreTime(JsonRESTError):
        def __init__(self, message):
            super().__init__("com.amazonaws.dynamodb.v20120810#InvalidRestoreTimeException", message)

    def seconds(at):
        """Unix seconds of a time as moto holds it (a naive UTC datetime, or a number)."""
        if isinstance(at, datetime.datetime):
            return at.replace(tzinfo=datetime.timezone.utc).timestamp() if at.tzinfo is None else at.timestamp()
        return float(at)

    def record_time(record):
        return seconds(record.record["dynamodb"]["ApproximateCreationDateTime"])

    original = models.DynamoDBBackend.restore_table_to_point_in_time

    def restore(self):
        body = self.body
        source_name, target_name = body.get("SourceTableName"), body.get("TargetTableName")
        if source_name not in self.dynamodb_backend.tables:
            raise SourceTableNotFoundException(source_name)
        source = self.dynamodb_backend.get_table(source_name)
        recovery = source.continuous_backups["PointInTimeRecoveryDescription"]
        if recovery.get("PointInTimeRecoveryStatus") != "ENABLED":
            raise PointInTimeRecoveryUnavailable(source_name)
        now = time.time()
        earliest = seconds(recovery.get("EarliestRestorableDateTime") or 0)
        if body.get("UseLatestRestorableTime"):
            at = now
        elif body.get("RestoreDateTime") is not None:
            at = seconds(body["RestoreDateTime"])
        else:
            raise MockValidationException("RestoreDateTime or UseLatestRestorableTime is required")
        if at < earliest or at > now:
            raise InvalidRestoreTime("RestoreDateTime %s is outside [%s, %s]" % (at, earliest, now))
        shard = source.stream_shard
        # The table as it was is rebuilt from the stream: a stream that does not reach back to
        # T (none, or re-created after T) cannot say what it was. Refused, never a copy of now.
        if shard is None or seconds(shard.created_on) > at:
            raise InvalidRestoreTime("the local restore needs the table's stream since %s" % at)
        table = original(self.dynamodb_backend, target_name, source_name)
        for record in reversed(shard.items):
            if record_time(record) <= at:
                break
            change = record.record["dynamodb"]
            keys = change["Keys"]
            hash_key = DynamoType(keys[table.hash_key_attr])
            range_key = DynamoType(keys[table.range_key_attr]) if table.range_key_attr else None
            table.delete_item(hash_key, range_key)
            if change.get("OldImage"):
                table.put_item(copy.deepcopy(change["OldImage"]))
        table.restore_date_time = at
        return responses.DynamoResult(table.describe())

    responses.DynamoHandler.restore_table_to_point_in_time = restore


class Conflicts:
    """The items recent transactions hold, for the conflict window. Requests are serialised, so
    plain attributes suffice."""

    def __init__(self):
        self.window_s = 0.010
        self.held = {}  # (table, key) -> held until (monotonic seconds)
        self.inside_transaction = False
        self.counts = {"transaction": 0, "write": 0}

    @staticmethod
    def _id(table, key):
        return (table, json.dumps(key, sort_keys=True))

    def hold(self, keys, now):
        if self.window_s <= 0:
            return
        until = now + self.window_s
        for table, key in keys:
            self.held[self._id(table, key)] = until
        if len(self.held) > 10000:
            self.held = {k: v for k, v in self.held.items() if v > now}

    def is_held(self, table, key, now):
        return self.window_s > 0 and self.held.get(self._id(table, key), 0) > now

    def count(self, kind):
        self.counts[kind] += 1


CONFLICTS = Conflicts()


class FaultPlan:
    """Seeded fault injection per service and operation (see the module's docstring)."""

    ERRORS = {
        # service: (throttling __type, internal-error __type)
        "dynamodb": ("com.amazonaws.dynamodb.v20120810#ThrottlingException",
                     "com.amazonaws.dynamodb.v20120810#InternalServerError"),
        "dynamodbstreams": ("com.amazonaws.dynamodb.v20120810#ThrottlingException",
                            "com.amazonaws.dynamodb.v20120810#InternalServerError"),
        "sqs": ("com.amazonaws.sqs#ThrottlingException", "com.amazonaws.sqs#InternalError"),
        "secretsmanager": ("ThrottlingException", "InternalServiceError"),
    }

    def __init__(self):
        self.lock = threading.Lock()
        self.set({})

    def set(self, plan):
        with self.lock:
            self.plan = plan
            self.random = random.Random(plan.get("seed", 0))
            self.counts = {}

    def snapshot(self):
        with self.lock:
            return {"plan": self.plan, "counts": dict(self.counts)}

    def decide(self, service, operation, under_test=True):
        """What to do with this request: None, ("throttle"|"error"|"down"|"hang", ...) or
        ("latency", seconds)."""
        rules = [r for r in self.plan.get("rules", [])
                 if r.get("service", "*") in ("*", service) and r.get("operation", "*") in ("*", operation)
                 and (under_test or r.get("all_clients"))]
        if not rules:
            return None
        rule = rules[-1]
        with self.lock:
            if rule.get("outage") in ("down", "hang"):
                outcome = (rule["outage"],)
            else:
                draw = self.random.random()
                throttle, error = rule.get("throttle", 0), rule.get("error", 0)
                if draw < throttle:
                    outcome = ("throttle",)
                elif draw < throttle + error:
                    outcome = ("error",)
                elif self.random.random() < rule.get("latency", 0):
                    outcome = ("latency", rule.get("latency_ms", 100) / 1000.0)
                else:
                    outcome = None
            if outcome:
                key = "%s.%s %s" % (service, operation, outcome[0])
                self.counts[key] = self.counts.get(key, 0) + 1
        return outcome

    def respond(self, service, outcome, start_response):
        kind = outcome[0]
        if kind == "latency":
            time.sleep(outcome[1])
            return None
        if kind == "hang":
            time.sleep(float(self.plan.get("hang_s", 8)))
        throttling, internal = self.ERRORS.get(service, ("ThrottlingException", "InternalFailure"))
        status, kind_type, message = {
            "throttle": ("400 Bad Request", throttling, "Rate of requests exceeds the allowed throughput."),
            "error": ("500 Internal Server Error", internal, "Internal server error (injected)"),
            "down": ("503 Service Unavailable", "ServiceUnavailable", "Service unavailable (injected outage)"),
            "hang": ("503 Service Unavailable", "ServiceUnavailable", "Service unavailable (injected outage)"),
        }[kind]
        body = json.dumps({"__type": kind_type, "message": message}).encode()
        start_response(status, [("Content-Type", "application/x-amz-json-1.0"),
                                ("x-amzn-ErrorType", kind_type.split("#")[-1]),
                                ("Content-Length", str(len(body)))])
        return [body]


FAULTS = FaultPlan()


def service_of(environ):
    """(service, operation) of a request, from X-Amz-Target (JSON protocols) or the query
    protocol's Action, or the Secrets Manager / SQS host part."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        prefix, _, operation = target.partition(".")
        service = {"DynamoDB_20120810": "dynamodb", "DynamoDBStreams_20120810": "dynamodbstreams",
                   "AmazonSQS": "sqs", "secretsmanager": "secretsmanager"}.get(prefix, prefix.lower())
        return service, operation
    query = environ.get("QUERY_STRING", "")
    for part in query.split("&"):
        if part.startswith("Action="):
            return "sqs", part[len("Action="):]
    return "other", ""


class Faulty:
    """Applies FAULTS before a request reaches moto, and serves /_faults."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") == "/_faults":
            if environ.get("REQUEST_METHOD") == "POST":
                body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
                plan = json.loads(body or b"{}")
                FAULTS.set(plan)
                if "txn_hold_ms" in plan:
                    CONFLICTS.window_s = float(plan["txn_hold_ms"]) / 1000.0
            out = json.dumps(dict(FAULTS.snapshot(), conflicts=dict(CONFLICTS.counts),
                                  txn_hold_ms=CONFLICTS.window_s * 1000)).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(out)))])
            return [out]
        service, operation = service_of(environ)
        agent = environ.get("HTTP_USER_AGENT", "") + " " + environ.get("HTTP_X_AMZ_USER_AGENT", "")
        under_test = "aws-sdk-rust" in agent and "app/e2e-tests" not in agent
        outcome = FAULTS.decide(service, operation, under_test) if FAULTS.plan else None
        if outcome:
            answer = FAULTS.respond(service, outcome, start_response)
            if answer is not None:
                return answer
        if service == "sqs" and operation == "SendMessage" and environ.get("HTTP_X_AMZN_TRACE_ID"):
            trace_header_to_message(environ)
        return self.app(environ, start_response)


def trace_header_to_message(environ):
    """SQS keeps a SendMessage's `X-Amzn-Trace-Id` HTTP header as the message's AWSTraceHeader
    system attribute unless the request sets that attribute itself (the AWS SDKs send the
    header from Lambda's `_X_AMZN_TRACE_ID`); moto ignores the header. Done here, so a sender
    that does not name its trace gets the invocation's, as in AWS."""
    import io
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    try:
        doc = json.loads(body or b"{}")
        attrs = doc.setdefault("MessageSystemAttributes", {})
        if "AWSTraceHeader" not in attrs:
            attrs["AWSTraceHeader"] = {"DataType": "String", "StringValue": environ["HTTP_X_AMZN_TRACE_ID"]}
            body = json.dumps(doc).encode()
    except (ValueError, AttributeError):
        pass  # not the JSON protocol: moto answers it as it is
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))


def partition_queries():
    """moto answers a Query on the table by walking every item of the table and keeping those of
    the partition: a Query cost grew with the table (half a second at 15 000 items), where
    DynamoDB reads only the partition. For a table Query, this hands moto the partition alone."""
    from moto.dynamodb.models.table import Table

    original = Table.query
    original_all_items = Table.all_items
    # Per thread: reads run side by side (SerialDynamoDB), so the partition handed to one
    # Query must not be seen by another.
    local = threading.local()

    def all_items(self):
        handed = getattr(local, "partition", None)
        if handed is not None and handed[0] is self:
            return handed[1]
        return original_all_items(self)

    def query(self, hash_key, *args, **kwargs):
        index_name = kwargs.get("index_name", args[6] if len(args) > 6 else None)
        if index_name or hash_key is None or not self.range_key_attr:
            return original(self, hash_key, *args, **kwargs)
        local.partition = (self, list(self.items.get(hash_key, {}).values()))
        try:
            return original(self, hash_key, *args, **kwargs)
        finally:
            local.partition = None

    Table.all_items = all_items
    Table.query = query


class ReadWriteLock:
    """Many readers or one writer; a waiting writer goes before readers that arrive after it
    (a steady stream of reads cannot starve the writes)."""

    def __init__(self):
        self.cond = threading.Condition()
        self.readers = 0
        self.writer = False
        self.writers_waiting = 0

    def acquire_read(self):
        with self.cond:
            while self.writer or self.writers_waiting:
                self.cond.wait()
            self.readers += 1

    def release_read(self):
        with self.cond:
            self.readers -= 1
            if self.readers == 0:
                self.cond.notify_all()

    def acquire_write(self):
        with self.cond:
            self.writers_waiting += 1
            while self.writer or self.readers:
                self.cond.wait()
            self.writers_waiting -= 1
            self.writer = True

    def release_write(self):
        with self.cond:
            self.writer = False
            self.cond.notify_all()


# The DynamoDB and Streams operations that change nothing: they run side by side (each still
# sees a whole write or none of it: writes hold the lock alone). Anything else is a write.
READS = {
    "GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems", "DescribeTable", "ListTables",
    "DescribeTimeToLive", "DescribeContinuousBackups", "ListTagsOfResource", "DescribeStream", "ListStreams",
}  # (GetShardIterator and GetRecords are writes here: moto keeps the iterators it hands out)


class SerialDynamoDB:
    """Serialises DynamoDB writes (reads run side by side: see ReadWriteLock, READS), and gives
    TransactWriteItems its ClientRequestToken
    idempotency (moto ignores the token): the SDK sends one with every transaction and, when an
    attempt times out, retries with the same token. DynamoDB answers the retry of a committed
    transaction with success instead of running it again; so does this."""

    TOKEN_TTL_S = 600  # DynamoDB keeps a token 10 minutes

    def __init__(self, app):
        self.app = app
        self.lock = ReadWriteLock()
        self.tokens = {}  # ClientRequestToken -> when its transaction committed
        self.backends = {}  # X-Amz-Target service prefix -> moto's app for it

    def backend(self, target, environ):
        """moto finds the service of every request anew (~1 ms, dozens of module lookups); the
        DynamoDB and Streams apps are looked up once."""
        prefix = target.split(".", 1)[0]
        app = self.backends.get(prefix)
        if app is None:
            app = self.backends[prefix] = self.app.get_application(environ)
        return app

    def __call__(self, environ, start_response):
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if not target.startswith("DynamoDB"):
            return self.app(environ, start_response)
        token = None
        if target.endswith(".TransactWriteItems"):
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = io.BytesIO(body)
            try:
                token = json.loads(body or b"{}").get("ClientRequestToken")
            except ValueError:
                token = None
        operation = target.rsplit(".", 1)[-1]
        if operation in READS:
            self.lock.acquire_read()
            try:
                return [b"".join(self.backend(target, environ)(environ, start_response))]
            finally:
                self.lock.release_read()
        self.lock.acquire_write()
        try:
            return self._write(target, token, environ, start_response)
        finally:
            self.lock.release_write()

    def _write(self, target, token, environ, start_response):
        now = time.time()
        if token is not None and now - self.tokens.get(token, -1e9) < self.TOKEN_TTL_S:
            start_response("200 OK", [("Content-Type", "application/x-amz-json-1.0")])
            return [b"{}"]
        status = []

        def recording_start_response(s, headers, *rest):
            status.append(s)
            return start_response(s, headers, *rest)

        # Run the whole request, body included, while holding the lock.
        out = [b"".join(self.backend(target, environ)(environ, recording_start_response))]
        if token is not None and status and status[0].startswith("200"):
            self.tokens[token] = now
            if len(self.tokens) > 100000:
                self.tokens = {k: v for k, v in self.tokens.items() if now - v < self.TOKEN_TTL_S}
        return out


def validate_trace_segments():
    """moto's X-Ray stores any document with an id, a name, a trace id and a start time. X-Ray
    refuses (UnprocessedTraceSegments) what breaks its segment document schema, and a function
    that sends such documents loses its trace in AWS: refuse them here too. The rules of
    https://docs.aws.amazon.com/xray/latest/devguide/xray-api-segmentdocuments.html: a 64 KB
    document; a 16-hex id; a trace id `1-<8 hex>-<24 hex>` whose time is within the last 30
    days (and not in the future); a name of 1-200 letters, digits, spaces and `_.:/%&#=+\\-@`;
    numeric times, end not before start; a subsegment sent on its own names its trace and
    parent; annotation keys of letters, digits and `_`, values strings (<= 1000), numbers or
    booleans; a subsegment's namespace `aws` or `remote`."""
    import re
    import moto.xray.models as xray_models
    from moto.xray.exceptions import BadSegmentException

    hex16 = re.compile(r"^[0-9a-f]{16}$")
    trace_rx = re.compile(r"^1-([0-9a-f]{8})-[0-9a-f]{24}$")
    name_rx = re.compile(r"^[\w\s.:/%&#=+\\\-@]{1,200}$")
    key_rx = re.compile(r"^[A-Za-z0-9_]{1,500}$")
    original = xray_models.XRayBackend.process_segment

    def problem(data, nested):
        if not isinstance(data, dict):
            return "a segment must be a JSON object"
        seg_id = data.get("id")
        if not isinstance(seg_id, str) or not hex16.match(seg_id):
            return "id must be 16 hexadecimal digits"
        name = data.get("name")
        if not isinstance(name, str) or not name_rx.match(name) or "\n" in name:
            return "invalid name %r" % (name,)
        if not nested or "trace_id" in data:
            m = trace_rx.match(str(data.get("trace_id", "")))
            if not m:
                return "invalid trace_id %r" % (data.get("trace_id"),)
            epoch = int(m.group(1), 16)
            if not (time.time() - 30 * 86400 <= epoch <= time.time() + 300):
                return "trace_id time is more than 30 days old or in the future"
        start, end = data.get("start_time"), data.get("end_time")
        if not isinstance(start, (int, float)) or isinstance(start, bool):
            return "start_time must be a number"
        if end is None:
            if data.get("in_progress") is not True:
                return "end_time missing and not in_progress"
        elif not isinstance(end, (int, float)) or end < start:
            return "end_time must be a number not before start_time"
        if "parent_id" in data and not hex16.match(str(data["parent_id"])):
            return "parent_id must be 16 hexadecimal digits"
        if data.get("type") == "subsegment" and not nested:
            if "parent_id" not in data or "trace_id" not in data:
                return "a subsegment sent on its own needs trace_id and parent_id"
        if data.get("namespace") not in (None, "aws", "remote"):
            return "namespace must be aws or remote"
        for k, v in (data.get("annotations") or {}).items():
            if not key_rx.match(k):
                return "invalid annotation key %r" % k
            if isinstance(v, str) and len(v) > 1000 or not isinstance(v, (str, int, float, bool)):
                return "invalid annotation value for %r" % k
        for sub in data.get("subsegments") or []:
            p = problem(sub, True)
            if p:
                return p
        return None

    def process_segment(self, doc):
        if len(doc.encode()) > 64 * 1024:
            raise BadSegmentException(code="SegmentTooLarge", message="a segment document is at most 64 KB")
        try:
            data = json.loads(doc)
        except ValueError:
            raise BadSegmentException(code="JSONFormatError", message="Bad JSON data")
        p = problem(data, False)
        if p:
            raise BadSegmentException(seg_id=data.get("id") if isinstance(data, dict) else None,
                                      code="InvalidSegment", message=p)
        return original(self, doc)

    xray_models.XRayBackend.process_segment = process_segment
    xray_models.SegmentCollection.summary = trace_summaries


def _pieces(doc):
    """A segment document and its nested subsegments."""
    yield doc
    for sub in doc.get("subsegments") or []:
        yield from _pieces(sub)


def trace_summaries(self, start_time, end_time, filter_expression=None):
    """GetTraceSummaries with what moto leaves out: a filter expression (the subset operators
    use: `annotation.KEY = "v"` / number / true|false, `service("name")`, `fault`, `error`,
    `throttle`, `http.status = N`, `responsetime > N` / `duration > N` (seconds), joined by
    AND), and each summary's annotations, services, HTTP status and response time. Anything
    else is refused as X-Ray refuses a bad expression (400), never answered as if it matched."""
    import re
    from moto.core.exceptions import AWSError

    clause_rx = [
        (re.compile(r'^annotation\.(\w+)\s*=\s*"([^"]*)"$'), "ann_str"),
        (re.compile(r"^annotation\.(\w+)\s*=\s*(-?[0-9.]+)$"), "ann_num"),
        (re.compile(r"^annotation\.(\w+)\s*=\s*(true|false)$", re.I), "ann_bool"),
        (re.compile(r'^service\(\s*"([^"]+)"\s*\)$'), "service"),
        (re.compile(r"^(fault|error|throttle)$", re.I), "flag"),
        (re.compile(r"^http\.status\s*=\s*(\d+)$"), "status"),
        (re.compile(r"^(responsetime|duration)\s*>\s*([0-9.]+)$", re.I), "slower"),
    ]
    clauses = []
    # `AND` between clauses, not inside a quoted value.
    and_rx = r'\s+AND\s+(?=(?:[^"]*"[^"]*")*[^"]*$)'
    for raw in re.split(and_rx, filter_expression.strip(), flags=re.I) if filter_expression else []:
        raw = raw.strip()
        for rx, kind in clause_rx:
            m = rx.match(raw)
            if m:
                clauses.append((kind, m.groups()))
                break
        else:
            raise AWSError("Invalid filter expression (the local X-Ray supports annotation.KEY = value, "
                           "service(\"name\"), fault, error, throttle, http.status = N, responsetime > N, "
                           "joined by AND): %s" % raw, exception_type="InvalidRequestException", status=400)

    summaries = []
    # A copy: the daemon stand-in adds traces while this reads them.
    for tid, trace in list(self._traces.items()):
        if not (trace["finished"] and start_time <= trace["start_date"] and trace["end_date"] <= end_time):
            continue
        docs = []
        for seg in list(trace["segments"]):
            try:
                docs.extend(_pieces(json.loads(seg.raw)))
            except ValueError:
                continue
        annotations = {}
        for d in docs:
            for k, v in (d.get("annotations") or {}).items():
                annotations.setdefault(k, [])
                if v not in annotations[k]:
                    annotations[k].append(v)
        services = sorted({d["name"] for d in docs if d.get("type") != "subsegment" and "name" in d})
        starts = [d["start_time"] for d in docs if isinstance(d.get("start_time"), (int, float))]
        ends = [d["end_time"] for d in docs if isinstance(d.get("end_time"), (int, float))]
        duration = (max(ends) - min(starts)) if starts and ends else 0.0
        roots = [d for d in docs if d.get("type") != "subsegment" and not d.get("parent_id")]
        response_time = (roots[0]["end_time"] - roots[0]["start_time"]) if roots and "end_time" in roots[0] else duration
        status = next((d.get("http", {}).get("response", {}).get("status") for d in docs
                       if d.get("http", {}).get("response", {}).get("status")), None)
        flags = {f: any(d.get(f) for d in docs) for f in ("fault", "error", "throttle")}

        def holds(kind, args):
            if kind == "ann_str":
                return args[1] in annotations.get(args[0], [])
            if kind == "ann_num":
                return any(isinstance(v, (int, float)) and not isinstance(v, bool) and v == float(args[1])
                           for v in annotations.get(args[0], []))
            if kind == "ann_bool":
                return (args[1].lower() == "true") in [v for v in annotations.get(args[0], []) if isinstance(v, bool)]
            if kind == "service":
                return args[0] in services
            if kind == "flag":
                return flags[args[0].lower()]
            if kind == "status":
                return any(d.get("http", {}).get("response", {}).get("status") == int(args[0]) for d in docs)
            if kind == "slower":
                return (response_time if args[0].lower() == "responsetime" else duration) > float(args[1])
            return False

        if not all(holds(k, a) for k, a in clauses):
            continue
        summaries.append({
            "Id": tid,
            "Duration": duration,
            "ResponseTime": response_time,
            "HasFault": flags["fault"],
            "HasError": flags["error"],
            "HasThrottle": flags["throttle"],
            "IsPartial": False,
            "Http": {"HttpStatus": status} if status else {},
            "Annotations": {k: [{"AnnotationValue": (
                {"BooleanValue": v} if isinstance(v, bool) else
                {"NumberValue": v} if isinstance(v, (int, float)) else {"StringValue": str(v)})}
                for v in vs] for k, vs in annotations.items()},
            "ServiceIds": [{"Name": n} for n in services],
            "Users": [],
        })
    return {
        "ApproximateTime": int(time.time()),
        "TracesProcessedCount": len(summaries),
        "TraceSummaries": summaries,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-H", "--host", default="127.0.0.1")
    ap.add_argument("-p", "--port", type=int, default=4566)
    ap.add_argument("--txn-hold-ms", type=float, default=float(os.environ.get("MOTO_TXN_HOLD_MS", "10")),
                    help="how long a committed transaction holds its items (0: no conflicts)")
    ap.add_argument("--faults", help="a JSON fault plan file (or MOTO_FAULTS as JSON)")
    args = ap.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    CONFLICTS.window_s = args.txn_hold_ms / 1000.0
    if args.faults:
        with open(args.faults) as f:
            FAULTS.set(json.load(f))
    elif os.environ.get("MOTO_FAULTS"):
        FAULTS.set(json.loads(os.environ["MOTO_FAULTS"]))
    check_then_write_transactions()
    partition_queries()
    point_in_time_restores()
    validate_trace_segments()
    app = DomainDispatcherApplication(create_backend_app)
    # One connection per request: werkzeug's server closes each after its response (it drains
    # the socket after the response, which would swallow a kept-alive client's next request).
    run_simple(args.host, args.port, Faulty(SerialDynamoDB(app)), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
