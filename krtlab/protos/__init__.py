"""Proto files for KRT versions: compile them, load their classes, write them from Python.

* :func:`compile_protos` runs protoc in-process and returns a :class:`FileSet`.
* :class:`Registry` builds message classes in a private pool; :class:`ProtoModule` exposes one
  file's classes like a generated ``_pb2`` module.
* :func:`message_text` / :func:`file_text` turn annotated Python classes into proto3 text.
* :func:`generate_pb2` writes ``_pb2.py`` files that import under the kre-py runner's
  protobuf 3.13.0 and under current protobuf.

Importing this package does not import ``grpc_tools``; only :func:`compile_protos` does.
"""

from krtlab.protos.compile import FileSet, Rpc, compile_protos
from krtlab.protos.gencode import generate_pb2, generate_pb2_files
from krtlab.protos.pyclass import FieldSpec, MessageSpec, file_text, message_text
from krtlab.protos.registry import ProtoModule, Registry, is_message_class, message_module_name

__all__ = [
    "FieldSpec",
    "FileSet",
    "MessageSpec",
    "ProtoModule",
    "Registry",
    "Rpc",
    "compile_protos",
    "file_text",
    "generate_pb2",
    "generate_pb2_files",
    "is_message_class",
    "message_module_name",
    "message_text",
]
