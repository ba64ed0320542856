"""Against a real KAI Server (and cluster), when one is configured; the stand-in tests cover the
same steps everywhere else.

    KRTLAB_TEST_KAI_SERVER_URL=https://kai.example.com KRTLAB_TEST_KAI_API_TOKEN=... \\
    KRTLAB_TEST_KUBECONFIG=~/.kube/config pytest tests/deploy/test_real_server.py

Dedicated variables (not ``KAI_SERVER_URL``) so that a developer's everyday settings never make
the suite upload versions. The test never publishes: the runtime's published version is left
alone. It uploads the greeter under a fresh name, starts it, checks it, and stops it.
"""

from __future__ import annotations

import os
import secrets

import pytest

import krtlab
from krtlab.deploy import Cluster, Deployment, KaiServer

URL = os.environ.get("KRTLAB_TEST_KAI_SERVER_URL")
TOKEN = os.environ.get("KRTLAB_TEST_KAI_API_TOKEN")
KUBECONFIG = os.environ.get("KRTLAB_TEST_KUBECONFIG")

pytestmark = pytest.mark.skipif(
    not (URL and TOKEN),
    reason="no real KAI Server: set KRTLAB_TEST_KAI_SERVER_URL and KRTLAB_TEST_KAI_API_TOKEN",
)


def test_greeter_lifecycle_on_a_real_server(examples):
    server = KaiServer(URL, api_token=TOKEN)
    v = krtlab.load(examples / "greeter")
    v.name = f"krtlab-t-{secrets.token_hex(3)}"  # 16 characters: KRE allows 19
    cluster = Cluster(os.path.expanduser(KUBECONFIG)) if KUBECONFIG else None
    dep = v.deploy(server, cluster=cluster, comment="krtlab test", timeout=900)
    try:
        assert dep.info.status == "STARTED"
        assert dep.name in [i.name for i in server.versions()]
        if cluster is not None:
            assert cluster.entrypoint_service(dep.name) is not None
    finally:
        Deployment(dep.name, server).stop("krtlab test done", timeout=900)
    assert server.version(dep.name).status == "STOPPED"
