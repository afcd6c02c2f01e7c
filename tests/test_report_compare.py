"""``babelscope compare``: per-language differences B − A, in the terminal and as a report section."""

from __future__ import annotations

import pytest

from babelscope.errors import UsageError
from babelscope.report.build import build_report
from babelscope.report.collect import load_run
from babelscope.report.compare import compare_runs
from report_fixtures import LANGS, cypher_run, eval_run  # noqa: I001

ACC_A = {"eng_Latn": 0.70, "fra_Latn": 0.50, "deu_Latn": 0.40, "rus_Cyrl": 0.30, "zho_Hans": 0.25}
ACC_B = {"eng_Latn": 0.72, "fra_Latn": 0.45, "deu_Latn": 0.40, "rus_Cyrl": 0.36, "zho_Hans": 0.20}


@pytest.fixture
def two_runs(tmp_path):
    return eval_run(tmp_path, "eval-a", ACC_A).path, eval_run(tmp_path, "eval-b", ACC_B).path


@pytest.fixture
def main():
    from babelscope.cli.main import main

    return main


def test_differences_are_b_minus_a(two_runs):
    diffs = compare_runs(load_run(two_runs[0]), load_run(two_runs[1]))
    acc = {d.language: d for d in diffs if d.table == "tasks / continuation" and d.metric == "acc"}
    assert sorted(acc) == sorted(LANGS)
    for lang in LANGS:
        assert acc[lang].a == ACC_A[lang] and acc[lang].b == ACC_B[lang]
        assert acc[lang].delta == pytest.approx(ACC_B[lang] - ACC_A[lang])
    norm = {d.language: d.delta for d in diffs if d.metric == "acc_norm"}
    assert norm["rus_Cyrl"] == pytest.approx(0.06)  # acc_norm = acc - 0.05 in both runs


def test_compare_section_in_report(two_runs):
    context = build_report(list(two_runs), compare=True, strict=True)
    secs = {s.title: s for s in context["across"] if s.kind == "compare"}
    sec = secs["Comparison: continuation · accuracy"]
    table = sec.figures[0].table
    assert table.columns == ["language", "A", "B", "B − A"]
    rows = {r[0].text: r for r in table.rows}
    assert rows["fra_Latn"][3].text == "-0.05" and "neg" in rows["fra_Latn"][3].cls
    assert rows["rus_Cyrl"][3].text == "+0.06" and "pos" in rows["rus_Cyrl"][3].cls
    assert float(table.foot[0][3].text) == pytest.approx(sum(ACC_B.values()) / 5 - sum(ACC_A.values()) / 5)
    assert "eng_Latn +0.02" in sec.figures[0].alt


def test_cli_compare_prints_and_writes(two_runs, tmp_path, capsys, main):
    out = tmp_path / "compare.html"
    assert main(["compare", str(two_runs[0]), str(two_runs[1]), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "B − A" in text and "rus_Cyrl" in text and "+0.06" in text and "macro mean" in text
    assert "Comparison: continuation · accuracy" in out.read_text(encoding="utf-8")
    assert main(["compare", str(two_runs[0]), str(two_runs[1]), "--metrics", "bits_per_char"]) == 0
    text = capsys.readouterr().out
    assert "bits_per_char" in text and "acc_norm" not in text
    assert main(["compare", str(two_runs[0]), str(two_runs[1]), "--metrics", "nope"]) == 2
    assert "none of the metrics nope" in capsys.readouterr().err


def test_compare_needs_shared_figures(tmp_path, two_runs, main, capsys):
    other = tmp_path / "odd"
    other.mkdir()
    (other / "results.json").write_text('{"verb": "x", "value": 1}')
    with pytest.raises(UsageError, match="share no per-language figures"):
        compare_runs(load_run(two_runs[0]), load_run(other))
    assert main(["report", str(two_runs[0]), "--compare", "-o", str(tmp_path / "x.html")]) == 2
    assert "exactly two run folders" in capsys.readouterr().err


def test_different_layouts_match_by_metric(tmp_path):
    a = cypher_run(tmp_path, "c1")
    b = load_run(cypher_run(tmp_path, "c2").path)
    b.results = {"scores": b.results["per_language"]}  # same figures under another key
    diffs = compare_runs(load_run(a.path), b)
    assert diffs and all(d.delta == 0 for d in diffs)


def test_different_item_sets_are_compared_on_shared_items(tmp_path):
    """A scored items x0-x2 of eng_Latn, B x0-x4: both are compared on x0-x2 only, and the report says so."""
    from babelscope.report.compare import item_warnings, shared_items
    from babelscope.runs import RunFolder

    runs = []
    for name, correct in (("eval-a", [1, 0, 1]), ("eval-b", [1, 1, 1, 0, 0])):
        run = eval_run(tmp_path, name)
        RunFolder(run.path).write_samples(
            "continuation", "eng_Latn", [{"item_id": f"x{i}", "acc": float(c)} for i, c in enumerate(correct)]
        )
        runs.append(run.path)
    a, b, differ = shared_items(load_run(runs[0]), load_run(runs[1]))  # no rescorer: means of the items' values
    assert [(d.task, d.language, d.a, d.b, d.shared) for d in differ] == [("continuation", "eng_Latn", 3, 5, 3)]
    assert b.results["tasks"]["continuation"]["eng_Latn"] == {"acc": 1.0, "n": 3}
    assert a.results["tasks"]["continuation"]["eng_Latn"]["acc"] == pytest.approx(2 / 3)
    assert "continuation" not in a.results["consistency"] and "continuation" not in b.results["consistency"]
    assert "continuation" in load_run(runs[0]).results["consistency"]  # the runs read from disk are untouched
    (line,) = item_warnings(differ)
    assert "dropping 0 of A's 3 and 2 of B's 5" in line
    diffs = {(d.table, d.language): d for d in compare_runs(a, b) if d.metric == "acc"}
    assert diffs[("tasks / continuation", "eng_Latn")].delta == pytest.approx(1 - 2 / 3)
    assert diffs[("tasks / continuation", "fra_Latn")].delta == 0  # same items (no samples differ): unchanged
    context = build_report(runs, compare=True, strict=True)
    (sec,) = [s for s in context["across"] if s.kind == "compare_items"]
    assert "dropping 0 of A's 3 and 2 of B's 5" in sec.blocks[0].text
    assert [c.text for c in sec.tables[0].rows[0]] == ["continuation", "eng_Latn", "3", "5", "3", "0", "2"]
