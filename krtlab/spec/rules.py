"""The naming and reference rules KRE and kli apply, written as plain functions.

Each check returns ``None`` when the value is fine, or a short reason. The wording of KRE's own
messages lives here too, so findings can quote KRE exactly.
"""

from __future__ import annotations

import re
from typing import Literal

__all__ = [
    "DEFAULT_ENTRYPOINT_IMAGE",
    "DEFAULT_PY_IMAGE",
    "ENV_VAR_RE",
    "KRE_NAME_LT",
    "KRT_YML_PATTERN",
    "MAX_NAME_LENGTH",
    "RESOURCE_NAME",
    "RESOURCE_NAME_HELP",
    "RESOURCE_NAME_RE",
    "check_env_var",
    "check_image_reference",
    "check_resource_name",
    "image_repository",
    "is_krt_yml_name",
    "name_problem",
    "runner_kind",
    "to_resource_name",
]

# This module is the one place that writes KRE's naming rules down: authoring (krtlab.Version,
# nodes, workflows, config keys), krt.yml validation, version names (krtlab.spec.names), the
# CLI and the KRE stand-in all check names through the functions below.

# engine/admin-api/domain/usecase/krt/validations.go (kre-1.0.0 … kre-7.0.0). Go's `$` never
# matches before a trailing newline (Python's does), so the checks below match whole strings:
# use them rather than ``RESOURCE_NAME_RE.match``.
#: A KRE resource name, as a regex fragment (for patterns that embed one).
RESOURCE_NAME = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
RESOURCE_NAME_RE = re.compile(rf"^{RESOURCE_NAME}$")
ENV_VAR_RE = re.compile(r"^[A-Z0-9]([_A-Z0-9]*[A-Z0-9])?$")
#: The validator tag on version, node and workflow names: ``lt=20`` (quoted in KRE's messages).
KRE_NAME_LT = 20
#: ``lt=20`` on a string: at most 19 characters.
MAX_NAME_LENGTH = KRE_NAME_LT - 1

#: KRE's ``regexp.MustCompile("(^|/)krt.ya?ml$")`` (``extractKrtYaml`` picks the first tar entry
#: it matches; ``extractKrtFile`` skips every entry it matches), reproduced literally: the dot is
#: unescaped, so ``krtxyml`` matches too. ``\Z`` stands for Go's ``$``.
KRT_YML_PATTERN = re.compile(r"(^|/)krt.ya?ml\Z")

DEFAULT_PY_IMAGE = "konstellation/kre-py:1.23.0"
DEFAULT_GO_IMAGE = "konstellation/kre-go:1.11.0"
DEFAULT_ENTRYPOINT_IMAGE = "konstellation/kre-entrypoint:1.7.1"

RESOURCE_NAME_HELP = (
    "The resource names must contain only lowercase alphanumeric characters or '-', "
    "e.g. my-resource-name."
)


def name_problem(name: str) -> Literal["resource-name", "lt"] | None:
    """The first of KRE's validator tags a version, node or workflow name fails, or None.

    The tags are checked in KRE's order (``resource-name`` then ``lt=20``); an empty name is
    the caller's business (KRE's ``required``).
    """
    if RESOURCE_NAME_RE.fullmatch(name) is None:
        return "resource-name"
    if len(name) > MAX_NAME_LENGTH:
        return "lt"
    return None


def check_resource_name(name: str) -> str | None:
    """Why ``name`` is not a valid KRE resource name, or None."""
    problem = name_problem(name)
    if problem == "resource-name":
        return "must contain only lowercase letters, digits and '-', and start and end with one"
    if problem == "lt":
        return f"is {len(name)} characters long; KRE allows at most {MAX_NAME_LENGTH}"
    return None


def is_krt_yml_name(path: str) -> bool:
    """Whether KRE takes an archive entry named ``path`` for a krt.yml (:data:`KRT_YML_PATTERN`).

    Which entry KRE *reads* is :func:`krtlab.bundle.archive.krt_yml_member`'s business."""
    return KRT_YML_PATTERN.search(path) is not None


def to_resource_name(text: str) -> str:
    """A valid resource name close to ``text`` (for hints): ``My ETL_v1.2`` → ``my-etl-v12``."""
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower().replace(".", "")).strip("-")
    name = re.sub(r"-{2,}", "-", name)[:MAX_NAME_LENGTH].strip("-")
    return name or "node"


def check_env_var(name: str) -> str | None:
    """Why ``name`` is not a valid config variable/file name (KRE's ``env`` tag), or None."""
    if ENV_VAR_RE.fullmatch(name) is None:
        return "must contain only capital letters, digits and underscores"
    return None


_C_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def is_env_name(name: str) -> bool:
    """Whether Kubernetes passes ``name`` from a ConfigMap to a container's environment
    (``envFrom`` skips keys that are not C identifiers)."""
    return bool(_C_IDENTIFIER.match(name))


# github.com/docker/distribution/reference grammar (v2.7.1, what kli's krt-utils uses), written out
# as regexes (ASCII classes, as Go's). Matched whole: Go's `$` does not let a trailing newline by.
_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]*)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*(?::[0-9]+)?"
_NAME = rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE_RE = re.compile(
    rf"(?P<name>{_NAME})(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?", re.ASCII
)
# github.com/opencontainers/go-digest v1.0.0 (digest.go, algorithm.go)
_GO_DIGEST_RE = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+", re.ASCII)
_DIGEST_HEX_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}


def check_image_reference(ref: str) -> str | None:
    """Why ``ref`` is not a valid Docker image reference (kli's check), or None.

    The reasons are the exact errors of docker/distribution v2.7.1's ``reference.Parse`` (and of
    go-digest v1.0.0 for a ``@digest``), as kli prints them after ``node image error: ``.
    """
    if not ref:
        return "repository name must have at least one component"
    m = _REFERENCE_RE.fullmatch(ref)
    if m is None:
        if _REFERENCE_RE.fullmatch(ref.lower()):
            return "repository name must be lowercase"
        return "invalid reference format"
    if len(m.group("name")) > 255:
        return "repository name must not be more than 255 characters"
    digest = m.group("digest")
    if digest:
        algorithm, _, encoded = digest.partition(":")
        length = _DIGEST_HEX_LENGTHS.get(algorithm)
        if length is None:
            if not _GO_DIGEST_RE.fullmatch(digest):
                return "invalid checksum digest format"
            return "unsupported digest algorithm"
        if len(encoded) != length:
            return "invalid checksum digest length"
        if not re.fullmatch(r"[a-f0-9]+", encoded):
            return "invalid checksum digest format"
    return None


def image_repository(ref: str) -> str:
    """``konstellation/kre-py:1.23.0`` → ``konstellation/kre-py`` (docker.io prefixes dropped)."""
    name = ref.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: len(name) - len(last)] + last.split(":", 1)[0]
    for prefix in ("docker.io/", "index.docker.io/"):
        if name.startswith(prefix):
            name = name[len(prefix) :]
    if name.startswith("library/"):
        name = name[len("library/") :]
    return name


def runner_kind(image: str, src: str = "") -> str:
    """``"python"``, ``"go"`` or ``"custom"`` for a node image (src breaks ties for custom ones)."""
    repo = image_repository(image)
    if repo == "konstellation/kre-py":
        return "python"
    if repo == "konstellation/kre-go":
        return "go"
    return "custom"
