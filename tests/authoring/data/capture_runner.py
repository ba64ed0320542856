"""Load one exported ``main.py`` the way the kre-py 1.x runner does and run one message.

Usage: python capture_runner.py MAIN_PY FIELDS_JSON [MESSAGE_CLASS]

* the runner's own modules (config, context, kre_runner, main, kre_nats_msg_pb2) come first on
  ``sys.path``, as in the runner image, so a node importing a module of that name breaks here too;
* the handler's folder is *appended* to ``sys.path`` and the file loaded as module ``worker``;
* ``init(ctx)`` runs once if defined (sync or async), then ``await handler(ctx, any)``.

Prints one JSON object: ``{"type", "response", "values", "logs"}`` or ``{"error": "Type: text"}``.
"""

import asyncio
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
    """The parts of kre-py's HandlerContext a node may use in these tests."""

    def __init__(self, base):
        self._base, self._values = base, {}
        self.logger = logging.getLogger("capture-node")
        self.logger.setLevel(logging.INFO)
        self.logs = ListHandler()
        self.logger.addHandler(self.logs)

    def path(self, rel):
        return os.path.join(self._base, rel)

    def set(self, key, value):
        self._values[key] = value

    def get(self, key):
        if key not in self._values:
            raise AttributeError(key)
        return self._values[key]


def main():
    path, fields = sys.argv[1], json.loads(sys.argv[2])
    message_class = sys.argv[3] if len(sys.argv) > 3 else "Request"
    runner_src = tempfile.mkdtemp()
    for name in RUNNER_MODULES:
        with open(os.path.join(runner_src, name + ".py"), "w") as f:
            f.write("RUNNER_FILE = True\n")
    sys.path.insert(0, runner_src)
    sys.path.append(os.path.dirname(os.path.abspath(path)))
    spec = importlib.util.spec_from_file_location("worker", path)
    worker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(worker)

    import public_input_pb2  # the one beside main.py, like the node's own imports
    from google.protobuf import any_pb2, json_format

    message = json_format.ParseDict(fields, getattr(public_input_pb2, message_class)())
    data = any_pb2.Any()
    data.Pack(message)
    ctx = Ctx(os.path.dirname(os.path.abspath(path)))

    async def run():
        init = getattr(worker, "init", None)
        if init is not None:
            result = init(ctx)
            if asyncio.iscoroutine(result):
                await result
        return await worker.handler(ctx, data)

    try:
        result = asyncio.run(run())
    except Exception as exc:  # reported to the test, like the runner's "error in '<node>'"
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        return
    print(
        json.dumps(
            {
                "type": result.DESCRIPTOR.full_name,
                "response": json_format.MessageToDict(result, preserving_proto_field_name=True),
                "values": {k: repr(v) for k, v in ctx._values.items()},
                "logs": ctx.logs.lines,
            }
        )
    )


main()
