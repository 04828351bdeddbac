"""moto server with DynamoDB's per-request atomicity.

moto serves requests on many threads and does not lock its DynamoDB backend: two concurrent
conditional UpdateItem calls can both pass their condition (the rate limiter let 101 of 100
through), and a cancelled TransactWriteItems restores a deep copy of every table, undoing writes
other threads made meanwhile and orphaning open stream iterators. Real DynamoDB applies each
request atomically, so this launcher serialises DynamoDB and DynamoDB Streams requests (only
those: SQS long polls and everything else stay concurrent) and otherwise runs moto as
`moto_server` does. Transactions are replaced too (see check_then_write_transactions).

Usage: moto_server.py [-H 127.0.0.1] [-p 4566]
"""
import argparse
import io
import json
import os
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
        # Phase 2: the writes (their conditions held, and nothing ran in between).
        for op_type, op, key in ops:
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

    models.DynamoDBBackend.transact_write_items = transact_write_items


def partition_queries():
    """moto answers a Query on the table by walking every item of the table and keeping those of
    the partition: a Query cost grew with the table (half a second at 15 000 items), where
    DynamoDB reads only the partition. For a table Query, this hands moto the partition alone."""
    from moto.dynamodb.models.table import Table

    original = Table.query

    def query(self, hash_key, *args, **kwargs):
        index_name = kwargs.get("index_name", args[6] if len(args) > 6 else None)
        if index_name or hash_key is None or not self.range_key_attr:
            return original(self, hash_key, *args, **kwargs)
        partition = list(self.items.get(hash_key, {}).values())
        self.all_items = lambda: partition
        try:
            return original(self, hash_key, *args, **kwargs)
        finally:
            del self.all_items

    Table.query = query


class SerialDynamoDB:
    """Serialises DynamoDB requests, and gives TransactWriteItems its ClientRequestToken
    idempotency (moto ignores the token): the SDK sends one with every transaction and, when an
    attempt times out, retries with the same token. DynamoDB answers the retry of a committed
    transaction with success instead of running it again; so does this."""

    TOKEN_TTL_S = 600  # DynamoDB keeps a token 10 minutes

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()
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
        with self.lock:
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-H", "--host", default="127.0.0.1")
    ap.add_argument("-p", "--port", type=int, default=4566)
    args = ap.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    check_then_write_transactions()
    partition_queries()
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, SerialDynamoDB(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
