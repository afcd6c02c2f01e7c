"""The HTML report: every kind of run folder renders its sections; the file is self-contained and
accessible (alt text, a table per figure); the numbers shown are the right ones."""

from __future__ import annotations

import math
import re
from html.parser import HTMLParser

import pytest

from babelscope.errors import UsageError
from babelscope.report.build import build_report, find_run_folders, render
from report_fixtures import ALL_KINDS, LANGS, eval_run, fertility_run, odd_run  # noqa: I001

EXPECTED_KINDS = {
    "eval": {"languages", "consistency", "fertility"},
    "fertility": {"fertility"},
    "heads": {"heads", "head_classes"},
    "neurons": {"neurons"},
    "layers": {"layers"},
    "compare-neurons": {"languages", "layer_series", "matrix"},
    "finetune": {"provenance", "before_after", "training"},
    "merge": {"provenance", "before_after"},
    "cypher": {"cypher"},
    "mask": {"provenance", "before_after", "heads", "head_mask", "training"},
}


class Page(HTMLParser):
    """Collects images, tables (id -> text), and every src/href value."""

    def __init__(self, html: str):
        super().__init__()
        self.images, self.table_ids, self.links, self.tags = [], set(), [], []
        self._table, self.tables = None, {}
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if tag == "img":
            self.images.append(a)
        if tag == "table":
            self._table = a.get("id")
            self.table_ids.add(self._table)
            self.tables[self._table] = []
        for key in ("src", "href"):
            if key in a:
                self.links.append(a[key])

    def handle_endtag(self, tag):
        if tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._table and data.strip():
            self.tables[self._table].append(data.strip())


@pytest.fixture(scope="module")
def all_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return {kind: make(root).path for kind, make in ALL_KINDS.items()}


@pytest.fixture(scope="module")
def full_context(all_runs):
    return build_report(list(all_runs.values()), strict=True)


@pytest.fixture(scope="module")
def full_report(full_context, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "report.html"
    out.write_text(render(full_context), encoding="utf-8")
    return out.read_text(encoding="utf-8")


def sections_of(context, verb: str, kind: str | None = None) -> list:
    return [s for run, secs in context["runs"] if run.verb == verb for s in secs if kind in (None, s.kind)]


@pytest.mark.parametrize("kind", sorted(EXPECTED_KINDS))
def test_each_kind_renders_its_sections(full_context, kind):
    kinds = {s.kind for s in sections_of(full_context, kind)}
    assert EXPECTED_KINDS[kind] <= kinds, kinds
    assert "error" not in kinds


def test_report_is_self_contained(full_report):
    page = Page(full_report)
    assert page.images, "no figures rendered"
    for link in page.links:
        assert not re.match(r"^\s*(https?:)?//", link), link
        assert link.startswith(("data:image/png;base64,", "#")), link
    assert "link" not in page.tags and "iframe" not in page.tags
    assert page.tags.count("script") == 1 and "<script src" not in full_report  # the inline table sorter only
    assert "@import" not in full_report and "url(" not in full_report.split("</style>")[0]


def test_every_image_has_alt_text_and_a_table(full_report):
    page = Page(full_report)
    for img in page.images:
        assert len(img.get("alt", "").strip()) > 20, img.get("alt")
        assert img["data-table"] in page.table_ids
        assert len(page.tables[img["data-table"]]) > 3  # a real table with numbers in it


def test_accuracy_intervals_and_means(tmp_path):
    acc = {"eng_Latn": 0.8, "fra_Latn": 0.6, "deu_Latn": 0.5, "rus_Cyrl": 0.4, "zho_Hans": 0.2}
    run = eval_run(tmp_path, acc=acc)
    context = build_report([run.path], strict=True)
    (sec,) = [s for _, secs in context["runs"] for s in secs if s.title == "Per-language results: continuation"]
    table = sec.figures[0].table
    col = table.columns.index("accuracy")
    rows = {r[0].text: r for r in table.rows}
    assert rows["fra_Latn"][col + 1].text == f"{1.96 * 0.03:.4g}"  # ± 1.96 stderr (stderr 0.02 + 0.01 i)
    foot = {r[0].text: r for r in table.foot}
    assert float(foot["macro mean"][col].text) == pytest.approx(sum(acc.values()) / 5, abs=1e-4)
    counts = [40 + 10 * i for i in range(5)]
    micro = sum(a * n for a, n in zip(acc.values(), counts)) / sum(counts)
    assert float(foot["micro mean (item-weighted)"][col].text) == pytest.approx(micro, abs=1e-4)
    assert "macro mean" in sec.figures[0].alt and "95% confidence" in sec.figures[0].alt


def test_before_after_per_language(full_context):
    context = full_context
    tables = {verb: sections_of(context, verb, "before_after")[0].figures[0].table for verb in ("finetune", "merge")}
    ft = tables["finetune"]
    assert ft.columns == ["language", "before", "after", "after − before"]  # stages, then the change
    assert [r[0].text for r in ft.rows] == LANGS
    assert ft.rows[0][3].text == "-0.2" and "good" in ft.rows[0][3].cls  # bpc: lower is better
    mg = tables["merge"]
    assert mg.columns[-1] == "merged − task_expert"
    assert [float(r[-1].text) for r in mg.rows] == pytest.approx([0.05 + 0.01 * i for i in range(5)])
    ft_sec = sections_of(context, "finetune", "before_after")
    assert "lower is better" in ft_sec[0].blocks[-1].text  # the metric is bpc
    prov = sections_of(context, "finetune", "provenance")[0]
    settings = {r[0].text: r[1].text for r in prov.blocks[0].rows}
    assert settings["layers"] == "0-1,4-5" and settings["trainable_share"] == "0.2345"
    assert settings["layers trained"] == "0, 1, 4, 5 (0-1,4-5)"


def test_head_classes_and_scores(full_context):
    secs = sections_of(full_context, "heads")
    classes = [s for s in secs if s.kind == "head_classes"][0].figures[0].table
    by_head = {r[0].text: (r[3].text, r[4].text) for r in classes.rows}
    assert by_head["L5.H3"][0] == "general"
    assert by_head["L0.H0"] == ("specific", "eng_Latn") and by_head["L4.H0"] == ("specific", "zho_Hans")
    top = [t for t in secs[1].tables if t.caption.startswith("Highest-scoring heads")][0]
    assert {r[0].text: r[1].text.split()[0] for r in top.rows}["eng_Latn"] == "L0.H0"  # the planted head
    (ablation,) = [s for s in secs if s.title == "Loss increase when a language's heads are zeroed"]
    assert "largest entry of its column for 5 of 5" in ablation.blocks[-1].text  # the planted diagonal
    assert len(secs) == 4  # settings, the class map, the ablation matrix, the off-target rates: no dumps


def test_neuron_classes_per_layer(full_context):
    sec, deact = sections_of(full_context, "neurons", "neurons")
    table = sec.figures[0].table
    assert table.columns == ["layer", "language-specific", "language-related", "language-general"]
    assert [r[3].text for r in table.rows] == ["0", "4", "8", "9", "3", "1"]
    assert any(getattr(b, "caption", "") == "Phases along the layers" for b in sec.blocks)
    matrix = deact.figures[0].table  # rows: neurons switched off; columns: language measured
    assert [r[0].text for r in matrix.rows] == LANGS and matrix.rows[1][2].text == "0.8"
    assert "largest entry of its column for 5 of 5" in deact.blocks[1].text
    assert len(sections_of(full_context, "neurons")) == 3  # settings, classes per layer, deactivation


def test_layers_curves_and_chosen_layers(full_context):
    (sec,) = sections_of(full_context, "layers", "layers")
    assert sec.intro.startswith("Layers to finetune: 0, 1, 5 (layer 0: language-specificity score 0.9, layer 1: "
                                "language-specificity score 0.7, layer 5:")
    assert "bottom 2 and top 1" in sec.intro
    table = sec.figures[0].table
    assert table.columns[:3] == ["layer", "chosen", "language-specificity score"]
    assert [r[1].text for r in table.rows] == ["yes", "yes", "", "", "", "yes"]
    lens = table.columns.index("logit lens: target-language share of top-1 guesses")
    assert [float(r[lens].text) for r in table.rows] == pytest.approx([0.0, 0.0, 0.1, 0.3, 0.6, 0.9])
    assert "score" not in [h for h in table.columns]  # headings in words, not keys


def test_fertility_against_accuracy_scatter(tmp_path):
    import json

    own = eval_run(tmp_path, "eval-own")
    bare = eval_run(tmp_path, "eval-bare")  # an eval without fertility figures of its own
    results = json.loads((bare.path / "results.json").read_text())
    del results["fertility"]
    (bare.path / "results.json").write_text(json.dumps(results))
    context = build_report([fertility_run(tmp_path).path, own.path, bare.path], strict=True)
    scatter = [s for s in context["across"] if s.kind == "fertility_accuracy"]
    # the eval run's own fertility; then each tokenizer of the fertility run against the bare eval only
    assert [s.title for s in scatter] == [f"Fertility against accuracy: eval-{x}" for x in ("own", "bare")]
    assert "this run's tokenizer" in scatter[0].intro and "tokenizer default of fertility" in scatter[1].intro
    for sec in scatter:  # one unit on the x axis: tokens per character, for every language
        table = sec.figures[0].table
        assert table.columns == ["language", "tokens per character", "continuation: accuracy"]
        assert [r[0].text for r in table.rows] == LANGS
        corr = {r[0].text: r for r in sec.blocks[1].rows}  # both rise linearly with the language index
        assert list(corr) == ["continuation", "bpc"] and float(corr["continuation"][2].text) == pytest.approx(1.0)
    bare_x = [float(r[1].text) for r in scatter[1].figures[0].table.rows]
    assert bare_x == pytest.approx([0.25, 0.3, 0.35, 0.4, 0.45])  # tokens_per_char, never per-word fertility


def test_fertility_plots_one_unit_and_only_with_enough_languages(tmp_path):
    context = build_report([fertility_run(tmp_path).path], strict=True)
    (sec,) = [s for _, secs in context["runs"] for s in secs if s.kind == "fertility"]
    (fig,) = sec.figures
    assert "tokens per character" in fig.caption.lower() and "word" not in fig.alt
    cols = fig.table.columns
    assert cols[2:5] == ["default: tokens per word", "default: tokens per character", "default: parity with English"]
    rows = {r[0].text: r for r in fig.table.rows}
    assert rows["zho_Hans"][2].text == "–" and rows["fra_Latn"][2].text == "1.5"  # no per-word figure for Chinese
    few = eval_run(tmp_path, "few", acc={lang: 0.5 for lang in LANGS[:4]})
    context = build_report([few.path], strict=True)
    scatter = [s for s in context["across"] if s.kind == "fertility_accuracy"]
    assert scatter and not scatter[0].figures  # 4 languages: a table, no figure


def test_unknown_layouts_never_break_the_report(tmp_path, monkeypatch):
    odd = odd_run(tmp_path)
    from babelscope.report import write_report as public_write_report

    path = public_write_report([odd.path], tmp_path / "odd.html", strict=True)
    assert path == tmp_path / "odd.html"
    html = path.read_text(encoding="utf-8")
    assert "future-verb" in html
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # names are escaped
    from babelscope.report import sections_interpret

    def broken(run):
        raise KeyError("a key the renderer expected")

    monkeypatch.setattr(sections_interpret, "head_scores", broken)
    context = build_report([eval_run(tmp_path).path])
    errors = [s for _, secs in context["runs"] for s in secs if s.kind == "error"]
    assert len(errors) == 1 and "KeyError" in errors[0].blocks[0].text
    assert any(s.kind == "languages" for _, secs in context["runs"] for s in secs)  # the rest still renders
    with pytest.raises(KeyError):
        build_report([eval_run(tmp_path, name="again").path], strict=True)


def test_cypher_tables_per_language_and_kind(full_context):
    secs = sections_of(full_context, "cypher", "cypher")
    assert [s.title for s in secs] == ["Text2Cypher: per language", "Text2Cypher: per question kind"]
    table = secs[0].figures[0].table
    assert table.columns[2:] == [
        "exact match",
        "Google-BLEU",
        "ROUGE-L",
        "execution accuracy",
        "syntax-error rate",
        "items",
    ]
    assert "execution accuracy" in secs[0].figures[0].alt  # the headline
    kinds = secs[1].figures[0].table  # execution accuracy per language (rows) and question kind (columns)
    assert kinds.columns == ["language", "lookup", "aggregation"]
    assert [[c.text for c in r] for r in kinds.rows][0] == ["eng_Latn", "0.5", "0.1"]
    assert any(s.kind == "consistency" for s in sections_of(full_context, "cypher"))


def test_mask_before_after_and_trained_heads(full_context):
    ba = sections_of(full_context, "mask", "before_after")
    assert [s.title for s in ba] == ["Before and after, per language: continuation"]  # before + after, once
    table = ba[0].figures[0].table
    assert table.columns == ["language", "before", "after", "after − before"]
    assert [r[3].text for r in table.rows] == ["0", "+0.01", "+0.02", "+0.03", "+0.04"]
    assert not [s for s in sections_of(full_context, "mask", "languages") if s.title.endswith(("before", "after"))]
    mask = sections_of(full_context, "mask", "head_mask")[0].figures[0].table
    assert [(r[0].text, r[3].text) for r in mask.rows] == [("L2.H1", "0.4"), ("L4.H0", "1.3"), ("L0.H3", "0.9")]


def test_merge_keeps_its_per_model_evals(full_context, all_runs):
    nested = [run for run, _ in full_context["runs"] if run.path == all_runs["merge"] / "eval" / "merged"]
    assert len(nested) == 1 and nested[0].verb == "eval"


def test_nested_runs_are_found(tmp_path):
    from babelscope.runs import RunFolder

    demo = RunFolder.create(tmp_path, "default", "demo", {"languages": LANGS}, run_name="demo", announce=False)
    demo.write_results({"verb": "demo", "runs": []})
    fert = fertility_run(demo.path)
    assert find_run_folders([demo.path]) == [demo.path, fert.path]
    assert find_run_folders([tmp_path]) == [demo.path, fert.path]
    broken = demo.path / "default" / "eval"  # a sub-run interrupted mid-write: skipped, the rest renders
    broken.mkdir(parents=True)
    (broken / "results.json").write_text("{not json")
    context = build_report([demo.path], strict=True)
    assert [run.path for run, _ in context["runs"]] == [demo.path, fert.path]
    with pytest.raises(UsageError, match="cannot read"):
        build_report([broken], strict=True)


@pytest.fixture
def main():
    from babelscope.cli.main import main

    return main


def test_cli_report_and_errors(all_runs, tmp_path, capsys, main):
    out = tmp_path / "r.html"
    assert main(["report", str(all_runs["eval"]), str(all_runs["cypher"]), "-o", str(out)]) == 0
    assert out.exists() and "Text2Cypher" in out.read_text(encoding="utf-8")
    assert str(out.resolve()) in capsys.readouterr().out
    assert main(["report", str(tmp_path / "missing"), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and err.count("\n") == 1


def test_numbers_are_formatted_sanely():
    from babelscope.report.model import cell, fmt

    assert fmt(0.123456) == "0.1235" and fmt(3) == "3" and fmt(12345) == "12,345" and fmt(None) == "–"
    assert fmt(math.nan) == "nan"
    assert cell(0.05, signed=True).text == "+0.05" and "pos" in cell(0.05, signed=True).cls
    from babelscope.report.model import MAX_ALT, Figure, Table

    long = Figure("data:", "Bar chart. " + "; ".join(f"lang{i} {i}" for i in range(300)), "", Table.make(["a"], []))
    assert len(long.alt) <= MAX_ALT and long.alt.endswith("every number is in the table that follows.")
    assert "bad" in cell(0.05, signed=True, lower_is_better=True).cls and cell(0.0, signed=True).text == "0"


def test_layers_diff_shows_the_parameter_change(tmp_path):
    from babelscope.runs import RunFolder

    run = RunFolder.create(tmp_path, "expert", "layers", {"diff": "base,expert"}, run_name="diff", announce=False)
    change = {"layers": [0, 1, 2, 3], "change": [0.3, 0.1, 0.05, 0.2], "top_rate": 0.05}
    rec = {"layers": [0], "bottom": 1, "top": 1, "budget": 0.25, "max_depth": 1.0}
    run.write_json("layers.json", {"model": "expert", "base": "base", "method": "parameter change",
                                   "recommended": rec, "ranking": [0, 3, 1, 2], "evidence": {"param_diff": change}})
    run.write_results({"source": "parameter change", "recommended": rec, "ranking": [0, 3, 1, 2],
                       "onset_layer": {}, "param_diff": change})
    (sec,) = [s for _, secs in build_report([run.path], strict=True)["runs"] for s in secs if s.kind == "layers"]
    assert sec.title == "Most-changed layers (parameter change against the base)"
    table = sec.figures[0].table
    assert table.columns == ["layer", "chosen", "relative parameter change"]
    assert [r[2].text for r in table.rows] == ["0.3", "0.1", "0.05", "0.2"] and table.rows[0][1].text == "yes"
    assert sec.intro.startswith("Layers to finetune: 0 (layer 0: relative parameter change 0.3), the 25% most-changed")
