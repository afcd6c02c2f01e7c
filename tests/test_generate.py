"""The generation engine gives Hugging Face ``generate``'s greedy tokens (fp32, tiny models of every family)."""

import pytest
import torch

from babelscope.measure import generate as gen
from babelscope.measure.engine import Engine
from babelscope.measure.generate import Decoder, greedy_tokens
from babelscope.models.forward import Unembedding, pad_batch, pad_id_of

SHARED = "Answer the question in one short sentence, in the language of the question. Question: "
QUESTIONS = ["Where did the cat sit?", "Où le chat était-il assis ?", "Где сидела кошка?", "猫坐在哪里？",
             "Wo saß die Katze?"]


def _prompts(tokenizer, texts=QUESTIONS):
    bos = [tokenizer.bos_token_id]
    return [bos + tokenizer.encode(SHARED + q, add_special_tokens=False) for q in texts]


def _dec(loaded):
    return Decoder.of(loaded.model, loaded.tokenizer)


def hf_greedy(loaded, prompts, max_new):
    """HF generate on the left-padded batch, each row cut after its EOS (generate pads after it)."""
    pad = pad_id_of(loaded.tokenizer)
    batch = {k: v.to(loaded.model.device) for k, v in pad_batch(prompts, pad, "left").items()}
    with torch.no_grad():
        out = loaded.model.generate(**batch, max_new_tokens=max_new, do_sample=False, pad_token_id=pad,
                                    temperature=None, top_p=None, top_k=None)[:, batch["input_ids"].shape[1]:]
    eos = _dec(loaded).eos_ids
    rows = []
    for row in out.tolist():
        ends = [i for i, t in enumerate(row) if t in eos]
        rows.append(row[: ends[0] + 1] if ends else row)
    return rows


def test_greedy_equals_hf_generate(tiny_loaded, family):
    loaded = tiny_loaded(family)
    prompts = _prompts(loaded.tokenizer)
    assert gen.shared_prefix(prompts) >= gen.MIN_SHARED_PREFIX  # the shared-prefix pass runs
    ours = greedy_tokens(_dec(loaded), prompts, 12)
    assert ours == hf_greedy(loaded, prompts, 12)


def test_rows_leave_the_batch_and_match_single_rows(tiny_loaded):
    loaded = tiny_loaded("llama")
    dec = _dec(loaded)
    prompts = _prompts(loaded.tokenizer)
    limits = [2, 9, 4, 12, 6]
    sizes = []
    handle = dec.body.register_forward_pre_hook(lambda m, a, kw: sizes.append(kw["input_ids"].shape[0]),
                                                with_kwargs=True)
    try:
        ours = greedy_tokens(dec, prompts, 12, stop=lambda row, toks: len(toks) >= limits[row], draft=0)
    finally:
        handle.remove()
    assert [len(t) for t in ours] == limits
    steps = sizes[1:]  # after the shared prefix's own pass
    assert steps[0] == 5 and steps[-1] == 1 and steps == sorted(steps, reverse=True)  # rows leave as they end
    assert sum(steps) == sum(limits)  # one row-step per generated token, nothing run past a row's end
    alone = [greedy_tokens(dec, [p], n)[0] for p, n in zip(prompts, limits, strict=True)]
    assert ours == alone


def test_waiting_rows_take_the_places_of_ended_rows(tiny_loaded, family):
    loaded = tiny_loaded(family)
    prompts = _prompts(loaded.tokenizer, QUESTIONS + ["Le chat était assis sur le tapis ?", "Кошка?", "猫?"])
    limits = [3, 12, 1, 7, 12, 2, 9, 5]
    sizes = []
    handle = _dec(loaded).body.register_forward_pre_hook(lambda m, a, kw: sizes.append(kw["input_ids"].shape[0]),
                                                         with_kwargs=True)
    try:
        ours = greedy_tokens(_dec(loaded), prompts, 12, stop=lambda row, toks: len(toks) >= limits[row], rows=3,
                             draft=0)
    finally:
        handle.remove()
    assert max(sizes) == 3 and sizes.count(3) > 3  # ended rows' places are taken again
    assert ours == [t[:n] for t, n in zip(hf_greedy(loaded, prompts, 12), limits, strict=True)]


@pytest.mark.parametrize("family", ["gemma3_text", "gemma2", "mistral"])
def test_sliding_window_shorter_than_prompts(tiny_tokenizer, family):
    from transformers import AutoModelForCausalLM

    from babelscope.models.load import LoadedModel
    from babelscope.testing import tiny_config

    config = tiny_config(family, len(tiny_tokenizer))
    config.sliding_window = 6  # far shorter than the shared prefix: the window binds inside it
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32, attn_implementation="eager").eval()
    loaded = LoadedModel(model, tiny_tokenizer, f"tiny-{family}", source="testing")
    prompts = _prompts(tiny_tokenizer)
    assert greedy_tokens(_dec(loaded), prompts, 10) == hf_greedy(loaded, prompts, 10)


def test_no_shared_prefix_and_single_rows(tiny_loaded):
    loaded = tiny_loaded("qwen2")
    tok = loaded.tokenizer
    prompts = [tok.encode(t) for t in ("The cat sat", "Кошка сидела на коврике и смотрела", "猫")]
    assert greedy_tokens(_dec(loaded), prompts, 7) == hf_greedy(loaded, prompts, 7)
    assert greedy_tokens(_dec(loaded), prompts[:1], 0) == [[]]


def test_blocked_argmax_equals_full_argmax(tiny_loaded, family):
    loaded = tiny_loaded(family)
    head = Unembedding(loaded.model)
    hidden = torch.randn(9, loaded.model.config.get_text_config().hidden_size)  # [P, D]
    whole = head(hidden).argmax(-1)
    for block in (7, 64, 399, None):
        assert torch.equal(head.argmax(hidden, block), whole)
    tied = torch.zeros(2, hidden.shape[1])  # every logit equal: the first id wins, as torch.argmax
    assert head.argmax(tied, 7).tolist() == head(tied).argmax(-1).tolist()


def _hflm_generate(loaded, reqs):
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(pretrained=loaded.model, tokenizer=loaded.tokenizer, batch_size=4)
    return lm.generate_until([Instance("generate_until", {}, a, i) for i, a in enumerate(reqs)], disable_tqdm=True)


def test_generate_until_equals_hflm_on_every_family(tiny_loaded, family):
    loaded = tiny_loaded(family)
    reqs = [(SHARED + q, {"until": [".", "?"], "max_gen_toks": 10}) for q in QUESTIONS]
    reqs.append(("Кошка сидела на коврике и", {"until": ["\n"], "max_gen_toks": 6}))
    ours = Engine(loaded, batch_size=8, progress=False).generate_until(reqs)
    assert ours == _hflm_generate(loaded, reqs)
    assert Engine(loaded, batch_size=2, progress=False).generate_until(reqs) == ours


def test_auto_batch_size_generates_and_scores_the_same(tiny_loaded):
    from babelscope.measure.batch_size import AUTO_MAX_ROWS, auto_rows, bytes_per_row

    loaded = tiny_loaded("llama")
    per_row = bytes_per_row(loaded.adapter, torch.float32, 100)
    assert auto_rows(loaded, 100, budget=3 * per_row + 1) == 3
    assert auto_rows(loaded, 100, budget=0) == 1
    assert auto_rows(loaded, 100, budget=10**15) == AUTO_MAX_ROWS
    reqs = [(SHARED + q, {"until": ["."], "max_gen_toks": 8}) for q in QUESTIONS]
    auto = Engine(loaded, batch_size="auto", progress=False)
    assert auto.generate_until(reqs) == Engine(loaded, batch_size=1, progress=False).generate_until(reqs)
    pairs = [(SHARED, " " + q) for q in QUESTIONS]
    fixed = Engine(loaded, batch_size=2, progress=False).loglikelihood(pairs)
    assert [lp for lp, _ in auto.loglikelihood(pairs)] == pytest.approx([lp for lp, _ in fixed], abs=1e-5)


def test_stop_strings_and_cut():
    assert gen.cut_at_stops("SELECT 1;\nQuestion: x", ["\nQuestion:", ";"]) == "SELECT 1"
    assert gen.cut_at_stops("abc", ["", "z"]) == "abc"  # an empty stop string is ignored, as lm-eval does


def test_generation_bar_counts_items_and_tokens(monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    bar = gen.GenerationBar(3, "gen")
    bar.done(0, [1, 2, 3])
    bar.done(2, [4])
    assert bar.bar.n == 2 and bar.tokens == 4 and "tok/s" in bar.bar.postfix
    bar.close()


def test_batch_size_option_takes_auto_where_the_engine_runs():
    from babelscope.errors import UsageError
    from babelscope.verbs.cypher import CypherConfig
    from babelscope.verbs.eval import EvalConfig
    from babelscope.verbs.layers import LayersConfig

    assert EvalConfig.from_mapping({"batch_size": "auto"}).batch_size == "auto"
    assert CypherConfig.from_mapping({"batch_size": "AUTO"}).batch_size == "auto"
    assert EvalConfig.from_mapping({"batch_size": "4"}).batch_size == 4
    for bad in ("0", "lots", -2, True):
        with pytest.raises(UsageError, match="--batch_size must be a number of at least 1 or auto"):
            EvalConfig.from_mapping({"batch_size": bad})
    with pytest.raises(UsageError, match="auto: eval and cypher only"):
        LayersConfig.from_mapping({"batch_size": "auto"})


def test_eval_generation_with_auto_batch_equals_batch_of_one(tiny_model_dir, tmp_path):
    import json

    from babelscope.cli.main import main

    items = tmp_path / "qa.jsonl"
    rows = [{"item_id": f"q{i}", "language": lang, "context": SHARED + q, "references": ["x"], "until": ["."],
             "max_gen_toks": 8} for i, q in enumerate(QUESTIONS) for lang in ("eng_Latn", "fra_Latn")]
    items.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    outputs = {}
    for size in ("auto", "1"):
        args = ["eval", "--model_args", f"pretrained={tiny_model_dir}", "--tasks", str(items), "--languages",
                "eng_Latn,fra_Latn", "--batch_size", size, "--output_path", str(tmp_path / size), "--run_name", "r"]
        assert main(args) == 0
        run = next(p for p in (tmp_path / size).rglob("r") if p.is_dir())
        assert json.loads((run / "results.json").read_text())["config"]["batch_size"] == (size if size == "auto" else 1)
        outputs[size] = [json.loads(line)["output"] for line in (run / "samples" / "qa.fra_Latn.jsonl").open()]
    assert outputs["auto"] == outputs["1"] and len(outputs["1"]) == len(QUESTIONS)


def test_bfloat16_on_cpu_generates_and_scores(tiny_tokenizer):
    import math

    from babelscope.testing import make_tiny_loaded

    loaded = make_tiny_loaded("llama", tiny_tokenizer)
    loaded.model.to(torch.bfloat16)
    prompts = _prompts(tiny_tokenizer)
    assert greedy_tokens(_dec(loaded), prompts, 8) == hf_greedy(loaded, prompts, 8)
    engine = Engine(loaded, batch_size="auto", progress=False)
    scores = engine.loglikelihood([(SHARED, " " + q) for q in QUESTIONS])
    assert all(math.isfinite(lp) and lp < 0 for lp, _ in scores)
    assert all(isinstance(t, str) for t in engine.generate_until([(SHARED, {"until": ["."], "max_gen_toks": 5})]))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_greedy_equals_hf_generate(tiny_tokenizer, family):
    from babelscope.testing import make_tiny_loaded

    loaded = make_tiny_loaded(family, tiny_tokenizer)
    loaded.model.to("cuda")
    prompts = _prompts(tiny_tokenizer)
    assert greedy_tokens(_dec(loaded), prompts, 12) == hf_greedy(loaded, prompts, 12)
    reqs = [(SHARED + q, {"until": ["."], "max_gen_toks": 10}) for q in QUESTIONS]
    assert Engine(loaded, batch_size=8, progress=False).generate_until(reqs) == _hflm_generate(loaded, reqs)


def test_runs_of_neighbours_share_their_longer_prefixes(tiny_loaded, family):
    loaded = tiny_loaded(family)
    tok = loaded.tokenizer
    story = {"long": "The cat sat on the mat and looked out of the window at the garden for a long time. " * 2,
             "short": "Le chat était assis sur le tapis et regardait par la fenêtre. "}
    texts = [SHARED + story[kind] + q for kind in ("long", "short") for q in ("Where?", "Why?", "Qui ?")]
    prompts = [[tok.bos_token_id] + tok.encode(t, add_special_tokens=False) for t in texts]
    ordered = sorted(prompts, key=len, reverse=True)
    runs = gen._cheaper_runs(ordered)
    assert len(runs) > 1  # two stories: a prefix pass each, not one short common one
    assert all(gen._share([ordered[i] for i in run]) > gen.shared_prefix(prompts) for run in runs)
    assert greedy_tokens(_dec(loaded), prompts, 8) == hf_greedy(loaded, prompts, 8)
    lone = [[tok.bos_token_id] + tok.encode(q, add_special_tokens=False) for q in QUESTIONS]
    assert gen._cheaper_runs(lone) == [list(range(len(lone)))]  # nothing shared: one batched pass
