"""How a finding and a report read: ``str``, ``repr``, JSON and the notebook's HTML table,
whole, for every combination of the parts a finding may have."""

from __future__ import annotations

import json

import pytest

from krtlab.spec.findings import ERROR, WARNING, Finding, Report, format_path

LOC = ("workflows", 0, "entrypoint")


def test_where_names_the_file_its_line_and_the_yaml_path():
    assert Finding(ERROR, "c", "m", LOC, "krt.yml", 12).where() == (
        "krt.yml:12 workflows[0].entrypoint"
    )
    assert Finding(ERROR, "c", "m", LOC, "krt.yml").where() == "krt.yml workflows[0].entrypoint"
    assert Finding(ERROR, "c", "m", (), "src/a/main.py", 3).where() == "src/a/main.py:3"
    assert Finding(ERROR, "c", "m", (), "public_input.proto").where() == "public_input.proto"
    assert Finding(ERROR, "c", "m", ("nodes", 1)).where() == "nodes[1]"
    assert Finding(ERROR, "c", "m").where() == ""


def test_where_puts_the_users_own_line_first():
    at = Finding(ERROR, "c", "m", LOC, "krt.yml", 12, origin="cell In[5], line 3")
    assert at.where() == "cell In[5], line 3 (krt.yml:12 workflows[0].entrypoint)"
    only = Finding(ERROR, "c", "m", origin="cell In[5], line 3")
    assert only.where() == "cell In[5], line 3"
    assert only.bundle_where() == ""


def test_format_without_a_place_says_severity_and_message_only():
    assert Finding(WARNING, "c", "it is odd").format() == "warning: it is odd"
    assert str(Finding(ERROR, "c", "bad", ("version",), "krt.yml", 1)) == (
        "error: krt.yml:1 version: bad"
    )


@pytest.mark.parametrize(
    ("kre", "shown"),
    [
        ("KRE 7: Invalid name", "KRE 7 says: Invalid name"),
        ("kli: Key: 'X' Error", "kli says: Key: 'X' Error"),
        ("kre-py 1.22-2.0: no module", "kre-py 1.22-2.0 says: no module"),
        ("kre-py 1.23: no module", "kre-py 1.23 says: no module"),
        ("yaml: line 3: did not find", "KRE says: yaml: line 3: did not find"),
        ("no speaker at all", "KRE says: no speaker at all"),
        ("KRE 7 with no colon", "KRE says: KRE 7 with no colon"),
        ("KRE 7: two\nlines", "KRE 7 says: two\n      lines"),
    ],
)
def test_kres_words_are_shown_with_who_says_them(kre, shown):
    assert Finding(ERROR, "c", "m", kre=kre).format() == f"error: m\n    {shown}"


def test_format_shows_the_hint_before_kres_words():
    f = Finding(ERROR, "c", "m", ("version",), "krt.yml", 1, hint="try 'x'", kre="KRE 7: no")
    assert f.format() == "error: krt.yml:1 version: m\n    hint: try 'x'\n    KRE 7 says: no"


def test_to_dict_has_the_loc_as_a_list_and_the_path():
    f = Finding(ERROR, "c", "m", LOC, "krt.yml", 12, "h", "KRE 7: k", "cell In[1], line 1")
    assert f.to_dict() == {
        "severity": "error",
        "code": "c",
        "message": "m",
        "loc": ["workflows", 0, "entrypoint"],
        "file": "krt.yml",
        "line": 12,
        "hint": "h",
        "kre": "KRE 7: k",
        "origin": "cell In[1], line 1",
        "path": "workflows[0].entrypoint",
    }
    assert format_path(("a", "b", 0, 1)) == "a.b[0][1]"


@pytest.mark.parametrize(
    ("errors", "warnings", "summary"),
    [
        (0, 0, "v1: valid, no findings"),
        (1, 0, "v1: 1 error, 0 warnings"),
        (0, 1, "v1: 0 errors, 1 warning"),
        (1, 1, "v1: 1 error, 1 warning"),
        (2, 2, "v1: 2 errors, 2 warnings"),
        (3, 3, "v1: 3 errors, 3 warnings"),
    ],
)
def test_summary_counts_errors_and_warnings(errors, warnings, summary):
    found = [Finding(ERROR, f"e{i}", "m") for i in range(errors)]
    found += [Finding(WARNING, f"w{i}", "m") for i in range(warnings)]
    assert Report.of(found, "v1").summary() == summary
    assert Report.of(found).summary() == summary.removeprefix("v1: ")
    assert repr(Report.of(found, "v1")) == f"<Report {summary}>"


def test_str_is_the_summary_then_each_finding():
    report = Report.of(
        [Finding(WARNING, "w", "odd", ("nodes", 0), "krt.yml", 7), Finding(ERROR, "e", "bad")], "v1"
    )
    assert str(report) == "v1: 1 error, 1 warning\nwarning: krt.yml:7 nodes[0]: odd\nerror: bad"
    assert str(Report.of([], "v1")) == "v1: valid, no findings"


def test_to_json_passes_its_arguments_to_json_dumps():
    report = Report.of([Finding(ERROR, "e", "bad", ("version",), "krt.yml", 1)], "v1")
    text = report.to_json(indent=1, sort_keys=True)
    assert text.startswith('{\n "errors": 1,\n "findings": [\n  {\n   "code": "e",')
    assert json.loads(text) == {
        "subject": "v1",
        "ok": False,
        "errors": 1,
        "warnings": 0,
        "findings": [
            {"severity": "error", "code": "e", "message": "bad", "loc": ["version"],
             "file": "krt.yml", "line": 1, "hint": None, "kre": None, "origin": None,
             "path": "version"},
        ],
    }  # fmt: skip


CELL = "style='text-align:left;vertical-align:top;padding:2px 8px'"
HEAD = f"<tr><th {CELL}>severity</th><th {CELL}>where</th><th {CELL}>problem</th></tr>"


def test_html_of_a_clean_report_is_its_summary_only():
    assert Report.of([], "v<1>")._repr_html_() == "<div><b>v&lt;1&gt;: valid, no findings</b></div>"


def test_html_is_a_row_per_finding_coloured_by_severity():
    report = Report.of(
        [
            Finding(ERROR, "a", "x < y", ("version",), "krt.yml", 1, hint="use <b>",
                    origin="cell In[2], line 4"),
            Finding(WARNING, "b", "odd", origin="cell In[3], line 1"),
            Finding(WARNING, "c", "plain", ("nodes", 0), "krt.yml", 5),
        ],
        "v1",
    )  # fmt: skip
    assert report._repr_html_() == (
        "<div><b>v1: 1 error, 2 warnings</b>"
        "<table style='margin-left:0;border-collapse:collapse'>" + HEAD
        + f"<tr><td {CELL}><b style='color:#e0364f'>error</b></td>"
        f"<td {CELL}>cell In[2], line 4<br><code>krt.yml:1 version</code></td>"
        f"<td {CELL}>x &lt; y<br><i>use &lt;b&gt;</i></td></tr>"
        f"<tr><td {CELL}><b style='color:#d98a00'>warning</b></td>"
        f"<td {CELL}><code>krt.yml:5 nodes[0]</code></td>"
        f"<td {CELL}>plain</td></tr>"
        f"<tr><td {CELL}><b style='color:#d98a00'>warning</b></td>"
        f"<td {CELL}>cell In[3], line 1<code></code></td>"
        f"<td {CELL}>odd</td></tr>"
        "</table></div>"
    )  # fmt: skip


def test_a_report_sorts_krt_yml_first_then_files_lines_paths_and_codes():
    f = [
        Finding(ERROR, "z", "m", ("nodes", 1), "src/b.py", 3),
        Finding(ERROR, "a", "m", (), "src/b.py", None),
        Finding(WARNING, "b", "m", ("nodes", 0, "name"), "krt.yml", 7),
        Finding(WARNING, "a", "m", ("nodes", 0, "name"), "krt.yml", 7),
        Finding(ERROR, "c", "m", ("nodes", 0), "krt.yml", 7),
        Finding(ERROR, "d", "m", ("nodes", "x"), "krt.yml", 7),
        Finding(ERROR, "e", "m", ("version",), "krt.yml", 1),
        Finding(ERROR, "f", "m", (), None, None),
        Finding(ERROR, "g", "m", (), "a.proto", 9),
        Finding(ERROR, "h", "m", (), "krt.yml", None),
        Finding(ERROR, "i", "m", (), "krt.yml", 100),
    ]
    report = Report.of([*f, f[0]], "v1")  # an exact duplicate is dropped
    assert [x.code for x in report] == ["e", "c", "a", "b", "d", "i", "h", "f", "g", "z", "a"]
    assert len(report) == 11
    assert report.codes() == ["e", "c", "a", "b", "d", "i", "h", "f", "g", "z", "a"]
    assert [x.code for x in report.at("nodes[0].name")] == ["a", "b"]
    assert report.at("nowhere") == []
    assert [x.code for x in report.errors] == ["e", "c", "d", "i", "h", "f", "g", "z", "a"]
    assert [x.code for x in report.warnings] == ["a", "b"]
    assert (report.ok, bool(report)) == (False, False)


def test_a_report_without_errors_is_ok_and_returns_itself():
    warned = Report.of([Finding(WARNING, "w", "odd")], "v1")
    assert (warned.ok, bool(warned), warned.raise_for_errors() is warned) == (True, True, True)
    assert Finding(WARNING, "w", "odd").is_error is False
    assert Finding(ERROR, "e", "bad").is_error is True
    assert Report.of([]).subject == ""


def test_raise_for_errors_raises_with_the_report_and_subject():
    from krtlab.errors import ValidationError

    report = Report.of([Finding(ERROR, "e", "bad", ("version",), "krt.yml", 1)], "v1")
    with pytest.raises(ValidationError) as info:
        report.raise_for_errors()
    assert info.value.report is report
    assert info.value.title == "v1"
