"""Property tests: arbitrary YAML and archives thrown at load/validate give only krtlab errors."""

from __future__ import annotations

import io
import tarfile

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import krtlab as krt
from krtlab.bundle.load import load_project
from krtlab.bundle.project import Project
from krtlab.errors import KrtlabError
from krtlab.spec.model import KNOWN_KEYS

from .conftest import EXAMPLES

GREETER = load_project(EXAMPLES / "greeter").files
KEYS = sorted({k for keys in KNOWN_KEYS.values() for k in keys} | {"gpus", "exitpoint", "x"})
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=25),
    st.sampled_from(["py-greeter", "PyGreet", "public_input.proto"]),
)
data = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), inner, max_size=6),
    ),
    max_leaves=30,
)
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _validate_text(text: str) -> None:
    files = dict(GREETER)
    files["krt.yml"] = text.encode("utf-8", errors="surrogatepass")
    report = Project(files, "fuzz").validate()
    for f in report.findings:
        assert f.severity in ("error", "warning") and f.message
    str(report), report.to_json()


@FAST
@given(st.text(max_size=300))
def test_arbitrary_text_as_krt_yml(text):
    _validate_text(text)


@FAST
@given(data)
def test_arbitrary_yaml_data_as_krt_yml(value):
    _validate_text(yaml.safe_dump(value, allow_unicode=True))


@FAST
@given(data)
def test_arbitrary_data_overlaid_on_a_valid_manifest(value):
    base = yaml.safe_load(GREETER["krt.yml"])
    if isinstance(value, dict):
        base.update(value)
    else:
        base["nodes"] = value
    _validate_text(yaml.safe_dump(base, allow_unicode=True))


members = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "krt.yml",
                "public_input.proto",
                "src/py-greeter/main.py",
                "a/krt.yml",
                "../evil",
                "/abs",
                "src",
                "x" * 120,
                "d/",
            ]
        ),
        st.sampled_from(
            [
                tarfile.REGTYPE,
                tarfile.DIRTYPE,
                tarfile.SYMTYPE,
                tarfile.LNKTYPE,
                tarfile.CHRTYPE,
                tarfile.FIFOTYPE,
            ]
        ),
        st.binary(max_size=200) | st.sampled_from([GREETER["krt.yml"], b"version: [\n"]),
    ),
    max_size=6,
)


@FAST
@given(members, st.booleans())
def test_arbitrary_archives_to_load_and_validate(tmp_path_factory, items, compress):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if compress else "w") as tar:
        for name, kind, payload in items:
            info = tarfile.TarInfo(name)
            info.type = kind
            if kind == tarfile.REGTYPE:
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
            else:
                info.linkname = "krt.yml"
                tar.addfile(info)
    path = tmp_path_factory.mktemp("fuzz") / "x.krt"
    path.write_bytes(buf.getvalue())
    try:
        v = krt.load(path)
    except KrtlabError:
        return
    v.validate()


@FAST
@given(st.binary(max_size=400))
def test_arbitrary_bytes_as_a_krt(tmp_path_factory, blob):
    path = tmp_path_factory.mktemp("fuzz") / "x.krt"
    path.write_bytes(blob)
    try:
        krt.load(path).validate()
    except KrtlabError:
        pass
