"""What ``krtlab.spec.names`` suggests when a tag or a name cannot be read, exactly."""

from __future__ import annotations

import pytest

from krtlab.errors import SpecError
from krtlab.spec.names import bump_name, parse_tag

FORM = "MAJOR[.MINOR[.PATCH]][-PRERELEASE][+BUILD], e.g. '1.4.2' or '2.0.0-rc.1'"
NO_VERSION = (
    "the name carries no version (it should end in -v<MAJOR>[-<MINOR>[-<PATCH>]], as "
    "krt.version_name(base, '1.0.0') gives: {!r})"
)


@pytest.mark.parametrize(
    ("version", "hint"),
    [
        ("release 1.2.3-RC1", "; did you mean '1.2.3-rc1'?"),
        ("1.2.3-rc.", "; did you mean '1.2.3-rc'?"),
        ("1_2_3", "; did you mean '1.2.3'?"),
        ("latest", ""),
        ("1.2.3.4!", ""),
    ],
)
def test_a_tag_that_is_not_one_gets_the_tag_it_seems_to_hold(version, hint):
    with pytest.raises(SpecError) as info:
        parse_tag(version)
    assert str(info.value) == f"version {version!r} is not a version tag: expected {FORM}{hint}"


@pytest.mark.parametrize(
    ("name", "example"),
    [
        ("model", "model-v1-0-0"),
        ("MODEL", "model-v1-0-0"),
        ("My Model", "my-model-v1-0-0"),
        ("7", "7-v1-0-0"),
        ("---", "greeter-v1-0-0"),
        ("", "greeter-v1-0-0"),
    ],
)
def test_bumping_a_name_without_a_version_shows_the_name_it_could_have(name, example):
    with pytest.raises(SpecError) as info:
        bump_name(name)
    assert str(info.value) == f"cannot bump {name!r}: " + NO_VERSION.format(example)


def test_bumping_what_is_not_a_name_shows_the_example_name():
    with pytest.raises(SpecError) as info:
        bump_name(123)  # type: ignore[arg-type]
    assert str(info.value) == "cannot bump 123: " + NO_VERSION.format("greeter-v1-0-0")
