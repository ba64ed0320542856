"""The public surface: what `import krtlab` offers and what it costs."""

import subprocess
import sys

import krtlab

EXPECTED = {
    "AuthError", "BundleError", "CallError", "DeployError", "DeployTimeout", "CaptureError",
    "ExecutableNotFound", "Finding", "KrtlabError", "Manifest",
    "MessageTypeError", "Node", "NodeFailed", "OverwriteError", "Project", "ProtoError",
    "RenderError", "Report", "RunError", "ServeError", "SpecError",
    "UnsafeArchiveError", "ValidationError", "Version", "Workflow", "YamlSyntaxError",
    "__version__", "load", "load_project", "version_name",
}  # fmt: skip


def test_all_is_the_approved_list_and_every_name_resolves():
    assert set(krtlab.__all__) == EXPECTED
    for name in krtlab.__all__:
        assert getattr(krtlab, name) is not None


def test_import_is_light():
    code = (
        "import sys, krtlab; heavy = ['google.protobuf', 'yaml', 'grpc', 'grpc_tools', "
        "'IPython', 'kubernetes', 'graphviz', 'ipywidgets', 'nbformat', 'nats']; "
        "print([m for m in heavy if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_errors_subclass_the_builtins_they_refine():
    assert issubclass(krtlab.SpecError, ValueError)
    assert issubclass(krtlab.ValidationError, krtlab.SpecError)
    assert issubclass(krtlab.OverwriteError, FileExistsError)
    assert issubclass(krtlab.MessageTypeError, TypeError)
    assert issubclass(krtlab.ExecutableNotFound, RuntimeError)
    assert issubclass(krtlab.DeployError, RuntimeError)
    assert issubclass(krtlab.AuthError, krtlab.DeployError)
    assert issubclass(krtlab.DeployTimeout, TimeoutError)
    names = ("BundleError", "CaptureError", "ProtoError", "UnsafeArchiveError", "DeployError")
    for name in names:
        assert issubclass(getattr(krtlab, name), krtlab.KrtlabError)


def test_unknown_attribute_is_a_plain_attribute_error():
    try:
        krtlab.Verison  # noqa: B018
    except AttributeError as exc:
        assert "did you mean 'Version'?" in str(exc)
