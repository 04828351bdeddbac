"""moto server with DynamoDB's per-request atomicity.

moto serves requests on many threads and does not lock its DynamoDB backend: two concurrent
conditional UpdateItem calls can both pass their condition (the rate limiter let 101 of 100
through), and a cancelled TransactWriteItems restores a deep copy of every table, undoing writes
other threads made meanwhile and orphaning open stream iterators. Real DynamoDB applies each
request atomically, so this launcher serialises DynamoDB and DynamoDB Streams requests (only
those: SQS long polls and everything else stay concurrent) and otherwise runs moto as
`moto_server` does.

Usage: moto_server.py [-H 127.0.0.1] [-p 4566]
"""
import argparse
import os
import threading

from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app


def one_backup_per_table():
    """moto's TransactWriteItems deep-copies a table once per *item* of the transaction as its
    rollback backup: a 50-item transaction on a table of thousands of items took seconds. One
    copy per table per transaction is the same backup."""
    import copy
    import moto.dynamodb.models as models
    from moto.dynamodb.models.table import Table

    memo = threading.local()

    class CopyOncePerTable:
        @staticmethod
        def deepcopy(x, *args):
            cache = getattr(memo, "tables", None)
            if cache is not None and isinstance(x, Table):
                if id(x) not in cache:
                    cache[id(x)] = (x, copy.deepcopy(x))
                return cache[id(x)][1]
            return copy.deepcopy(x, *args)

    original = models.DynamoDBBackend.transact_write_items

    def transact_write_items(self, transact_items):
        memo.tables = {}
        try:
            return original(self, transact_items)
        finally:
            memo.tables = None

    models.copy = CopyOncePerTable
    models.DynamoDBBackend.transact_write_items = transact_write_items


class SerialDynamoDB:
    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB"):
            return self.app(environ, start_response)
        with self.lock:
            # Run the whole request, body included, while holding the lock.
            return [b"".join(self.app(environ, start_response))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-H", "--host", default="127.0.0.1")
    ap.add_argument("-p", "--port", type=int, default=4566)
    args = ap.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    one_backup_per_table()
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, SerialDynamoDB(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
