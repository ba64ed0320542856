"""Validation: every rule KRE's admin API and kli apply, plus what KRE silently accepts and then
breaks at run time.

:func:`validate` looks at krt.yml (as parsed with line numbers) and at whatever facts it is given
about files, the proto and node contracts; each missing fact simply skips the checks that need it.
Rules are small functions, one concern each: the shape of krt.yml lives in
:mod:`krtlab.spec.structure`, the contract checks in :mod:`krtlab.spec.contracts`.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from typing import Any

from krtlab.spec import rules
from krtlab.spec.checker import Checker, go_path, go_text, unmarshal_error
from krtlab.spec.facts import FileFacts, NodeContract, NodeEnv, ProtoFacts, SourceFacts
from krtlab.spec.findings import Location, Report
from krtlab.spec.model import Manifest
from krtlab.spec.structure import check_structure
from krtlab.spec.suggest import did_you_mean
from krtlab.spec.yamlsrc import ParsedYaml

__all__ = ["Checker", "validate"]


def validate(
    parsed: ParsedYaml | None,
    *,
    manifest_file: str = "krt.yml",
    files: Mapping[str, FileFacts] | None = None,
    proto: ProtoFacts | None = None,
    sources: Mapping[str, SourceFacts] | None = None,
    contracts: Mapping[str, NodeContract] | None = None,
    envs: Mapping[str, NodeEnv] | None = None,
    subject: str = "",
) -> Report:
    """Validate a krt.yml and what is known about the rest of the project.

    Args:
        parsed: krt.yml as parsed by :func:`krtlab.spec.yamlsrc.parse_yaml`.
        manifest_file: the name to report for krt.yml findings.
        files: every path in the project (folders included) with its facts; None skips file checks.
        proto: facts from compiling the entrypoint proto; None skips proto and contract checks.
        sources: facts about Python node sources, keyed by ``src`` path.
        contracts: node name → message types (from type hints or declared); nodes without one
            fall back to what their source shows.
        envs: node name → what it runs on beyond krt.yml (its custom image's base, declared
            requirements); see :class:`~krtlab.spec.facts.NodeEnv`.
        subject: a name for the report ("greeter-v1").
    """
    check = Checker(parsed, manifest_file)
    data = parsed.data if parsed is not None else None
    if not isinstance(data, dict):
        found = "empty" if data is None else f"a {type(data).__name__}"
        check.error(
            "yaml.not_mapping",
            f"krt.yml must be a mapping with version, description, entrypoint, nodes and "
            f"workflows; this one is {found}",
            kre=unmarshal_error(check, (), data),
        )
        return Report.of(check.findings, subject)

    check_structure(check, data)
    manifest = Manifest.from_data(data)
    _check_names(check, data, manifest)
    _check_references(check, manifest)
    if files is not None:
        _check_files(check, manifest, files)
    from krtlab.spec.contracts import check_contracts, check_sources

    check_sources(check, manifest, files, sources or {}, envs)
    if proto is not None:
        check_contracts(check, manifest, proto, sources or {}, contracts or {})
    return Report.of(check.findings, subject or manifest.version)


# -- names --------------------------------------------------------------------------------------


def _check_name(check: Checker, value: Any, loc: Location, what: str) -> None:
    if not isinstance(value, (str, int, float)) or isinstance(value, bool) or value == "":
        return
    name = go_text(check, loc, value)
    problem = rules.name_problem(name)
    if problem == "resource-name":
        check.error(
            "name.invalid",
            f"{what} {name!r} is not a valid resource name: lowercase letters, digits and '-' "
            "only, starting and ending with a letter or digit",
            loc,
            hint=f"try {rules.to_resource_name(name)!r}",
            kre=f'KRE 7: Invalid resource name "{name}" at "{go_path(loc)}"',
        )
    elif problem == "lt":
        check.error(
            "name.too_long",
            f"{what} {name!r} is {len(name)} characters long; KRE allows at most "
            f"{rules.MAX_NAME_LENGTH} (it is used in Kubernetes object names)",
            loc,
            hint=f"try {rules.to_resource_name(name)!r}",
            kre=(
                f'KRE 7: Invalid length "{name}" at "{go_path(loc)}" must be lower than '
                f"{rules.KRE_NAME_LT}"
            ),
        )


def _check_names(check: Checker, data: dict[Any, Any], manifest: Manifest) -> None:
    _check_name(check, data.get("version"), ("version",), "version name")
    for kind in ("nodes", "workflows"):
        items = data.get(kind)
        if isinstance(items, list):
            for i, item in enumerate(items):
                if isinstance(item, dict):
                    _check_name(check, item.get("name"), (kind, i, "name"), f"{kind[:-1]} name")

    config = data.get("config")
    cfg: dict[Any, Any] = config if isinstance(config, dict) else {}
    for key in ("variables", "files"):
        items = cfg.get(key)
        for i, name in enumerate(items if isinstance(items, list) else []):
            if not (isinstance(name, str) and rules.check_env_var(name)):
                continue
            loc = ("config", key, i)
            hint = f"try {name.upper().replace('-', '_').replace('.', '_')!r}"
            # the validator's own FieldError text (KRE 7's resolver has no case of its own for
            # `env`); kli's struct is `File`, which its "Krt." trimming leaves in place
            field = f"{key.title()}[{i}]"
            failed = f"Error:Field validation for '{field}' failed on the 'env' tag"
            if key == "variables":  # KRE's admin API refuses it (the `env` tag)
                check.error(
                    "config.invalid_name",
                    f"config variable {name!r} is not an environment variable name: capital "
                    "letters, digits and '_' only",
                    loc,
                    hint=hint,
                    kre=f"KRE 7: Key: 'Krt.Config.{field}' {failed}",
                )
            elif rules.is_env_name(name):  # only kli checks files; lower case still reaches pods
                check.warning(
                    "config.invalid_name",
                    f"config file {name!r} is not in capitals: `kli krt validate` refuses it, "
                    f"KRE accepts it and the nodes get it as the environment variable {name!r}",
                    loc,
                    hint=hint,
                    kre=f"kli: Key: 'File.Config.{field}' {failed}",
                )
            else:  # Kubernetes skips such keys of a ConfigMap's envFrom: the value never arrives
                check.error(
                    "config.invalid_name",
                    f"config file {name!r} cannot be an environment variable: Kubernetes skips "
                    "it when it passes the config to the nodes, so they never see the value",
                    loc,
                    hint=hint,
                    kre=f"kli: Key: 'File.Config.{field}' {failed}",
                )
    seen: dict[str, int] = {}
    for key in ("variables", "files"):
        items = cfg.get(key)
        for i, name in enumerate(items if isinstance(items, list) else []):
            if isinstance(name, str):
                if name in seen:
                    check.error(
                        "config.duplicate",
                        f"config name {name!r} is declared twice",
                        ("config", key, i),
                    )
                seen[name] = i

    entrypoint = data.get("entrypoint")
    ep: dict[Any, Any] = entrypoint if isinstance(entrypoint, dict) else {}
    proto = ep.get("proto")
    if isinstance(proto, str) and proto and not proto.endswith(".proto"):
        check.error(
            "entrypoint.proto_suffix",
            f"entrypoint.proto {proto!r} must name a .proto file",
            ("entrypoint", "proto"),
            hint="public_input.proto",
            kre="KRE 7: Key: 'Krt.Entrypoint.Proto' Error:Field validation for 'Proto' failed on "
            "the 'endswith' tag",
        )
    image = ep.get("image")
    if isinstance(image, str) and image:
        _check_image(check, image, ("entrypoint", "image"), "entrypoint")
    for i, node in enumerate(manifest.nodes):
        if node.image:
            _check_image(check, node.image, ("nodes", i, "image"), "node")


def _check_image(check: Checker, image: str, loc: Location, who: str) -> None:
    reason = rules.check_image_reference(image)
    if reason:
        check.error(
            "image.invalid",
            f"{image!r} is not a valid image reference: {reason}",
            loc,
            # kli only (krt-utils validator.go validateImages); KRE's admin API takes any text
            kre=f"kli: error validating KRT images: {who} image error: {reason}",
        )


# -- references between parts -------------------------------------------------------------------


def _not_found_quote(check: Checker, loc: Location, name: str) -> str | None:
    """KRE 7's refusal of a sequential entry naming no node (a scalar's text as yaml.v2 keeps
    it); None for a mapping or list entry, which KRE refuses earlier, as an unmarshal error."""
    scalar = check.parsed.scalars.get(loc) if check.parsed is not None else None
    if check.parsed is not None and scalar is None:
        return None
    text = scalar[1] if scalar is not None else name
    return f"KRE 7: error on KRT Workflow validation: node in sequential not found: {text}"


def _check_references(check: Checker, manifest: Manifest) -> None:
    names = [n.name for n in manifest.nodes]
    first: dict[str, int] = {}
    for i, name in enumerate(names):
        if name and name in first:
            check.error(
                "node.duplicate",
                f"node {name!r} is defined twice (nodes[{first[name]}] and nodes[{i}]); KRE "
                "silently keeps the last definition",
                ("nodes", i, "name"),
            )
        first.setdefault(name, i)

    used: set[str] = set()
    wf_names: dict[str, int] = {}
    rpcs: dict[str, int] = {}
    for i, wf in enumerate(manifest.workflows):
        for j, name in enumerate(wf.sequential):
            used.add(name)
            if name and name not in first:
                check.error(
                    "sequential.unknown_node",
                    f"workflow {wf.name!r} runs node {name!r}, which is not defined in 'nodes'",
                    ("workflows", i, "sequential", j),
                    hint=did_you_mean(name, names)
                    or f"defined nodes: {', '.join(names) or 'none'}",
                    kre=_not_found_quote(check, ("workflows", i, "sequential", j), name),
                )
        if wf.name:
            if wf.name in wf_names:
                check.error(
                    "workflow.duplicate_name",
                    f"workflow name {wf.name!r} is used twice "
                    f"(workflows[{wf_names[wf.name]}] and workflows[{i}])",
                    ("workflows", i, "name"),
                )
            wf_names.setdefault(wf.name, i)
        if wf.entrypoint:
            if wf.entrypoint in rpcs:
                check.error(
                    "workflow.duplicate_entrypoint",
                    f"rpc {wf.entrypoint!r} is already served by workflows[{rpcs[wf.entrypoint]}]; "
                    "KRE routes each rpc to one workflow and the other never runs",
                    ("workflows", i, "entrypoint"),
                    hint="give each workflow its own rpc in service Entrypoint",
                )
            rpcs.setdefault(wf.entrypoint, i)
    for i, node in enumerate(manifest.nodes):
        if node.name and node.name not in used:
            check.warning(
                "node.unused",
                f"node {node.name!r} is in no workflow; KRE never deploys it",
                ("nodes", i, "name"),
            )


def _check_files(check: Checker, manifest: Manifest, files: Mapping[str, FileFacts]) -> None:
    for path, facts in files.items():
        # KRE's extractor skips every archive entry matching its krt.yml pattern
        if facts.kind == "file" and "/" in path and rules.is_krt_yml_name(path):
            check.warning(
                "file.manifest_like",
                f"{path!r} is named like krt.yml; KRE skips such files when it unpacks the "
                "bundle, so nodes never see it",
                file=path,
                hint="rename it",
            )
    proto = manifest.entrypoint.proto
    if proto.endswith(".proto"):
        norm = posixpath.normpath(proto)
        if norm not in files:
            check.error(
                "proto.missing",
                f"entrypoint proto {proto!r} is not in the project",
                ("entrypoint", "proto"),
                hint=did_you_mean(norm, [p for p in files if p.endswith(".proto")]),
            )
        elif files[norm].kind != "file":
            check.error(
                "proto.not_file",
                f"entrypoint proto {proto!r} is a folder, not a file: KRE's entrypoint reads "
                "the proto file",
                ("entrypoint", "proto"),
                hint="put the proto's text in a file of that name at the bundle root",
            )
        elif (
            norm != "public_input.proto"
            and rules.image_repository(manifest.entrypoint.image) == "konstellation/kre-entrypoint"
        ):
            check.error(
                "proto.not_public_input",
                f"KRE's entrypoint image always reads /krt-files/public_input.proto, not {proto!r}",
                ("entrypoint", "proto"),
                hint="name the file public_input.proto and put it at the bundle root",
            )
        elif "/" in norm:  # a custom entrypoint image may read it; krtlab compiles the root's
            check.warning(
                "proto.not_at_root",
                f"entrypoint proto {proto!r} is not at the bundle root, where krtlab compiles "
                "the protos: its rpcs and the workflows' messages are not checked",
                ("entrypoint", "proto"),
                hint="put it at the bundle root",
            )
    for i, node in enumerate(manifest.nodes):
        if not node.src:
            continue
        loc: Location = ("nodes", i, "src")
        norm = posixpath.normpath(node.src)
        if posixpath.isabs(node.src) or norm.startswith("../") or norm == "..":
            check.error(
                "src.outside",
                f"src {node.src!r} must be a path inside the bundle",
                loc,
                hint="paths are relative to the bundle root, e.g. src/etl/main.py",
            )
            continue
        entry = files.get(norm)
        kre = f"KRE 7: error src File {node.src} for node {node.name} not exists "  # sic
        if entry is None:
            check.error(
                "src.missing",
                f"src file {node.src!r} of node {node.name!r} is not in the project",
                loc,
                kre=kre,
                hint=did_you_mean(norm, [p for p, f in files.items() if f.kind == "file"]),
            )
        elif entry.kind != "file":
            check.error(
                "src.not_file",
                f"src {node.src!r} of node {node.name!r} is a "
                f"{'folder' if entry.kind == 'dir' else entry.kind}, not a regular file",
                loc,
                kre=kre,
            )
        elif rules.is_krt_yml_name(norm) and norm != check.manifest_file:
            check.error(
                "src.manifest_like",
                f"src {node.src!r} of node {node.name!r} is named like krt.yml: KRE's extractor "
                "skips such files, so the node's file is never unpacked",
                loc,
                kre=kre,
                hint="rename the file",
            )
