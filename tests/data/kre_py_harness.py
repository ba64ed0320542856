"""Run a workflow's node files the way the kre-py 1.x runner loads them, in THIS interpreter.

Used by the tests under a separate environment pinned to protobuf==3.13.0 (the runner image's).
Usage: python kre_py_harness.py BUNDLE_ROOT REQUEST_MODULE REQUEST_CLASS JSON_FIELDS SRC [SRC...]
Prints a JSON object: the last node's response fields, the protobuf version, the tracking of nodes.
"""

import asyncio
import importlib.util
import json
import logging
import os
import sys


class Ctx:
    """The parts of kre-py's HandlerContext the example nodes use, recorded locally."""

    def __init__(self, base):
        self._base, self._values = base, {}
        self.logger = logging.getLogger("node")
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


def load(base, src, index):
    path = os.path.join(base, src)
    folder = os.path.dirname(path)
    if folder not in sys.path:
        sys.path.append(folder)  # kre-py appends the handler's folder
    spec = importlib.util.spec_from_file_location(f"worker{index}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def main():
    base, req_module, req_class, fields, *srcs = sys.argv[1:]
    import google.protobuf
    from google.protobuf import any_pb2, json_format

    modules = [load(base, src, i) for i, src in enumerate(srcs)]
    request_cls = getattr(importlib.import_module(req_module), req_class)
    message = json_format.Parse(fields, request_cls())
    payload = any_pb2.Any()
    payload.Pack(message)
    ctxs = []
    for module in modules:
        ctx = Ctx(base)
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
    print(
        json.dumps(
            {
                "protobuf": google.protobuf.__version__,
                "type": result.DESCRIPTOR.full_name,
                "response": json_format.MessageToDict(result, preserving_proto_field_name=True),
                "saved": [s for c in ctxs for s in c.saved],
            }
        )
    )


asyncio.run(main())
