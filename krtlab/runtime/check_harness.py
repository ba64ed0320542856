"""One kre-py node, run the way the runner runs it, for ``krtlab check`` (``v.check()``).

This file runs under the *runner image's* Python (3.7 or 3.9) in a virtual environment holding
protobuf 3.13.0 and the image's pins, without krtlab: it uses only the standard library and
protobuf, in Python 3.7 syntax. ``krtlab.runtime.check`` starts it once per workflow-node::

    python -I -B check_harness.py '{"base": ..., "src": ..., "node": ..., "ctx": [...], ...}'

As kre-py 1.x does, it puts the runner's own modules first on ``sys.path`` (a node module named
``config``, ``context``, ``main``... is shadowed), appends the handler's folder, loads ``main.py``
as module ``worker``, builds a ``HandlerContext`` with the members of that runner's ``ctx`` and
runs ``init(ctx)``. Then it serves calls: one JSON line on stdin (``{"data": <base64 Any>,
"replied": false}``) gives one JSON line back on the original stdout (``{"data": <base64 Any>}``
or ``{"error": "error in '<node>': ...", "log": ...}``); the node's own prints go to stderr.
"""

import asyncio
import base64
import copy
import gzip
import importlib.util
import json
import linecache
import logging
import os
import sys
import tempfile
import time
import traceback

# kre-py's own modules (krtlab.spec.runner_image.RUNNER_SHADOWED_MODULES: this file runs
# without krtlab, in the image's Python)
RUNNER_MODULES = ("config", "context", "kre_runner", "main", "kre_nats_msg_pb2")
_LEVELS = {"WARNING": "WARN", "CRITICAL": "ERROR"}


class KreFormatter(logging.Formatter):
    """kre-py's log line: ``2026-11-25T10:00:00.123Z INFO message`` (UTC)."""

    converter = staticmethod(time.gmtime)

    def __init__(self):
        super().__init__("%(asctime)s.%(msecs)03dZ %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%S")

    def format(self, record):
        name = record.levelname
        record.levelname = _LEVELS.get(name, name)
        try:
            return super().format(record)
        finally:
            record.levelname = name


class Lines(logging.Handler):
    def __init__(self):
        super().__init__()
        self.setFormatter(KreFormatter())
        self.lines = []

    def emit(self, record):
        self.lines.append(self.format(record))


class Store:
    """What ctx.db, ctx.measurement and ctx.prediction saved, kept in memory."""

    def __init__(self):
        self.docs = []


class ContextData:
    def __init__(self, store):
        self._store = store

    async def save(self, coll, data):
        if not isinstance(coll, str) or coll == "":
            raise Exception(
                f"[ctx.db.save] invalid 'collection'='{coll}', must be a nonempty string"
            )
        json.dumps(data)
        self._store.docs.append((coll, data))

    async def find(self, coll, query):
        if not isinstance(coll, str) or coll == "":
            raise Exception(
                f"[ctx.db.save] invalid 'collection'='{coll}', must be a nonempty string"
            )
        if not isinstance(query, dict) or not query:
            raise Exception(f"[ctx.db.find] invalid 'query'='{query}', must be a nonempty dict")
        return [
            d
            for c, d in self._store.docs
            if c == coll and isinstance(d, dict) and all(d.get(k) == v for k, v in query.items())
        ]


class ContextMeasurement:
    PRECISION_S, PRECISION_MS, PRECISION_US, PRECISION_NS = "s", "ms", "us", "ns"

    def __init__(self, store):
        self._store = store

    def save(self, measurement, fields, tags, time=None, precision="ns"):
        self._store.docs.append(("measurement:" + str(measurement), {"fields": fields}))


class ContextPrediction:
    ERR_MISSING_VALUES, ERR_NEW_LABELS = "missing_values", "new_labels"

    def __init__(self, store):
        self._store = store
        self.PREDICTION_ERRORS = [self.ERR_MISSING_VALUES, self.ERR_NEW_LABELS]

    async def save(self, predicted_value="", true_value="", extra=None, utcdate=None, error=""):
        if error != "":
            if error not in self.PREDICTION_ERRORS:
                raise Exception(
                    "[ctx.prediction.save] invalid value for metric error {} should "
                    "be one of '{}'".format(error, ",".join(self.PREDICTION_ERRORS))
                )
        elif not isinstance(predicted_value, str) or predicted_value == "":
            raise Exception(
                f"[ctx.prediction.save] invalid 'predicted_value'='{predicted_value}', must be a "
                "nonempty string"
            )
        elif not isinstance(true_value, str) or true_value == "":
            raise Exception(
                f"[ctx.prediction.save] invalid 'true_value'='{true_value}', must be a nonempty "
                "string"
            )
        json.dumps(extra)
        self._store.docs.append(("prediction", {"predicted": predicted_value}))


class Envelope:
    """The parts of KreNatsMessage a handler context reads."""

    def __init__(self, replied):
        self.replied = replied
        self.answer = None
        self.exited = False


def handler_context(members, base, logger):
    """kre-py's ``HandlerContext``, with only the members the runner's tag has."""
    store = Store()

    async def reply(self, response):
        if self.__request_msg__.replied:
            raise Exception("error the message was replied previously")
        self.__request_msg__.replied = True
        from google.protobuf import any_pb2

        payload = any_pb2.Any()
        payload.Pack(response)
        self.__request_msg__.answer = payload.SerializeToString()

    body = {
        "path": lambda self, relative_path: os.path.join(base, relative_path),
        "set": lambda self, key, value: setattr(self.__data__, key, value),
        "get": lambda self, key: getattr(self.__data__, key),
    }
    for name in ("reply", "early_reply"):
        if name in members:
            body[name] = reply
    if "early_exit" in members:  # kre-py 2.1.2+: this node's result ends the workflow
        body["early_exit"] = lambda self: setattr(self.__request_msg__, "exited", True)
    cls = type("HandlerContext", (object,), body)
    ctx = cls()
    ctx.__data__ = lambda: None
    ctx.__request_msg__ = None
    ctx.logger = logger
    ctx.prediction = ContextPrediction(store)
    ctx.measurement = ContextMeasurement(store)
    ctx.db = ContextData(store)
    return ctx


def runner_modules_first():
    folder = tempfile.mkdtemp(prefix="kre-py-src-")
    for name in RUNNER_MODULES:
        with open(os.path.join(folder, name + ".py"), "w") as f:
            f.write("RUNNER_FILE = True\n")
    sys.path.insert(0, folder)


def where(exc, base):
    """(file in the bundle, line, source text) of the deepest frame inside the bundle."""
    found = None
    prefix = os.path.join(base, "")
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename.startswith(prefix):
            found = (frame.filename, frame.lineno, frame.line)
    if isinstance(exc, SyntaxError) and exc.filename and exc.filename.startswith(prefix):
        found = (exc.filename, exc.lineno, (exc.text or "").strip())
    if found is None:
        return None
    path, line, text = found
    text = text or linecache.getline(path, line or 0).strip()
    return {"file": path[len(prefix) :].replace(os.sep, "/"), "line": line, "code": text}


def failure(exc, base, log):
    return {"error": f"{type(exc).__name__}: {exc}", "log": log, "where": where(exc, base)}


class Node:
    def __init__(self, config, out):
        self.base, self.src, self.name = config["base"], config["src"], config["node"]
        self.out = out
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.lines = Lines()
        self.logger = logging.getLogger(config["logger"])
        self.logger.setLevel(logging.INFO)
        self.logger.addHandler(self.lines)
        self.members = config["ctx"]
        self.compression = config.get("compression", "kb")

    def emit(self, obj):
        obj["logs"], self.lines.lines = self.lines.lines, []
        self.out.write(json.dumps(obj) + "\n")
        self.out.flush()

    def start(self):
        import google.protobuf

        path = os.path.join(self.base, self.src)
        sys.path.append(os.path.dirname(path))  # kre-py appends the handler's folder
        info = {
            "python": ".".join(map(str, sys.version_info[:3])),
            "executable": sys.executable,
            "protobuf": google.protobuf.__version__,
        }
        try:
            spec = importlib.util.spec_from_file_location("worker", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        except Exception as err:
            log = f"error loading handler script {self.src}: {err}\n\n{traceback.format_exc()}"
            info.update(failure(err, self.base, log), stage="import")
            self.emit(info)
            return None
        if not hasattr(module, "handler"):
            text = f"handler module '{path}' must implement a function 'handler(ctx, data)'"
            info.update(error="Exception: " + text, log=text, where=None, stage="import")
            self.emit(info)
            return None
        self.ctx = handler_context(self.members, self.base, self.logger)
        init = getattr(module, "init", None)
        if init is not None:
            try:
                result = init(self.ctx)
                if asyncio.iscoroutine(result):
                    self.loop.run_until_complete(result)
            except Exception as err:
                info.update(failure(err, self.base, traceback.format_exc()), stage="init")
        self.emit(info)
        return module

    def call(self, module, request):
        from google.protobuf import any_pb2

        envelope = Envelope(request.get("replied", False))
        try:
            payload = any_pb2.Any.FromString(base64.b64decode(request["data"]))
            ctx = copy.copy(self.ctx)
            ctx.__request_msg__ = envelope
            result = self.loop.run_until_complete(module.handler(ctx, payload))
            out = any_pb2.Any()
            out.Pack(result)
            data = out.SerializeToString()
            self.check_size(data)
            answer = {"data": base64.b64encode(data).decode()}
        except Exception as err:
            log = f"error executing handler: {err} \n\n{traceback.format_exc()}"
            self.logger.error(log)
            answer = failure(err, self.base, log)
            answer["error"] = f"error in '{self.name}': {err}"
        if envelope.answer is not None:
            answer["reply"] = base64.b64encode(envelope.answer).decode()
        answer["replied"], answer["exited"] = envelope.replied, envelope.exited
        self.emit(answer)

    def check_size(self, data):
        """The runner gzips a message over 1 MiB and refuses it if it is still over."""
        limit = 1024 * 1024
        if len(data) <= limit:
            return
        size = len(gzip.compress(data, compresslevel=9))
        if size > limit:
            if self.compression == "1mb":
                raise Exception("compressed message exceeds maximum size allowed of 1 MB.")
            raise Exception(
                f"compressed message {size / 1024:.2f} KB exceeds maximum size "
                f"allowed of {limit / 1024:.2f} KB."
            )


def main():
    config = json.loads(sys.argv[1])
    out = os.fdopen(os.dup(1), "w")  # the answers; the node's own output goes to stderr
    os.dup2(2, 1)
    runner_modules_first()
    node = Node(config, out)
    module = node.start()
    if module is None:
        return
    for line in sys.stdin:
        if line.strip():
            node.call(module, json.loads(line))


if __name__ == "__main__":
    main()
