"""Version names from a base and a tag (``krt.version_name``), ``v.bump()``, and the check for a
name the runtime already has, made before anything is uploaded (against the KAI stand-in)."""

from __future__ import annotations

import argparse
import itertools

import pytest

import krtlab as krt
from krtlab.errors import DeployError, SpecError
from krtlab.spec.names import (
    Tag,
    bump_name,
    default_part,
    next_free_name,
    parse_tag,
    split_version_name,
)
from krtlab.spec.rules import RESOURCE_NAME_RE


def valid(name: str) -> bool:
    return bool(RESOURCE_NAME_RE.match(name)) and len(name) <= 19


# -- version_name ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tag", "name"),
    [
        ("1.4.2", "price-estima-v1-4-2"),
        ("v1.4.2", "price-estima-v1-4-2"),
        ("V1.4.2", "price-estima-v1-4-2"),
        ("1.4.12", "price-estim-v1-4-12"),
        ("1.41.2", "price-estim-v1-41-2"),
        ("2.0.0-rc.1", "price-e-v2-0-0-rc-1"),
        ("2.0.0-RC.1", "price-e-v2-0-0-rc-1"),
        ("1.0.0+build5", "pric-v1-0-0--build5"),
        ("3", "price-estimator-v3"),
        (3, "price-estimator-v3"),
        ("0.3", "price-estimato-v0-3"),  # 19 - len("-v0-3") = 14
        (" 1.4.2 ", "price-estima-v1-4-2"),
    ],
)
def test_examples(tag, name):
    assert krt.version_name("price-estimator", tag) == name
    assert valid(name)


def test_the_version_part_is_kept_and_the_base_cut_to_what_is_left():
    # 19 - len("-v1-4-2") = 12 characters of the base
    assert krt.version_name("abcdefghijklmnopqrstuvwxyz", "1.4.2") == "abcdefghijkl-v1-4-2"
    assert len(krt.version_name("abcdefghijklmnopqrstuvwxyz", "1.4.2")) == 19
    # a base that fits is left whole: 12 + 7 = 19
    assert krt.version_name("abcdefghijkl", "1.4.2") == "abcdefghijkl-v1-4-2"
    # a '-' left at the end of the cut is dropped (never "abcdefghijk--v1-4-2")
    assert krt.version_name("abcdefghijk-lmnop", "1.4.2") == "abcdefghijk-v1-4-2"
    # the same base is cut by the same rule whatever the version: predictable
    assert krt.version_name("ny-house-price-estimator", "1.4.2") == "ny-house-pri-v1-4-2"
    assert krt.version_name("ny-house-price-estimator", "10.4.2") == "ny-house-pr-v10-4-2"


def test_version_parts_of_17_to_20_characters():
    # "v1-0-0-" is 7 characters: a pre-release of n letters makes a part of 7 + n
    def tag(n: int) -> str:
        return "1.0.0-" + "abcdefghijklm"[:n]

    assert krt.version_name("price", tag(10)) == "p-v1-0-0-abcdefghij"  # 17: one base letter
    assert krt.version_name("price", tag(11)) == "v1-0-0-abcdefghijk"  # 18: no room for a base
    assert krt.version_name("price", tag(12)) == "v1-0-0-abcdefghijkl"  # 19: the part alone
    with pytest.raises(SpecError) as info:  # 20: nothing fits
        krt.version_name("price", tag(13))
    assert str(info.value) == (
        "cannot name '1.0.0-abcdefghijklm' of 'price': its version part 'v1-0-0-abcdefghijklm' "
        "is 20 characters and a KRE name has at most 19 characters (lt=20), even without the "
        "base; did you mean '1.0.0' (without the pre-release and build)?"
    )


def test_base_is_lowercased_and_anything_else_becomes_one_dash():
    assert krt.version_name("Price_Estimator", "1.4.2") == "price-estima-v1-4-2"
    assert krt.version_name("  _My__Model.NY_ ", "1") == "my-model-ny-v1"
    assert krt.version_name("42", "1.0.0") == "42-v1-0-0"
    assert krt.version_name("x", "1.0.0") == "x-v1-0-0"
    for base in ("___", "", "-", "..."):
        with pytest.raises(SpecError, match="has no letters or digits"):
            krt.version_name(base, "1.0.0")
    with pytest.raises(SpecError, match="base must be a string"):
        krt.version_name(None, "1.0.0")  # type: ignore[arg-type]


def test_names_are_valid_distinct_and_read_back():
    cores = [
        ".".join(map(str, c))
        for k in (1, 2, 3)
        for c in itertools.product((0, 1, 2, 4, 10, 12, 41, 100), repeat=k)
    ]
    pres = ["", "-rc", "-rc.1", "-rc1", "-rc.12", "-0a", "-alpha.1.2"]
    builds = ["", "+5", "+b5", "+build.5"]
    pres_for_short = ["", "-rc", "-rc.1"]  # a numeric pre-release needs all three numbers
    for base in ("price-estimator", "a", "ny-house-price-estimator", "api-v2"):
        seen: dict[str, str] = {}
        for core in cores:
            for pre in pres if core.count(".") == 2 else pres_for_short:
                for build in builds:
                    tag = core + pre + build
                    try:
                        name = krt.version_name(base, tag)
                    except SpecError as exc:
                        assert "even without the base" in str(exc)
                        continue
                    assert valid(name), name
                    assert name not in seen, f"{tag} and {seen.get(name)} are both {name}"
                    seen[name] = tag
                    found = split_version_name(name)
                    assert found is not None and found[1].text == tag, (name, found)
                    assert base.startswith(found[0])
        assert len(seen) > 5000


def test_collisions_that_stripping_dots_would_make():
    name = krt.version_name
    assert name("model", "1.4.12") != name("model", "1.41.2")
    assert len({name("model", t) for t in ("1.4", "1.4.0", "1.40", "14")}) == 4
    tags = ("1.0.0-rc.1", "1.0.0-rc1", "1.0.0+rc.1", "1.0.0-rc+1", "1.0.0-1", "1.0.1")
    assert len({name("model", t) for t in tags}) == len(tags)


@pytest.mark.parametrize(
    ("tag", "message"),
    [
        ("latest", "version 'latest' is not a version tag: expected MAJOR[.MINOR[.PATCH]]"
                   "[-PRERELEASE][+BUILD], e.g. '1.4.2' or '2.0.0-rc.1'"),
        ("v1_4_2", "did you mean '1.4.2'?"),
        ("release-1.4.2", "did you mean '1.4.2'?"),
        ("", "version '' is not a version tag"),
        ("1.4.", "version '1.4.' is not a version tag"),
        ("1.2.3.4", "version '1.2.3.4' has 4 numbers; a tag has at most MAJOR.MINOR.PATCH (then "
                    "-PRERELEASE or +BUILD): did you mean '1.2.3-4'?"),
        ("2.0.0-rc-1", "a '-' inside the pre-release identifier 'rc-1' would be written like a "
                       "'.' in the name (rc-1 and rc.1 would get the same name): did you mean "
                       "'2.0.0-rc.1'?"),
        ("1.0.0+build-5", "build identifier 'build-5'"),
        ("1.0-1", "a numeric pre-release after fewer than three numbers would be written like "
                  "one more number (1.0.1): did you mean '1.0.0-1'?"),
        ("1.0.0-rc.v2", "the pre-release identifier 'v2' would read as the start of the version "
                        "in the name: did you mean '1.0.0-rc.2'?"),
        (1.10, "version 1.1 is a float, which loses digits (1.10 is 1.1): pass the tag as a "
               "string"),
        (None, "version must be a tag string"),
        ("2.0.0-beta.12+build.20240115", "its version part 'v2-0-0-beta-12--build-20240115' is "
         "30 characters and a KRE name has at most 19 characters (lt=20), even without the "
         "base; did you mean '2.0.0-beta.12' (without the build metadata)?"),
    ],
)  # fmt: skip
def test_refusals_say_what_to_write(tag, message):
    with pytest.raises(SpecError) as info:
        krt.version_name("price-estimator", tag)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


def test_parse_tag():
    assert parse_tag("V2.0.0-RC.1+Build5") == Tag(("2", "0", "0"), ("rc", "1"), ("build5",))
    assert parse_tag("2.0.0-rc.1+build5").part == "v2-0-0-rc-1--build5"
    assert parse_tag("01.2").text == "01.2"  # kept as written: 01.2 and 1.2 stay two names


# -- bump --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "patch", "minor", "major"),
    [
        ("price-v1-4-2", "price-v1-4-3", "price-v1-5-0", "price-v2-0-0"),
        ("greeter-v1", "greeter-v1-0-1", "greeter-v1-1", "greeter-v2"),
        ("greeter-v1-4", "greeter-v1-4-1", "greeter-v1-5", "greeter-v2-0"),
        # a pre-release becomes its release when the numbers after the part are 0 (semver)
        ("x-v2-0-0-rc-1", "x-v2-0-0", "x-v2-0-0", "x-v2-0-0"),
        ("x-v2-1-3-rc-1", "x-v2-1-3", "x-v2-2-0", "x-v3-0-0"),
        # build metadata is not carried over
        ("pric-v1-0-0--build5", "pric-v1-0-1", "pric-v1-1-0", "pric-v2-0-0"),
        # the name is the version part alone
        ("v1-2-3", "v1-2-4", "v1-3-0", "v2-0-0"),
        # a base with a version of its own: the last -v<number> starts the version
        ("api-v2-v1-0-0", "api-v2-v1-0-1", "api-v2-v1-1-0", "api-v2-v2-0-0"),
    ],
)
def test_bump_each_part(name, patch, minor, major):
    assert bump_name(name) == bump_name(name, "patch") == patch
    assert bump_name(name, "minor") == minor
    assert bump_name(name, "major") == major


def test_bump_matches_version_name_and_recuts_the_base():
    assert bump_name(krt.version_name("price-estimator", "1.4.2")) == krt.version_name(
        "price-estimator", "1.4.3"
    )
    # the part grows by one character: the base loses one
    assert bump_name("price-estima-v1-4-9") == "price-estim-v1-4-10"
    assert bump_name("price-estima-v1-4-9") == krt.version_name("price-estimator", "1.4.10")
    # when it shrinks, the base stays as the name had it (the rest of it is not in the name)
    assert bump_name("price-estim-v1-9-10", "minor") == "price-estim-v1-10-0"
    assert bump_name("price-estim-v1-10-0", "major") == "price-estim-v2-0-0"


def test_bump_pre_release():
    assert bump_name("x-v2-0-0-rc-1", "pre") == "x-v2-0-0-rc-2"
    assert bump_name("x-v2-0-0-rc-9", "pre") == "x-v2-0-0-rc-10"
    assert bump_name("x-v2-0-0-rc", "pre") == "x-v2-0-0-rc-1"
    assert bump_name("x-v2-0-0-a-1-b", "pre") == "x-v2-0-0-a-2-b"  # the last number
    with pytest.raises(SpecError) as info:
        bump_name("x-v2-0-0", "pre")
    assert str(info.value) == (
        "cannot bump 'x-v2-0-0': version 2.0.0 has no pre-release to bump: bump 'patch', "
        "'minor' or 'major'"
    )


def test_bump_refusals():
    with pytest.raises(SpecError) as info:
        bump_name("greeter")
    assert str(info.value) == (
        "cannot bump 'greeter': the name carries no version (it should end in "
        "-v<MAJOR>[-<MINOR>[-<PATCH>]], as krt.version_name(base, '1.0.0') gives: "
        "'greeter-v1-0-0')"
    )
    with pytest.raises(SpecError, match=r"no part 'pach' to bump; did you mean 'patch'\?"):
        bump_name("greeter-v1", "pach")
    with pytest.raises(SpecError, match="even without the base"):
        bump_name("v1-0-0-abcdefghijkl", "pre")  # 19 characters, and one more would be 20


def test_version_bump_renames_in_place_and_returns_the_name():
    v = krt.Version(krt.version_name("price-estimator", "1.4.2"))
    assert v.bump() == "price-estima-v1-4-3" == v.name
    assert v.bump("minor") == "price-estima-v1-5-0" == v.name
    assert v.bump("major") == "price-estima-v2-0-0" == v.name
    assert v.manifest().version == "price-estima-v2-0-0"
    plain = krt.Version("greeter")
    with pytest.raises(SpecError, match="the name carries no version"):
        plain.bump()
    assert plain.name == "greeter"  # a refused bump leaves the name alone


def test_next_free_name():
    assert default_part("greeter-v1") == "major"
    assert default_part("x-v1-4") == "minor"
    assert default_part("x-v1-4-2") == "patch"
    assert default_part("x-v1-4-2-rc-1") == "pre"
    assert default_part("greeter") is None
    assert next_free_name("greeter-v1", []) == "greeter-v2"
    assert next_free_name("greeter-v1", ["greeter-v2", "greeter-v3"]) == "greeter-v4"
    assert next_free_name("x-v1-4-2", ["x-v1-4-3"]) == "x-v1-4-4"
    assert next_free_name("x-v1-4-2", ["x-v1-4-3"], part="minor") == "x-v1-5-0"
    assert next_free_name("x-v2-0-0-rc-1", []) == "x-v2-0-0-rc-2"
    assert next_free_name("greeter", ["greeter"]) == "greeter-v2"  # unversioned: the first


# -- the runtime's names, checked before the upload ------------------------------------------


@pytest.fixture(scope="module")
def kai():
    from krtlab.deploy.standin import LocalKai

    with LocalKai(kube=False) as server:
        yield server


@pytest.fixture(scope="module")
def server(kai):
    from krtlab.deploy.kai import KaiServer

    return KaiServer(kai.url, api_token=kai.api_token)


@pytest.fixture(scope="module")
def deployed(server, examples):
    """greeter-v1, uploaded once (CREATED: nothing runs)."""
    from krtlab.deploy.deployment import deploy

    return deploy(examples / "greeter", server, start=False, timeout=120)


def listing(server) -> list[tuple[str, str, str]]:
    return [(i.name, i.status, i.creation_date) for i in server.versions()]


def test_a_name_the_runtime_has_is_refused_before_upload(server, deployed, examples):
    before = listing(server)
    assert ("greeter-v1", "CREATED", deployed.info.creation_date) in before
    v = krt.load(examples / "greeter")
    steps: list[str] = []
    with pytest.raises(DeployError) as info:
        v.deploy(server, start=False, timeout=120, progress=steps.append)
    err = info.value
    assert err.code == "version_duplicated"  # krtlab's check, not KRE's refusal
    assert err.message == (
        f"a version named 'greeter-v1' is already on {server.url} (status CREATED); KRE would "
        "refuse the upload with 'error version duplicated'"
    )
    assert err.details == (
        "nothing was uploaded; the next free name is 'greeter-v2': v.bump('major') sets it, or "
        "attach to the one there with Deployment('greeter-v1', server)"
    )
    # validated and built (errors in the version come first), never uploaded
    assert len(steps) == 1 and steps[0].startswith("built greeter-v1.krt")
    assert listing(server) == before

    # the suggestion is free: bump and deploy
    assert v.bump("major") == "greeter-v2"
    dep = v.deploy(server, start=False, timeout=120)
    assert dep.info.status == "CREATED"
    assert [n for n, *_ in listing(server)] == [n for n, *_ in before] + ["greeter-v2"]


def test_the_next_free_name_skips_the_taken_ones(server, deployed, examples):
    from krtlab.deploy.deployment import deploy

    if "greeter-v2" not in [n for n, *_ in listing(server)]:  # run alone
        v2 = krt.load(examples / "greeter")
        v2.name = "greeter-v2"
        deploy(v2, server, start=False, timeout=120)
    before = listing(server)
    v = krt.load(examples / "greeter")
    with pytest.raises(DeployError) as info:
        deploy(v, server)
    # two bumps away: v.bump() alone would not reach it
    assert info.value.details.startswith(
        "nothing was uploaded; the next free name is 'greeter-v3': v.name = 'greeter-v3',"
    )
    assert listing(server) == before


def test_krtlab_deploy_path_is_refused_before_upload(kai, server, deployed, examples, capsys):
    from krtlab.deploy.cli_deploy import register

    parser = argparse.ArgumentParser(prog="krtlab")
    commands = register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["deploy", str(examples / "greeter"), "--no-start", "--server",
                              kai.url, "--token", kai.api_token])  # fmt: skip
    before = listing(server)
    assert commands["deploy"](args) == 1
    captured = capsys.readouterr()
    assert "built greeter-v1.krt" in captured.out and "uploading" not in captured.out
    assert "krtlab deploy: deploying greeter-v1: a version named 'greeter-v1' is already on" in (
        captured.err
    )
    assert "rename it to 'greeter-v" in captured.err
    assert "(`version:` in krt.yml, or the name a script gives it)" in captured.err
    assert listing(server) == before


def test_kres_own_refusal_is_still_explained(server, deployed, examples):
    # the race the check cannot see (another upload in between): KRE refuses, krtlab explains
    from krtlab.deploy.deployment import build_bytes

    before = listing(server)
    with pytest.raises(DeployError) as info:
        server.create_version(build_bytes(krt.load(examples / "greeter")))
    assert info.value.message == "error version duplicated"
    assert "a version named 'greeter-v1' is already on the server (status CREATED)" in (
        info.value.details
    )
    assert listing(server) == before
