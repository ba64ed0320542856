"""The shape of krt.yml: known keys, value types and required fields (KRE's struct tags)."""

from __future__ import annotations

from typing import Any

from krtlab.spec.checker import Checker, go_path, go_text, unmarshal_error
from krtlab.spec.findings import Location, format_path
from krtlab.spec.model import KNOWN_KEYS
from krtlab.spec.suggest import did_you_mean

__all__ = ["check_structure"]

# KRE 8's V1 validator (``validator/validator_v1.go``) refuses these V2 keys; KRE 3-7 ignore them.
_V2_KEYS: dict[str, dict[str, str | None]] = {
    "workflow": {
        "exitpoint": 'the field "workflow.exitpoint" is incompatible with version v1',
        "nodes": 'the field "workflow.nodes" is incompatible with version v1',
    },
    "node": {
        "subscriptions": 'field Subscriptions in node "{name}" is incompatible with version v1',
        "replicas": None,
        "objectStore": None,
    },
}


def _check_keys(check: Checker, mapping: dict[Any, Any], kind: str, loc: Location) -> None:
    known = KNOWN_KEYS[kind]
    for key in mapping:
        if key in known:
            continue
        sub = (*loc, str(key))
        v2 = _V2_KEYS.get(kind, {})
        if key in v2:
            name = mapping.get("name", "")
            said = v2[key]
            kre = f"KRE 8: {said.format(name=name)}" if said else None
            check.error(
                "key.krt_v2",
                f"'{key}' is a KRT V2 key; a V1 krt.yml cannot use it",
                sub,
                hint="KRT V1 workflows are a 'sequential' list of node names",
                kre=kre,
            )
            continue
        meant = did_you_mean(str(key), known)
        # a misspelt key loses its intent on KRE (an error); another extra key (an early
        # krt.yml's entrypoint.src, a note of the team's) is only ignored (a warning)
        report = check.error if meant else check.warning
        report(
            "key.unknown",
            f"unknown key '{key}' in {_kind_name(kind, loc)}: KRE silently ignores it",
            sub,
            hint=meant or f"known keys: {', '.join(known)}",
        )


def _kind_name(kind: str, loc: Location) -> str:
    return "krt.yml" if kind == "root" else format_path(loc)


def _expect(check: Checker, value: Any, typ: type, what: str, loc: Location) -> bool:
    ok = (
        isinstance(value, bool)
        if typ is bool
        else (isinstance(value, typ) and not isinstance(value, bool))
    )
    if not ok:
        check.error(
            "field.type",
            f"{what} must be {_type_word(typ)}, not {_describe(value)}",
            loc,
            kre=unmarshal_error(check, loc, value),
        )
    return ok


def _type_word(typ: type) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "true or false"}.get(
        typ, "valid"
    )


def _describe(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, (dict, list)):
        return "a mapping" if isinstance(value, dict) else "a list"
    shown = _shown(value)
    return {str: f"the string {shown}", bool: f"{value}"}.get(
        type(value), f"{type(value).__name__} {shown}"
    )


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:56] + "...'"


def _required_text(check: Checker, mapping: dict[Any, Any], key: str, loc: Location) -> None:
    sub = (*loc, key)
    value = mapping.get(key)
    if value is None or value == "":
        check.error(
            "field.required",
            f"'{key}' is required" + (" and empty" if key in mapping else ""),
            sub,
            kre=f'KRE 7: The field "{go_path(sub)}" is required',
        )
        return
    if isinstance(value, (dict, list)):
        check.error(
            "field.type",
            f"'{key}' must be a string, not {_describe(value)}",
            sub,
            kre=unmarshal_error(check, sub, value),
        )
    elif _written_as_other_than_text(check, sub):
        # yaml.v2 copies a number's text into the Go string, so KRE reads it as written; other
        # YAML readers (yq, Python) make 1.10 the number 1.1
        check.warning(
            "field.not_string",
            f"'{key}' is written as a {_tag_word(check, sub)}; KRE reads the text {_shown(value)}, "
            "other YAML tools may not: quote it",
            sub,
            hint=f'{key}: "{value}"' if len(str(value)) <= 60 else None,
        )


def _tag_word(check: Checker, loc: Location) -> str:
    tag = check.parsed.scalars[loc][0] if check.parsed is not None else ""
    return {"int": "number", "float": "number", "bool": "boolean", "timestamp": "date"}.get(
        tag.rsplit(":", 1)[-1], "tagged value"
    )


def _written_as_other_than_text(check: Checker, loc: Location) -> bool:
    """Whether the scalar at ``loc`` resolves to something else than a string in YAML."""
    scalar = check.parsed.scalars.get(loc) if check.parsed is not None else None
    return scalar is not None and scalar[0] != "tag:yaml.org,2002:str"


def check_structure(check: Checker, data: dict[Any, Any]) -> None:
    if check.parsed is not None:
        for dup in check.parsed.duplicates:
            check.error(
                "key.duplicate",
                f"key '{dup[-1]}' appears twice in the same mapping; KRE keeps the last one",
                dup,
            )
    _check_keys(check, data, "root", ())
    kv = data.get("krtVersion")
    if kv is not None and kv != "v1":
        if kv == "v2":
            check.error(
                "krt.version",
                "krtVersion v2 is KRT V2; krtlab handles KRT V1 versions",
                ("krtVersion",),
                hint="remove krtVersion or set it to v1",
            )
        else:
            check.error(
                "krt.version",
                f"krtVersion {kv!r} is not a KRT version",
                ("krtVersion",),
                hint="use v1 (or leave it out: v1 is the default)",
                kre=(  # KRE 3-7 ignore the key
                    f'KRE 8: krtVersion "{go_text(check, ("krtVersion",), kv)}" is not valid'
                    if not isinstance(kv, (dict, list))
                    else None
                ),
            )
    _required_text(check, data, "version", ())
    _required_text(check, data, "description", ())

    ep = data.get("entrypoint")
    if ep is None:
        for key in ("proto", "image"):
            check.error(
                "field.required",
                f"'entrypoint.{key}' is required",
                ("entrypoint", key),
                kre=f'KRE 7: The field "Entrypoint.{key.title()}" is required',
            )
    elif _expect(check, ep, dict, "'entrypoint'", ("entrypoint",)):
        _check_keys(check, ep, "entrypoint", ("entrypoint",))
        _required_text(check, ep, "proto", ("entrypoint",))
        _required_text(check, ep, "image", ("entrypoint",))

    cfg = data.get("config")
    if cfg is not None and _expect(check, cfg, dict, "'config'", ("config",)):
        _check_keys(check, cfg, "config", ("config",))
        for key in ("variables", "files"):
            items = cfg.get(key)
            if items is not None and _expect(
                check, items, list, f"'config.{key}'", ("config", key)
            ):
                for i, item in enumerate(items):
                    if not isinstance(item, str):
                        check.error(
                            "field.type",
                            f"config {key} must be names, not {_describe(item)}",
                            ("config", key, i),
                            kre=unmarshal_error(check, ("config", key, i), item),
                        )

    for kind in ("nodes", "workflows"):
        items = data.get(kind)
        if items is None:
            check.error(
                "field.required",
                f"'{kind}' is required",
                (kind,),
                kre=f'KRE 7: The field "{kind.title()}" is required',
            )
            continue
        if not _expect(check, items, list, f"'{kind}'", (kind,)):
            continue
        if not items:
            check.error(
                "field.empty",
                f"'{kind}' is empty: a version needs at least one {kind[:-1]}",
                (kind,),
            )
        for i, item in enumerate(items):
            loc: Location = (kind, i)
            if not _expect(check, item, dict, f"{kind}[{i}]", loc):
                continue
            _check_keys(check, item, kind[:-1], loc)
            _required_text(check, item, "name", loc)
            if kind == "nodes":
                _required_text(check, item, "image", loc)
                _required_text(check, item, "src", loc)
                gpu = item.get("gpu")
                if gpu is not None and not isinstance(gpu, bool):
                    check.error(
                        "field.type",
                        f"'gpu' must be true or false, not {_describe(gpu)}",
                        (*loc, "gpu"),
                        kre=unmarshal_error(check, (*loc, "gpu"), gpu),
                    )
            else:
                _required_text(check, item, "entrypoint", loc)
                seq = item.get("sequential")
                if seq is None:
                    check.error(
                        "field.required",
                        "'sequential' is required",
                        (*loc, "sequential"),
                        kre=f'KRE 7: The field "{go_path((*loc, "sequential"))}" is required',
                    )
                elif _expect(check, seq, list, "'sequential'", (*loc, "sequential")):
                    if not seq:
                        check.error(
                            "workflow.empty",
                            "'sequential' lists no nodes: the workflow could never answer",
                            (*loc, "sequential"),
                            # KRE 3-7 accept an empty list (`required` only refuses a missing one)
                            kre='KRE 8: the field "workflow.sequential" hasn\'t nodes defined',
                        )
                    for j, name in enumerate(seq):
                        if not isinstance(name, str):
                            check.error(
                                "field.type",
                                f"sequential entries are node names, not {_describe(name)}",
                                (*loc, "sequential", j),
                                kre=unmarshal_error(check, (*loc, "sequential", j), name),
                            )
