"""What KRE 7's admin API checks in an uploaded .krt, with its own messages.

:func:`check_sync` is ``createVersion``'s synchronous part (krt.yml found, yaml.v2 unmarshal into
the ``Krt`` Go struct, go-playground validator tags, workflow references); :func:`check_content`
the asynchronous part run while the version is ``CREATING`` (extraction and src paths). The Go
struct is emulated rather than mapped from krtlab's findings because KRE reports the validator's
errors in struct-field order, with Go field names, and stops at the first failing tag per field.
"""

from __future__ import annotations

import gzip
import io
import posixpath
import tarfile
from typing import Any

import yaml

from krtlab.bundle.archive import (
    krt_yml_member,
    krt_yml_tarinfo,
    krt_yml_unpack_error,
    missing_directory_entries,
    read_krt,
)
from krtlab.errors import BundleError
from krtlab.spec.rules import (
    KRE_NAME_LT,
    RESOURCE_NAME_HELP,
    check_env_var,
    is_krt_yml_name,
    name_problem,
)

__all__ = ["KrtValidationError", "check_content", "check_sync"]


class KrtValidationError(Exception):
    """The validator's struct errors; the API turns them into ``krt_validation_error``."""

    def __init__(self, details: str) -> None:
        super().__init__("the krt.yml file contains errors")
        self.details = details


# Go types of the Krt struct: (yaml key, Go field, type); a str type is a Go scalar.
_NODE = ("krt.Node", [("name", "Name", "string"), ("image", "Image", "string"),
                      ("src", "Src", "string"), ("gpu", "GPU", "bool")])  # fmt: skip
_WORKFLOW = ("krt.Workflow", [("name", "Name", "string"), ("entrypoint", "Entrypoint", "string"),
                              ("sequential", "Sequential", ["string"])])  # fmt: skip
_KRT = ("krt.Krt", [
    ("version", "Version", "string"), ("description", "Description", "string"),
    ("entrypoint", "Entrypoint", ("krt.Entrypoint", [("proto", "Proto", "string"),
                                                     ("image", "Image", "string")])),
    ("config", "Config", ("krt.Config", [("variables", "Variables", ["string"]),
                                         ("files", "Files", ["string"])])),
    ("nodes", "Nodes", [_NODE]), ("workflows", "Workflows", [_WORKFLOW]),
])  # fmt: skip


def _go_name(spec: Any) -> str:
    if isinstance(spec, list):
        return "[]" + _go_name(spec[0])
    return spec if isinstance(spec, str) else spec[0]


def _short_tag(tag: str) -> str:
    return "!!" + tag.rsplit(":", 1)[-1] if tag.startswith("tag:yaml.org,2002:") else tag


def _decode(node: yaml.Node | None, spec: Any, errors: list[str]) -> Any:
    """yaml.v2's Unmarshal into ``spec``: unknown keys ignored, scalars into strings kept raw."""
    null = node is None or (
        isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"
    )
    zero: Any = None if isinstance(spec, list) else ("" if spec == "string" else False)
    if isinstance(spec, tuple):
        zero = {go: _decode(None, sub, errors) for _key, go, sub in spec[1]}
    if null:
        return zero
    assert node is not None
    kinds: dict[type, bool] = {
        list: isinstance(node, yaml.SequenceNode),
        tuple: isinstance(node, yaml.MappingNode),
        str: isinstance(node, yaml.ScalarNode),
    }
    kind_ok = kinds[type(spec)]
    if spec == "bool" and kind_ok:
        kind_ok = node.tag == "tag:yaml.org,2002:bool"
    if not kind_ok:
        shown = ""
        if isinstance(node, yaml.ScalarNode):
            value = node.value if len(node.value) <= 10 else node.value[:7] + "..."
            shown = f" `{value}`"
        errors.append(
            f"line {node.start_mark.line + 1}: cannot unmarshal {_short_tag(node.tag)}"
            f"{shown} into {_go_name(spec)}"
        )
        return zero
    if isinstance(spec, list):
        return [_decode(item, spec[0], errors) for item in node.value]
    if isinstance(spec, tuple):
        out = dict(zero)
        for knode, vnode in node.value:
            for key, go, sub in spec[1]:
                if isinstance(knode, yaml.ScalarNode) and knode.value == key:
                    out[go] = _decode(vnode, sub, errors)
        return out
    if spec == "bool":
        return node.value.lower() in ("true", "yes", "on", "y")
    return node.value


def _find_krt_yml(data: bytes) -> bytes:
    """KRE's extractKrtYaml: the first entry matching ``(^|/)krt.ya?ml$`` (read, not extracted;
    a nested one fails as KRE fails to write it)."""
    try:
        raw = gzip.decompress(data)
    except (OSError, EOFError) as exc:
        raise ValueError(f"error Decompressing KRT file: gzip: {exc}") from None
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
            info = krt_yml_tarinfo(tar)
            if info is not None:
                unpack_error = krt_yml_unpack_error(info.name)
                if unpack_error:
                    raise ValueError(unpack_error)
                f = tar.extractfile(info)
                return f.read() if f is not None else b""
    except tarfile.TarError as exc:
        raise ValueError(f"error reading krt file: {exc}") from None
    raise ValueError("error krt.yml file missing")


def check_sync(data: bytes) -> dict[str, Any]:
    """Parse and validate a .krt's krt.yml as KRE 7 does; return the ``Krt`` struct as a dict.

    Raises:
        KrtValidationError: validator errors (``details`` is KRE's text).
        ValueError: any other refusal, with KRE's message.
    """
    try:
        text = _find_krt_yml(data)
    except ValueError as exc:
        raise ValueError(f"error on KRT Yaml extraction: {exc}") from None
    try:
        root = yaml.compose(text.decode("utf-8", "replace"), Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 0
        msg = f"error Unmarshal yaml file: yaml: line {line}: {exc.problem}"
        raise ValueError(f"error on KRT Yaml parsing: {msg}") from None
    errors: list[str] = []
    krt = _decode(root, _KRT, errors)
    if errors:
        raise ValueError(
            "error on KRT Yaml parsing: error Unmarshal yaml file: yaml: unmarshal errors:\n  "
            + "\n  ".join(errors)
        )
    problems = _struct_errors(krt)
    if problems:
        raise KrtValidationError(_details(problems))
    names = {n["Name"] for n in krt["Nodes"] or []}
    for wf in krt["Workflows"] or []:
        for name in wf["Sequential"] or []:
            if name not in names:
                raise ValueError(
                    f"error on KRT Workflow validation: node in sequential not found: {name}"
                )
    return krt


def _name_tags(value: str, ns: str) -> tuple[str, str, str] | None:
    if value == "":
        return ("required", ns, value)
    tag = name_problem(value)
    return None if tag is None else (tag, ns, value)


def _struct_errors(krt: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Failing (tag, namespace, value) in the validator's order: fields as declared, depth first."""
    out: list[tuple[str, str, str] | None] = [_name_tags(krt["Version"], "Version")]
    out.append(("required", "Description", "") if not krt["Description"] else None)
    ep = krt["Entrypoint"]
    if not ep["Proto"]:
        out.append(("required", "Entrypoint.Proto", ""))
    elif not ep["Proto"].endswith(".proto"):
        out.append(("endswith", "Entrypoint.Proto", ep["Proto"]))
    out.append(("required", "Entrypoint.Image", "") if not ep["Image"] else None)
    for i, var in enumerate(krt["Config"]["Variables"] or []):
        if check_env_var(var) is not None:
            out.append(("env", f"Config.Variables[{i}]", var))
    for kind, extra in (("Nodes", ("Image", "Src")), ("Workflows", ("Entrypoint",))):
        if krt[kind] is None:
            out.append(("required", kind, ""))
            continue
        for i, item in enumerate(krt[kind]):
            out.append(_name_tags(item["Name"], f"{kind}[{i}].Name"))
            out += [("required", f"{kind}[{i}].{f}", "") for f in extra if not item[f]]
            if kind == "Workflows" and item["Sequential"] is None:
                out.append(("required", f"{kind}[{i}].Sequential", ""))
    return [p for p in out if p is not None]


def _details(problems: list[tuple[str, str, str]]) -> str:
    text = "The krt.yml file contains the following validation errors:"
    for tag, ns, value in problems:
        if tag == "required":
            text += f'\n  - The field "{ns}" is required'
        elif tag == "lt":
            text += f'\n  - Invalid length "{value}" at "{ns}" must be lower than {KRE_NAME_LT}'
        elif tag == "resource-name":
            text += f'\n  - Invalid resource name "{value}" at "{ns}"'
        else:  # the validator's own FieldError text, as KRE prints it
            field = ns.rsplit(".", 1)[-1]
            text += (
                f"\n  - Key: 'Krt.{ns}' Error:Field validation for '{field}' failed on the "
                f"'{tag}' tag"
            )
    if any(p[0] == "resource-name" for p in problems):
        text += "\n" + RESOURCE_NAME_HELP
    return text


def check_content(data: bytes, krt: dict[str, Any]) -> tuple[list[str], bool]:
    """The asynchronous checks: ``(errors, has_doc)``; errors empty means ``CREATED``."""
    try:
        members = read_krt(data)
        missing = missing_directory_entries(data)
    except BundleError as exc:
        return ["error processing krt", f"error on KRT content extraction: {exc}"], False
    if missing:
        first = next(m for m in members if m.startswith(missing[0] + "/"))
        return [
            "error processing krt",
            "error on KRT content extraction: error creating krt file "
            f"{first}: open {first}: no such file or directory",
        ], False
    # the content extractor skips every entry named like krt.yml: only the one extractKrtYaml
    # wrote before (into the same folder) is there
    extracted = {name for name in members if not is_krt_yml_name(name)}
    extracted.update(name for name in [krt_yml_member(members)] if name and "/" not in name)
    errors = [
        f"error src File {n['Src']} for node {n['Name']} not exists "
        for n in krt["Nodes"] or []
        if posixpath.normpath(n["Src"]).lstrip("/") not in extracted
    ]
    if errors:
        errors = ["error processing krt", "error on KRT Src validation", *errors]
    return errors, "docs/README.md" in members
