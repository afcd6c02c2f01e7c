"""The Just Go Parallel schedule: rounds of block_size pairs per language pair with the direction flipping
every round, placement first / last / mixed over the whole budget, a budget sized by the data that never
wraps, and counts of the documents the training loop actually fed.

Golden oracles: ported from nusnlp/Just-Go-Parallel at commit 3170142bc5e2e2259ec8ae425255236dadfeea7a
(Apache-2.0; see tests/fixtures/official/jgp/README.md): ``official_rounds`` / ``official_text`` follow
``prepare()`` and ``generate_text()`` of scripts/prepare_parallel.py, ``official_place`` follows the
``parallel_location`` branches of ``create_dataloader()`` in pretrain/tinyllama.py.
"""

import json
from collections import Counter
from pathlib import Path

import pytest

import babelscope as bs
from babelscope.data.corpus import Item
from babelscope.data.parallel import Doc, build_docs, jgp_rounds, pack_docs, place, schedule_pairs, seen, subsample
from babelscope.improve.train_loop import TrainConfig, train
from babelscope.schema import validate
from babelscope.testing import make_tiny_loaded
from finetune_fixtures import write_corpus

FIXTURES = Path(__file__).parent / "fixtures" / "official" / "jgp"
EN_FR, FR_EN, DE_EN, EN_DE = "eng_Latn>fra_Latn", "fra_Latn>eng_Latn", "deu_Latn>eng_Latn", "eng_Latn>deu_Latn"


# ----------------------------------------------------------------------------- oracles (official code, ported)


def official_rounds(data: dict, consecutive=1000, should_swap=True, first_swap=False) -> list:
    """prepare() of scripts/prepare_parallel.py: the (datum, swap) list it hands to prepare_full, in order."""
    splits = list(data.keys())
    data_idx = {k: 0 for k in splits}
    split_idx, finished, swap_order, batch = 0, False, first_swap, []
    while not finished:
        split_name = splits[split_idx]
        cur_data = data[split_name]
        start_idx = data_idx[split_name]
        end_idx = min(len(cur_data), start_idx + consecutive)
        if start_idx < end_idx:
            batch.extend([(d, swap_order) for d in cur_data[start_idx:end_idx]])
            data_idx[split_name] = end_idx
        split_idx += 1
        if split_idx >= len(splits):
            finished = True
            for split in splits:
                if data_idx[split] < len(data[split]):
                    finished = False
            split_idx = 0
            if should_swap:
                swap_order = not swap_order
    return batch


def official_text(json_datum: dict, reverse=False, sep="\n") -> str:
    """generate_text() of scripts/prepare_parallel.py."""
    return sep.join(f"{lang}: {json_datum[lang]}" for lang in sorted(json_datum.keys(), reverse=reverse))


def official_place(filenames: list, parallel_files: list, parallel_location: str, slim_perc=1.0) -> list:
    """create_dataloader() of pretrain/tinyllama.py: the file order for start / end / interleave."""
    filenames = list(filenames)
    if parallel_location == "start":
        return parallel_files + filenames
    if parallel_location == "end":
        return filenames + parallel_files
    new_filenames, num_slim = [], 0
    ratio = slim_perc * len(filenames) / float(len(parallel_files))
    for idx, parallel_file in enumerate(parallel_files):
        new_filenames.append(parallel_file)
        num_to_be_achieved = round(ratio * (idx + 1))
        num_to_be_added = num_to_be_achieved - num_slim
        slim_to_add = filenames[:num_to_be_added]
        new_filenames.extend(slim_to_add)
        num_slim += len(slim_to_add)
        filenames = filenames[num_to_be_added:]
    return new_filenames + filenames


# ----------------------------------------------------------------------------- helpers


def pair_items(n, langs, prefix):
    return [Item(f"{prefix}{k}", {lang: f"{lang[:3]} {prefix}{k}" for lang in langs}) for k in range(n)]


def splits_of(sizes):
    """Language pairs eng-fra, eng-deu, eng-spa with sizes[k] pairs each."""
    targets = ["fra_Latn", "deu_Latn", "spa_Latn"][: len(sizes)]
    return [("eng_Latn", t, pair_items(n, ("eng_Latn", t), t[:2])) for t, n in zip(targets, sizes, strict=True)]


# ----------------------------------------------------------------------------- golden tests


@pytest.mark.parametrize("sizes", [[2500, 1200, 3100], [1000, 1000], [999], [0, 1500], [4000, 10]])
def test_rounds_equal_the_official_loop_with_1000_pair_blocks(sizes):
    data = {f"s{k}": [(k, i) for i in range(n)] for k, n in enumerate(sizes)}
    expected = [(k, i, swap) for (k, i), swap in official_rounds(data)]
    assert jgp_rounds(sizes) == expected
    flipped = [(k, i, swap) for (k, i), swap in official_rounds(data, first_swap=True)]
    assert jgp_rounds(sizes, first_swap=True) == flipped


def test_documents_equal_the_official_texts_on_the_fixture():
    case = json.loads((FIXTURES / "schedule_case.json").read_text(encoding="utf-8"))
    data = {name: rows for name, rows in case["corpora"].items()}
    oracle = [official_text(d, reverse=swap) for d, swap in official_rounds(data, consecutive=case["block_size"])]
    assert oracle == case["expected_texts"]  # the fixture holds what the official code writes
    splits = []
    for name, rows in case["corpora"].items():
        target = {"fr": "fra_Latn", "de": "deu_Latn"}[name.split("-")[1]]
        items = [Item(f"{name}:{i}", {"eng_Latn": r["en"], target: r[name.split("-")[1]]}) for i, r in enumerate(rows)]
        splits.append(("eng_Latn", target, items))
    docs = schedule_pairs(splits, case["block_size"])
    assert [d.completion for d in docs] == case["expected_texts"]


@pytest.mark.parametrize("n_par,n_other", [(2, 4), (3, 10), (7, 5), (1, 1), (4, 0), (0, 3)])
@pytest.mark.parametrize("location", ["start", "end", "interleave"])
def test_placement_equals_the_official_file_order(n_par, n_other, location):
    par, other = [f"p{i}" for i in range(n_par)], [f"o{i}" for i in range(n_other)]
    if n_par == 0 and location == "interleave":
        assert place(par, other, location) == other  # the official code divides by zero here
        return
    assert place(par, other, location) == official_place(other, par, location)


# ----------------------------------------------------------------------------- the first rounds


def test_first_rounds_interleave_pairs_and_alternate_direction():
    docs = schedule_pairs(splits_of([5, 4]), block_size=2)
    rounds = [(d.direction, d.item_id) for d in docs]
    assert rounds == [
        (EN_FR, "fr0"),
        (EN_FR, "fr1"),
        (DE_EN, "de0"),
        (DE_EN, "de1"),  # round 1: en<fr, de<en sorted tags
        (FR_EN, "fr2"),
        (FR_EN, "fr3"),
        (EN_DE, "de2"),
        (EN_DE, "de3"),  # round 2: every pair reversed
        (EN_FR, "fr4"),  # round 3: deu-eng is used up
    ]
    assert docs[0].completion == "en: eng fr0\nfr: fra fr0" and docs[2].completion == "de: deu de0\nen: eng de0"
    assert docs[4].completion == "fr: fra fr2\nen: eng fr2"


def test_evenly_spaced_budget_keeps_every_pair_and_direction():
    docs = schedule_pairs(splits_of([4000, 4000]), block_size=1000)  # 4 rounds: 2 per direction
    kept = subsample(docs, 40)
    assert len(kept) == 40 and [docs.index(d) for d in kept] == sorted(docs.index(d) for d in kept)
    counts = Counter(d.direction for d in kept)
    assert set(counts) == {EN_FR, FR_EN, DE_EN, EN_DE} and max(counts.values()) - min(counts.values()) <= 1


# ----------------------------------------------------------------------------- what the training loop sees


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return str(write_corpus(tmp_path_factory.mktemp("jgp"), items=24))


def fed_kinds(docs, location, tok, corpus_docs=None):
    """Train a tiny model on the schedule; the kind of each document the loop fed, step by step."""
    chunks, starts = pack_docs(docs, tok, 16)
    loaded = make_tiny_loaded("llama", tok, seed=0, num_hidden_layers=1)
    out = train(
        loaded.model, chunks, TrainConfig(max_steps=10_000, batch_size=2, lr=1e-3), progress=False, chunk_docs=starts
    )
    per_step = out["documents_per_step"]
    assert out["steps"] == out["data_steps"] == len(per_step) < 10_000  # stopped at the data's end, no wrap
    fed = [i for step in per_step for i in step]
    assert sorted(fed) == list(range(len(docs)))  # every document fed exactly once
    return [[docs[i].kind for i in step] for step in per_step], fed


@pytest.mark.parametrize("location", ["start", "end", "interleave"])
def test_placement_of_parallel_data_in_what_the_loop_feeds(corpus, tiny_tokenizer, location, capsys):
    docs = build_docs(
        [f"mono:{corpus}", f"parallel:{corpus}"], ["eng_Latn", "fra_Latn", "deu_Latn"], block_size=4, placement=location
    )
    steps, fed = fed_kinds(docs, location, tiny_tokenizer)
    assert "stopping at the end of the data (no wrap-around" in capsys.readouterr().err
    kinds = [k for step in steps for k in step]
    n_par, n = kinds.count("parallel"), len(kinds)
    assert n_par == 48 and kinds.count("mono") == 72  # 24 items x 2 pairs; 24 x 3 languages
    where = [i for i, k in enumerate(kinds) if k == "parallel"]
    if location == "start":  # Parallel First
        assert where == list(range(n_par))
    elif location == "end":  # Parallel Last
        assert where == list(range(n - n_par, n))
    else:  # Parallel Distributed: one parallel document, then its 1.5 share of the others
        assert where[0] == 0 and all(2 <= b - a <= 3 for a, b in zip(where, where[1:], strict=False))
    directions = [docs[i].direction for i in fed if docs[i].kind == "parallel"]
    assert directions[:12] == [EN_FR] * 4 + [DE_EN] * 4 + [FR_EN] * 4  # the first rounds, as the loop fed them


def test_loop_counts_repeats_and_stops_when_the_budget_exceeds_the_data(tiny_tokenizer, capsys):
    docs = [Doc("", f"en: cat {i}\nfr: chat {i}", "parallel", str(i), EN_FR if i % 2 else FR_EN) for i in range(6)]
    chunks, starts = pack_docs(docs, tiny_tokenizer, 8)
    loaded = make_tiny_loaded("llama", tiny_tokenizer, seed=0, num_hidden_layers=1)
    out = train(
        loaded.model, chunks * 2, TrainConfig(max_steps=500, batch_size=3), progress=False, chunk_docs=starts * 2
    )
    fed = [i for step in out["documents_per_step"] for i in step]
    assert seen(docs, fed) == {"parallel": {FR_EN: 6, EN_FR: 6}}  # two explicit epochs, counted as fed
    assert out["steps"] < 500 and "fewer than max_steps 500" in capsys.readouterr().err


# ----------------------------------------------------------------------------- the finetune verb


def test_finetune_jgp_preset_counts_both_directions_of_both_pairs(tiny_model_dir, corpus, tmp_path, capsys):
    """The jgp-paper preset, shrunk: 4-pair blocks, 32-token sequences, a 30-step cap on one epoch."""
    r = bs.finetune(
        protocol="jgp-paper",
        model=str(tiny_model_dir),
        languages="eng_Latn,fra_Latn,deu_Latn",
        data=f"parallel:{corpus}",
        eval_source=corpus,
        block_size=4,
        max_length=32,
        max_steps=30,
        train_batch_size=1,
        eval_limit=2,
        eval_tasks="bpc",
        output_path=str(tmp_path),
        no_save=True,
    )
    validate(r.results)
    data = r.results["data"]
    trained = data["trained"]["parallel"]
    assert set(trained) == {EN_FR, FR_EN, DE_EN, EN_DE} and all(n > 0 for n in trained.values())
    assert sum(trained.values()) <= sum(data["by_kind"]["parallel"].values())
    budget = data["budget"]
    assert budget["asked"] == "--epochs 1" and budget["capped_by_max_steps"] is True
    assert budget["budget_sequences"] == 30 == r.results["training"]["steps"]
    assert "training on an evenly spaced share of the schedule" in capsys.readouterr().err
    assert json.loads((r.path / "results.json").read_text())["data"]["trained"] == data["trained"]
    assert r.results["layers"] == list(range(len(r.results["layers"]))) and r.results["method"] == "full"
