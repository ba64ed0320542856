"""What the stock ``konstellation/kre-py`` runner image can import.

From the image's pinned requirements (``kre-py/requirements.txt``; see
``shared/reference/kre-py-image-packages.txt``), as import names. A node importing anything else
needs a custom image ``FROM konstellation/kre-py:<tag>``.
"""

from __future__ import annotations

import sys

__all__ = ["RUNNER_SHADOWED_MODULES", "importable_on_kre_py"]

_IMAGE_IMPORTS = frozenset(
    {
        "nats",
        "certifi",
        "chardet",
        "click",
        "future",
        "past",
        "gensim",
        "html2text",
        "idna",
        "influxdb_client",
        "joblib",
        "nltk",
        "numpy",
        "pandas",
        "cv2",
        "PIL",
        "google",
        "pymongo",
        "bson",
        "gridfs",
        "dateutil",
        "pytz",
        "regex",
        "requests",
        "rx",
        "sklearn",
        "scipy",
        "six",
        "smart_open",
        "threadpoolctl",
        "torch",
        "torchvision",
        "tqdm",
        "urllib3",
        "pkg_resources",
        "setuptools",
    }
)

# Files of the runner itself: a node module with one of these names is shadowed by the runner's
# own (the handler folder is *appended* to sys.path).
RUNNER_SHADOWED_MODULES = frozenset({"config", "context", "kre_runner", "main", "kre_nats_msg_pb2"})

_STDLIB = frozenset(getattr(sys, "stdlib_module_names", ())) | {"__future__"}


def importable_on_kre_py(module: str, local_modules: frozenset[str] = frozenset()) -> bool:
    """Whether ``import <module>`` works in the stock kre-py image (stdlib, pinned packages,
    generated ``*_pb2`` files and the node's own files)."""
    top = module.split(".")[0]
    return top in _STDLIB or top in _IMAGE_IMPORTS or top.endswith("_pb2") or top in local_modules
