"""Run node files the way the kre-py 1.x runner loads them, in THIS interpreter.

The tests run it under the current protobuf and under a separate environment pinned to
protobuf==3.13.0 (the runner image's), with no krtlab installed.

Usage: python kre_py_harness.py BUNDLE_ROOT REQUEST_MODULE REQUEST_CLASS JSON_FIELDS SRC [SRC...]

* the runner's own modules (config, context, kre_runner, main, kre_nats_msg_pb2) come first on
  ``sys.path``, as in the runner image, so a node importing a module of that name breaks here too;
* each handler's folder is *appended* to ``sys.path`` and its file loaded as a ``worker`` module;
* ``init(ctx)`` runs once per node if defined (sync or async), then the request travels through
  the nodes, each edge packed in an Any, serialized and parsed again (``await handler(ctx, any)``).

Prints one JSON object: the last response (``type``, ``response``), the protobuf version, what
the nodes recorded (``saved``), ``ctx.set`` values and ``ctx.logger`` lines; or
``{"error": "Type: text"}`` when a node raised, like the runner's ``error in '<node>'``.
"""

import asyncio
import importlib
import importlib.util
import json
import logging
import os
import sys
import tempfile

RUNNER_MODULES = ("config", "context", "kre_runner", "main", "kre_nats_msg_pb2")


class ListHandler(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


class Ctx:
    """The parts of kre-py's HandlerContext the test nodes use, recorded locally."""

    def __init__(self, base, logs):
        self._base, self._values = base, {}
        self.logger = logging.getLogger("node")
        self.logger.setLevel(logging.INFO)
        if logs not in self.logger.handlers:
            self.logger.addHandler(logs)
        self.saved = []
        outer = self

        class Measurement:
            def save(self, measurement, fields, tags, time=None, precision=None):
                outer.saved.append(["measurement", measurement, fields, tags])

        class Async:
            def __init__(self, kind):
                self.kind = kind

            async def save(self, *args, **kwargs):
                outer.saved.append([self.kind, list(args), kwargs])

        self.measurement, self.prediction, self.db = Measurement(), Async("prediction"), Async("db")

    def path(self, rel):
        return os.path.join(self._base, rel)

    def set(self, key, value):
        self._values[key] = value

    def get(self, key):
        if key not in self._values:
            raise AttributeError(key)
        return self._values[key]


def runner_modules_first():
    folder = tempfile.mkdtemp()
    for name in RUNNER_MODULES:
        with open(os.path.join(folder, name + ".py"), "w") as f:
            f.write("RUNNER_FILE = True\n")
    sys.path.insert(0, folder)


def load(base, src, index):
    path = os.path.join(base, src)
    folder = os.path.dirname(os.path.abspath(path))
    if folder not in sys.path:
        sys.path.append(folder)  # kre-py appends the handler's folder
    spec = importlib.util.spec_from_file_location(
        "worker" if index == 0 else f"worker{index}", path
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def run(base, request, modules, logs):
    from google.protobuf import any_pb2

    payload = any_pb2.Any()
    payload.Pack(request)
    ctxs = []
    for module in modules:
        ctx = Ctx(base, logs)
        ctxs.append(ctx)
        init = getattr(module, "init", None)
        if init is not None:
            result = init(ctx)
            if asyncio.iscoroutine(result):
                await result
    result = None
    for module, ctx in zip(modules, ctxs):
        wire = any_pb2.Any.FromString(payload.SerializeToString())  # every edge on the wire
        result = await module.handler(ctx, wire)
        payload = any_pb2.Any()
        payload.Pack(result)
    return result, ctxs


def main():
    base, req_module, req_class, fields, *srcs = sys.argv[1:]
    runner_modules_first()
    import google.protobuf
    from google.protobuf import json_format

    logs = ListHandler()
    try:
        modules = [load(base, src, i) for i, src in enumerate(srcs)]
        request_cls = getattr(importlib.import_module(req_module), req_class)
        request = json_format.Parse(fields, request_cls())
        result, ctxs = asyncio.run(run(base, request, modules, logs))
    except Exception as exc:  # reported to the test, like the runner's "error in '<node>'"
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        return
    print(
        json.dumps(
            {
                "protobuf": google.protobuf.__version__,
                "type": result.DESCRIPTOR.full_name,
                "response": json_format.MessageToDict(result, preserving_proto_field_name=True),
                "saved": [s for c in ctxs for s in c.saved],
                "values": {k: repr(v) for c in ctxs for k, v in c._values.items()},
                "logs": logs.lines,
            }
        )
    )


if __name__ == "__main__":
    main()
