"""The naming and reference rules of krtlab/spec/rules.py, with the reasons users read."""

from __future__ import annotations

import pytest

from krtlab.spec import rules

SHA256 = "sha256:" + "a" * 64


@pytest.mark.parametrize("name", ["a", "greeter-v1", "a1", "1a", "a-b-c", "x" * 19])
def test_valid_resource_names(name):
    assert rules.check_resource_name(name) is None


@pytest.mark.parametrize("name", ["A", "greeter_v1", "-a", "a-", "a.b", "", "grüße"])
def test_invalid_resource_names_say_what_is_allowed(name):
    assert rules.check_resource_name(name) == (
        "must contain only lowercase letters, digits and '-', and start and end with one"
    )


def test_a_name_of_20_characters_is_too_long_and_says_its_length():
    assert rules.check_resource_name("x" * 20) == "is 20 characters long; KRE allows at most 19"
    assert rules.check_resource_name("a-" * 15 + "a") == (
        "is 31 characters long; KRE allows at most 19"
    )


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("My ETL_v1.2", "my-etl-v12"),
        ("greeter", "greeter"),
        ("--Greeter--", "greeter"),
        ("a  b__c", "a-b-c"),
        ("price estimator model v2", "price-estimator-mod"),  # cut to 19
        ("price-estimator-mo-del", "price-estimator-mo"),  # no '-' left at the cut
        ("___", "node"),
        ("", "node"),
    ],
)
def test_to_resource_name_suggests_a_valid_name(text, name):
    assert rules.to_resource_name(text) == name
    assert rules.check_resource_name(name) is None


@pytest.mark.parametrize("name", ["A", "OUTPUT_CURRENCY", "A1", "1A", "A__B", "A" * 100])
def test_valid_config_names(name):
    assert rules.check_env_var(name) is None


@pytest.mark.parametrize("name", ["A_", "_A", "_", "a", "Output", "A-B", "A.B", "A B", ""])
def test_invalid_config_names_say_what_is_allowed(name):
    assert rules.check_env_var(name) == "must contain only capital letters, digits and underscores"


@pytest.mark.parametrize(
    ("name", "ok"),
    [("A", True), ("_a", True), ("model_file", True), ("a1", True), ("1a", False),
     ("model-file", False), ("a.b", False), ("", False)],
)  # fmt: skip
def test_kubernetes_passes_only_c_identifiers_to_the_environment(name, ok):
    assert rules.is_env_name(name) is ok


@pytest.mark.parametrize(
    "ref",
    [
        "konstellation/kre-py:1.23.0",
        "python",
        "registry.example.com:5000/team/img:v1",
        "localhost/a/b/c",
        "Registry.Example.com/img",  # a domain may have capitals
        "a__b/c.d-e",
        f"python@{SHA256}",
        f"konstellation/kre-py:1.23.0@{SHA256}",
        "img:" + "t" * 128,
    ],
)
def test_valid_image_references(ref):
    assert rules.check_image_reference(ref) is None


@pytest.mark.parametrize(
    ("ref", "reason"),
    [
        ("", "repository name must have at least one component"),
        ("konstellation/KRE-py:1.23.0", "repository name must be lowercase"),
        ("KRE-py", "repository name must be lowercase"),
        ("kre py", "invalid reference format"),
        ("img:" + "t" * 129, "invalid reference format"),
        ("img:", "invalid reference format"),
        ("/img", "invalid reference format"),
        ("a" * 256, "repository name must not be more than 255 characters"),
        ("img@sha256:" + "a" * 63, "invalid checksum digest length"),
        ("img@sha512:" + "a" * 64, "invalid checksum digest length"),
        ("img@sha256:" + "A" * 64, "invalid checksum digest format"),
        ("img@md5:" + "a" * 32, "unsupported digest algorithm"),
        ("img@Sha256:" + "a" * 64, "invalid checksum digest format"),
    ],
)
def test_invalid_image_references_give_docker_distributions_reason(ref, reason):
    assert rules.check_image_reference(ref) == reason


def test_the_255_character_limit_is_on_the_name_only():
    name = "a" * 255
    assert rules.check_image_reference(name) is None
    assert rules.check_image_reference(name + ":tag") is None
    assert rules.check_image_reference(f"{name}@{SHA256}") is None
    assert rules.check_image_reference(name + "a") is not None


@pytest.mark.parametrize(
    ("ref", "repository"),
    [
        ("konstellation/kre-py:1.23.0", "konstellation/kre-py"),
        ("docker.io/konstellation/kre-py:1.23.0", "konstellation/kre-py"),
        ("index.docker.io/konstellation/kre-go", "konstellation/kre-go"),
        ("docker.io/library/python:3.9", "python"),
        ("library/python", "python"),
        ("registry.example.com:5000/team/img:v1", "registry.example.com:5000/team/img"),
        ("registry:5000/img", "registry:5000/img"),
        (f"konstellation/kre-py@{SHA256}", "konstellation/kre-py"),
        (f"konstellation/kre-py:1.23.0@{SHA256}", "konstellation/kre-py"),
        ("my.docker.io/img", "my.docker.io/img"),
    ],
)
def test_image_repository_drops_tag_digest_and_docker_hub_prefixes(ref, repository):
    assert rules.image_repository(ref) == repository


@pytest.mark.parametrize(
    ("image", "kind"),
    [
        ("konstellation/kre-py:1.23.0", "python"),
        ("docker.io/konstellation/kre-py:2.1.2", "python"),
        ("konstellation/kre-go:1.11.0", "go"),
        (f"konstellation/kre-go@{SHA256}", "go"),
        ("konstellation/kre-entrypoint:1.7.1", "custom"),
        ("registry.example.com/konstellation/kre-py:1.23.0", "custom"),
        ("python:3.9", "custom"),
    ],
)
def test_runner_kind_reads_the_image_repository(image, kind):
    assert rules.runner_kind(image) == kind
