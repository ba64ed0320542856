"""KRE's naming and reference rules at their edges (``krtlab.spec.rules``): the suggestions a
user is offered and the repository krtlab reads an image as."""

from __future__ import annotations

import pytest

from krtlab.spec import rules


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("a - b", "a-b"),  # a run of dashes becomes one
        ("-" + "a" * 19, "a" * 19),  # leading dashes go before the 19-character cut
        ("x" * 18 + " y", "x" * 18),  # a dash left at the cut goes too
        ("--", "node"),
    ],
)
def test_a_suggested_name_is_a_valid_resource_name(text, name):
    assert rules.to_resource_name(text) == name
    assert rules.check_resource_name(rules.to_resource_name(text)) is None


@pytest.mark.parametrize(
    ("ref", "repository"),
    [
        ("registry.example.com:5000/team/model:1.0", "registry.example.com:5000/team/model"),
        ("konstellation/kre-py@sha256:aa@bb", "konstellation/kre-py"),  # from the first '@'
        ("img:1:2", "img"),  # from the last component's first ':'
    ],
)
def test_the_repository_of_an_image_reference(ref, repository):
    assert rules.image_repository(ref) == repository


def test_krt_yml_names_are_kres_pattern():
    assert rules.is_krt_yml_name("krt.yml") and rules.is_krt_yml_name("docs/krt.yaml")
    assert not rules.is_krt_yml_name("mykrt.yml") and not rules.is_krt_yml_name("krt.yml.bak")
