"""Every public error class lives in :mod:`krtlab.errors` and in ``krtlab.__all__``; the errors
that stay inside krtlab are listed here, each with why."""

from __future__ import annotations

import importlib
import inspect
import pickle
import pkgutil

import krtlab
import krtlab.errors

# Exceptions that never reach a user, so they stay in their modules (and outside KrtlabError).
INTERNAL = {
    # the runner's own refusal, raised inside a node's run: users see it as NodeFailed.cause
    "krtlab.runtime.envelope.MessageTooLarge",
    # the entrypoint's signal that a worker died mid-request: answered as gRPC UNAVAILABLE
    "krtlab.runtime.entrypoint.WorkerExited",
    # KRE's mongo-writer refusing a document: logged by the emulated writer, as KRE logs it
    "krtlab.runtime.mongowriter.WriteError",
    # the KAI stand-in's Kubernetes API emulation: answered as an HTTP error to the client
    "krtlab.deploy.standin.kube_store.KubeApiError",
    # the KAI stand-in's validator errors: answered as KRE's krt_validation_error
    "krtlab.deploy.standin.krt_check.KrtValidationError",
}


def _all_modules() -> list[object]:
    mods = []
    for info in pkgutil.walk_packages(krtlab.__path__, "krtlab."):
        mods.append(importlib.import_module(info.name))
    return mods


def _subclasses(cls: type) -> set[type]:
    out: set[type] = set()
    for sub in cls.__subclasses__():
        out |= {sub, *_subclasses(sub)}
    return out


def test_every_public_krtlab_error_is_in_errors_and_in_all():
    _all_modules()
    public = {c for c in _subclasses(krtlab.KrtlabError) if not c.__name__.startswith("_")}
    assert {"CallError", "NodeFailed", "RunError", "ServeError", "YamlSyntaxError"} <= {
        c.__name__ for c in public
    }
    for cls in public | {krtlab.KrtlabError}:
        name = cls.__name__
        assert cls.__module__ == "krtlab.errors", f"{name} is defined in {cls.__module__}"
        assert getattr(krtlab.errors, name) is cls and name in krtlab.errors.__all__, name
        assert name in krtlab.__all__ and getattr(krtlab, name) is cls, name


def test_no_other_public_exception_class_is_defined_in_krtlab():
    found = set()
    for mod in _all_modules():
        for name, obj in vars(mod).items():
            if (
                inspect.isclass(obj)
                and issubclass(obj, BaseException)
                and obj.__module__ == mod.__name__  # type: ignore[attr-defined]
                and not name.startswith("_")
                and not issubclass(obj, krtlab.KrtlabError)
            ):
                found.add(f"{obj.__module__}.{name}")
    assert found == INTERNAL


def test_moved_errors_keep_their_old_import_paths():
    from krtlab.runtime import client, errors, procs
    from krtlab.spec import yamlsrc

    assert client.CallError is krtlab.CallError and procs.ServeError is krtlab.ServeError
    assert errors.RunError is krtlab.RunError and errors.NodeFailed is krtlab.NodeFailed
    assert yamlsrc.YamlSyntaxError is krtlab.YamlSyntaxError
    assert issubclass(krtlab.CallError, krtlab.ServeError)
    assert issubclass(krtlab.YamlSyntaxError, krtlab.BundleError)
    for cls in (krtlab.RunError, krtlab.ServeError):
        assert issubclass(cls, RuntimeError) and issubclass(cls, krtlab.KrtlabError)


def test_moved_errors_behave_as_before():
    failed = pickle.loads(pickle.dumps(krtlab.NodeFailed("etl", ValueError("boom"))))
    assert str(failed) == "error in 'etl': boom" and failed.node == "etl"
    call = krtlab.CallError("PyGreet", "INTERNAL", "error in 'etl': boom")
    assert str(call) == "PyGreet failed: INTERNAL: error in 'etl': boom"
    assert krtlab.CallError.from_rpc_error("X", OSError("down")).code == "UNKNOWN"
    err = krtlab.YamlSyntaxError("bad", 3)
    assert (err.message, err.line, err.code, str(err)) == ("bad", 3, "yaml.syntax", "bad")
