"""lm-eval users' flags change what the model is fed exactly as lm-eval would (strings compared with
lm-eval's own ConfigurableTask and HFLM), and lm-eval's model_args keys load what they say."""

import copy
import json
import math
import re
import shlex
import shutil
from pathlib import Path

import pytest
import torch

from babelscope.cli.main import main
from babelscope.errors import UsageError
from babelscope.measure.engine import Engine
from babelscope.measure.evaluate import evaluate
from babelscope.measure.prompts import PromptFormat, parse_gen_kwargs
from babelscope.measure.tasks import get_task
from babelscope.models.load import load_model
from babelscope.verbs.config import ModelOptions
from measure_fixtures import small_corpus

ROOT = Path(__file__).resolve().parents[1]
CHAT = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}")
MC_DOCS = [
    {"item_id": "q1", "language": "eng_Latn", "question": "Capital of France?", "options": ["Paris", "Rome"],
     "answer": 0, "label": "Rome"},
    {"item_id": "q2", "language": "eng_Latn", "question": "2+2?", "options": ["4", "5", "6"], "answer": 0,
     "label": "no"},
]
GEN_DOCS = [
    {"item_id": "g1", "language": "eng_Latn", "question": "Say hi", "answer": "hi"},
    {"item_id": "g2", "language": "eng_Latn", "question": "Count: one, two", "answer": "three"},
]
MC_KEYS = {"doc_to_text": "Q: {{question}}\nA:", "doc_to_choice": "{{options}}", "doc_to_target": "{{answer}}"}
MC_KEYS_2 = {"doc_to_text": "question", "doc_to_choice": ["yes", "no", "Rome"], "doc_to_target": "label",
             "target_delimiter": ":: "}
GEN_KEYS = {"doc_to_text": "Q: {{question | upper}}\nA:", "doc_to_target": "{{answer}}",
            "generation_kwargs": {"until": ["\n"], "max_gen_toks": 5}}
MODES = {
    "plain": {},
    "system": {"system_instruction": "Be brief. "},
    "chat": {"apply_chat_template": True},
    "chat_system_multiturn": {"apply_chat_template": True, "system_instruction": "Be brief.",
                              "fewshot_as_multiturn": True},
}


@pytest.fixture(scope="module")
def chat_loaded(tiny_tokenizer):
    from babelscope.testing import make_tiny_loaded

    tok = copy.deepcopy(tiny_tokenizer)
    tok.chat_template = CHAT
    return make_tiny_loaded("llama", tok)


def _write_task(tmp_path, name, docs, keys, output_type):
    data = tmp_path / f"{name}.jsonl"
    data.write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    spec = {"name": name, "data": data.name, "output_type": output_type, **keys}
    (tmp_path / f"{name}.yaml").write_text(json.dumps(spec), encoding="utf-8")  # JSON is YAML
    return data, tmp_path / f"{name}.yaml"


def _lm_eval_requests(data, keys, output_type, lm, mode, gen_kwargs=None):
    """lm-eval 0.4's own requests for the docs of ``data`` under ``keys`` and the flags of ``mode``."""
    from lm_eval.api.task import ConfigurableTask

    task = ConfigurableTask(config={"task": "probe", "dataset_path": "json", "test_split": "test",
                                    "dataset_kwargs": {"data_files": {"test": str(data)}},
                                    "output_type": output_type, **copy.deepcopy(keys)})
    if gen_kwargs:
        task.set_config("generation_kwargs", gen_kwargs, update=True)
    chat = bool(mode.get("apply_chat_template"))
    out = []
    for doc in task.test_docs():
        ctx = task.fewshot_context(doc, 0, system_instruction=mode.get("system_instruction"), apply_chat_template=chat,
                                   fewshot_as_multiturn=mode.get("fewshot_as_multiturn", False),
                                   chat_template=lm.apply_chat_template if chat else None)
        reqs = task.construct_requests(doc, ctx, metadata=("probe", 0, 0), apply_chat_template=chat)
        out += [r.arguments for r in (reqs if isinstance(reqs, list) else [reqs])]
    return out


def _spy(monkeypatch):
    """Every request the babelscope engine scores or generates from, as it receives them."""
    seen = []
    for name in ("loglikelihood", "generate_until"):
        original = getattr(Engine, name)

        def spy(self, requests, *args, _original=original, **kwargs):
            seen.extend(requests)
            return _original(self, requests, *args, **kwargs)

        monkeypatch.setattr(Engine, name, spy)
    return seen


def _prompt(mode, gen_kwargs=None):
    template = mode.get("apply_chat_template")
    return PromptFormat(chat_template="default" if template else None,
                        system_instruction=mode.get("system_instruction"),
                        fewshot_as_multiturn=mode.get("fewshot_as_multiturn", False),
                        gen_kwargs=parse_gen_kwargs(gen_kwargs))


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize(("docs", "keys"), [(MC_DOCS, MC_KEYS), (MC_DOCS, MC_KEYS_2)], ids=["template", "fields"])
def test_multiple_choice_requests_equal_lm_eval(chat_loaded, tmp_path, monkeypatch, mode, docs, keys):
    from lm_eval.models.huggingface import HFLM

    data, yaml_file = _write_task(tmp_path, "mc", docs, keys, "multiple_choice")
    seen = _spy(monkeypatch)
    evaluate(chat_loaded, [str(yaml_file)], ["eng_Latn"], source=None, progress=False,
             prompt=_prompt(MODES[mode]))
    lm = HFLM(pretrained=chat_loaded.model, tokenizer=chat_loaded.tokenizer, batch_size=2)
    expected = _lm_eval_requests(data, keys, "multiple_choice", lm, MODES[mode])
    assert seen == [tuple(a) for a in expected]
    if MODES[mode].get("apply_chat_template"):
        assert seen[0][0].endswith("<|assistant|>") and not seen[0][1].startswith(" ")


@pytest.mark.parametrize("mode", ["plain", "chat_system_multiturn"])
def test_generation_requests_and_gen_kwargs_equal_lm_eval(chat_loaded, tmp_path, monkeypatch, mode):
    from lm_eval.models.huggingface import HFLM

    gen_kwargs = 'until=["?", "\\n\\n"],max_gen_toks=3,do_sample=false,temperature=0'
    data, yaml_file = _write_task(tmp_path, "gen", GEN_DOCS, GEN_KEYS, "generate_until")
    seen = _spy(monkeypatch)
    result = evaluate(chat_loaded, [str(yaml_file)], ["eng_Latn"], source=None, progress=False,
                      prompt=_prompt(MODES[mode], gen_kwargs))
    lm = HFLM(pretrained=chat_loaded.model, tokenizer=chat_loaded.tokenizer, batch_size=2)
    expected = _lm_eval_requests(data, GEN_KEYS, "generate_until", lm, MODES[mode], parse_gen_kwargs(gen_kwargs))
    assert [ctx for ctx, _ in seen] == [ctx for ctx, _ in expected]
    for (_, ours), (_, theirs) in zip(seen, expected, strict=True):
        assert ours == {"until": ["?", "\n\n"], "max_gen_toks": 3}
        assert (theirs["until"], theirs["max_gen_toks"]) == (ours["until"], ours["max_gen_toks"])
    assert result.results["config"]["gen_kwargs"] == {"until": ["?", "\n\n"], "max_gen_toks": 3}
    assert [r["context"] for r in result.records["gen"]["eng_Latn"]] == [ctx for ctx, _ in seen]


@pytest.mark.parametrize(("text", "why"), [
    ("temperature=0.7", "decodes greedily"), ("do_sample=true", "decodes greedily"), ("top_p=0.9", "top_p"),
    ("max_gen_toks=0", "positive whole number"), ("until=[]", "stop string"), ("until", "key=value")])
def test_sampling_gen_kwargs_are_one_line_errors(text, why):
    with pytest.raises(UsageError, match=why):
        parse_gen_kwargs(text)


def test_gen_kwargs_forms():
    assert parse_gen_kwargs('{"until": "\\n", "max_gen_toks": 4}') == {"until": ["\n"], "max_gen_toks": 4}
    assert parse_gen_kwargs("until=Q:,max_gen_toks=2,temperature=0.0") == {"until": ["Q:"], "max_gen_toks": 2}


def test_named_and_missing_chat_templates(chat_loaded, tiny_tokenizer, tmp_path):
    _, yaml_file = _write_task(tmp_path, "mc", MC_DOCS, MC_KEYS, "multiple_choice")
    with pytest.raises(UsageError, match="no chat template"):
        PromptFormat(chat_template="default").apply(tiny_tokenizer, [])
    with pytest.raises(UsageError, match="without a name"):
        PromptFormat(chat_template="tool_use").apply(chat_loaded.tokenizer, [])
    tok = copy.deepcopy(chat_loaded.tokenizer)
    tok.chat_template = {"default": CHAT, "terse": "{{ messages[-1]['content'] }}=>"}
    items = get_task(str(yaml_file)).load(["eng_Latn"])["eng_Latn"]
    terse = PromptFormat(chat_template="terse").apply(tok, items)
    assert [it.context for it in terse] == ["Q: Capital of France?\nA:=>", "Q: 2+2?\nA:=>"]
    assert terse[0].choices == ["Paris", "Rome"] and items[0].choices == [" Paris", " Rome"]
    with pytest.raises(UsageError, match="default, terse"):
        PromptFormat(chat_template="chatty").apply(tok, items)


def test_yaml_target_delimiter_and_templates_build_items(tmp_path):
    _, yaml_file = _write_task(tmp_path, "mc", MC_DOCS, MC_KEYS_2, "multiple_choice")
    item = get_task(str(yaml_file)).load(["eng_Latn"])["eng_Latn"][0]
    assert (item.context, item.choices, item.gold) == ("Capital of France?", [":: yes", ":: no", ":: Rome"], 2)
    rows = [{"item_id": "n1", "language": "eng_Latn", "q": "2+2", "n": 4}]
    _, yaml_file = _write_task(tmp_path, "num", rows, {"doc_to_text": "{{q}}=", "doc_to_target": "n"}, "generate_until")
    item = get_task(str(yaml_file)).load(["eng_Latn"])["eng_Latn"][0]
    assert (item.context, item.references, item.until) == ("2+2=", ["4"], ["\n"])
    bad = {**MC_KEYS, "doc_to_text": "Q: {{missing}}"}
    _, yaml_file = _write_task(tmp_path, "bad", MC_DOCS, bad, "multiple_choice")
    with pytest.raises(Exception, match="q1: template .* cannot be filled"):
        get_task(str(yaml_file))


def test_fractional_limit_keeps_the_same_items_in_every_language(tiny_loaded, tmp_path):
    corpus = tmp_path / "aligned.jsonl"
    small_corpus().save(str(corpus))
    langs = ["eng_Latn", "fra_Latn", "deu_Latn"]
    total = len(get_task("continuation").load(langs, source=str(corpus))["eng_Latn"])
    result = evaluate(tiny_loaded("llama"), ["continuation"], langs, limit=0.25, source=str(corpus),
                      progress=False, fertility=False)
    ids = {lang: [r["item_id"] for r in recs] for lang, recs in result.records["continuation"].items()}
    assert len(ids["eng_Latn"]) == math.ceil(0.25 * total) < total
    assert ids["eng_Latn"] == ids["fra_Latn"] == ids["deu_Latn"]
    assert result.results["config"]["limit"] == 0.25


def test_fractional_limit_on_uneven_languages_takes_shared_ids(tiny_loaded, tmp_path):
    rows = [{**d, "item_id": f"q{i}", "language": lang} for i, d in enumerate(MC_DOCS * 4)
            for lang in (["eng_Latn", "fra_Latn"] if i != 1 else ["eng_Latn"])]
    _, yaml_file = _write_task(tmp_path, "mc", rows, MC_KEYS, "multiple_choice")
    result = evaluate(tiny_loaded("llama"), [str(yaml_file)], ["eng_Latn", "fra_Latn"], limit=0.5, source=None,
                      progress=False)
    ids = {lang: [r["item_id"] for r in recs] for lang, recs in result.records["mc"].items()}
    assert ids == {"eng_Latn": ["q0", "q1", "q2", "q3"], "fra_Latn": ["q0", "q2", "q3"]}


def test_max_length_truncates_context_from_the_left_as_hflm(tiny_model_dir):
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    requests = [("On day 12 the cat walked slowly to the garden and rested there. Then the", " dog"),
                ("Le jour 3, le chat marcha lentement vers le jardin", " et")]
    short = load_model(str(tiny_model_dir), max_length=12)
    assert short.extras["max_length"] == 12
    ours = evaluate_requests(short, requests)
    lm = HFLM(pretrained=short.model, tokenizer=short.tokenizer, batch_size=2, max_length=12)
    theirs = lm.loglikelihood([Instance("loglikelihood", {}, r, i) for i, r in enumerate(requests)],
                              disable_tqdm=True)
    assert [lp for lp, _ in ours] == pytest.approx([lp for lp, _ in theirs], abs=1e-4)
    full = evaluate_requests(load_model(str(tiny_model_dir)), requests)
    assert abs(full[0][0] - ours[0][0]) > 1e-3  # the cut changed what the model saw


def evaluate_requests(loaded, requests):
    from babelscope.measure.evaluate import _scorer

    return _scorer(loaded, "babelscope", 2, False).loglikelihood(requests)


@pytest.fixture(scope="module")
def lora_dir(tiny_model_dir, tmp_path_factory):
    from peft import LoraConfig, get_peft_model

    base = load_model(str(tiny_model_dir)).model
    config = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    torch.manual_seed(3)
    path = tmp_path_factory.mktemp("lora")
    get_peft_model(base, config).save_pretrained(path)
    return path


def test_peft_model_arg_equals_peft_on_the_base(tiny_model_dir, lora_dir):
    from peft import PeftModel

    ids = torch.tensor([[1, 40, 41, 42, 43]])
    options = ModelOptions(model_args=f"pretrained={tiny_model_dir},peft={lora_dir},device_map=cpu,dtype=float32")
    options.validate()
    ours = options.load()
    reference = PeftModel.from_pretrained(load_model(str(tiny_model_dir)).model, str(lora_dir)).eval()
    base = load_model(str(tiny_model_dir)).model
    with torch.no_grad():
        got, want, plain = (m(ids).logits for m in (ours.model, reference, base))  # [1, 5, V]
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    assert (got - plain).abs().max() > 1e-3
    assert type(ours.model).__name__ == "LlamaForCausalLM"  # merged: the hooks see plain modules


def test_quantisation_without_bitsandbytes_is_one_line(tiny_model_dir):
    import importlib.util

    if importlib.util.find_spec("bitsandbytes") is not None:
        pytest.skip("bitsandbytes is installed")
    for key in ("load_in_4bit", "load_in_8bit"):
        with pytest.raises(UsageError, match=f"{key}=True needs bitsandbytes.*pip install bitsandbytes"):
            ModelOptions(model_args=f"pretrained={tiny_model_dir},{key}=True").validate()


def _docs_example() -> dict[str, str]:
    """The code blocks of docs/measure.md's "Coming from lm-evaluation-harness" section, by language."""
    text = (ROOT / "docs" / "measure.md").read_text(encoding="utf-8")
    section = text.split("## Coming from lm-evaluation-harness")[1].split("\n## ")[0]
    return dict(re.findall(r"```(\w+)\n(.*?)```", section, re.S))


def test_docs_example_runs_on_a_tiny_chat_model(chat_loaded, tmp_path, monkeypatch):
    blocks = _docs_example()
    example = ROOT / "examples" / "lm_eval_tasks"
    assert blocks["jsonl"] == (example / "qa.jsonl").read_text(encoding="utf-8")  # the page shows the files
    assert blocks["yaml"] == (example / "qa.yaml").read_text(encoding="utf-8")
    shutil.copytree(example, tmp_path / "examples" / "lm_eval_tasks")
    chat_loaded.model.save_pretrained(tmp_path / "chat-model")
    chat_loaded.tokenizer.save_pretrained(tmp_path / "chat-model")
    small_corpus().save(str(tmp_path / "aligned.jsonl"))
    argv = shlex.split(blocks["bash"].replace("\\\n", " "))
    assert argv[0] == "babelscope" and "pretrained=smollm2-135m" in argv[argv.index("--model_args") + 1]
    argv = [a.replace("pretrained=smollm2-135m", f"pretrained={tmp_path / 'chat-model'}") for a in argv[1:]]
    monkeypatch.chdir(tmp_path)
    assert main([*argv, "--source", "aligned.jsonl"]) == 0
    run = next((tmp_path / "runs").rglob("results.json")).parent
    results = json.loads((run / "results.json").read_text())
    assert set(results["tasks"]) == {"continuation", "qa"} and results["config"]["limit"] == 0.01
    qa = [json.loads(x) for x in (run / "samples" / "qa.fra_Latn.jsonl").read_text().splitlines()]
    assert [r["item_id"] for r in qa] == ["q1"]  # ceil(0.01 * 2 items), the same item in every language
    assert qa[0]["context"] == ("<|system|>Answer in one word.\n<|user|>Question: Combien font deux plus deux ?\n"
                                "Answer:\n<|assistant|>")
    cont = {lang: [json.loads(x) for x in (run / "samples" / f"continuation.{lang}.jsonl").read_text().splitlines()]
            for lang in ("eng_Latn", "fra_Latn")}
    assert [r["item_id"] for r in cont["eng_Latn"]] == [r["item_id"] for r in cont["fra_Latn"]]
    assert cont["eng_Latn"][0]["context"].startswith("<|system|>Answer in one word.\n<|user|>")


def test_chat_template_the_tokenizer_lacks_is_one_line_and_leaves_no_run(tiny_model_dir, tmp_path, capsys):
    argv = ["eval", "--model_args", f"pretrained={tiny_model_dir}", "--tasks", "continuation", "--languages",
            "eng_Latn", "--limit", "2", "--apply_chat_template", "--output_path", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()  # "run folder ..." (the model loaded), then the error
    assert err[-1].startswith("babelscope: error: --apply_chat_template: the model's tokenizer has no chat template")
    assert not list(tmp_path.rglob("config.yaml"))


def test_lm_eval_engine_gets_max_length(tiny_model_dir):
    from babelscope.measure.evaluate import _scorer

    scorer = _scorer(load_model(str(tiny_model_dir), max_length=12), "lm_eval", 2, False)
    assert scorer.lm.max_length == 12


def test_python_api_takes_the_flags_and_resume_sees_the_same_run(tiny_model_dir, tmp_path):
    import babelscope as bs
    from babelscope.schema import validate

    small_corpus().save(str(tmp_path / "aligned.jsonl"))
    options = dict(model=str(tiny_model_dir), tasks="continuation", languages=["eng_Latn", "fra_Latn"], limit=0.05,
                   system_instruction="Read: ", gen_kwargs={"max_gen_toks": 4}, source=str(tmp_path / "aligned.jsonl"),
                   output_path=str(tmp_path / "runs"))
    r = bs.eval(**options)
    validate(r.results)
    assert r.results["config"]["system_instruction"] == "Read: " and r.results["config"]["limit"] == 0.05
    records = r.extras["evaluation"].records["continuation"]
    assert all(rec["context"].startswith("Read: ") for recs in records.values() for rec in recs)
    again = bs.eval(**options, resume=str(r.path))  # the same settings: the same run, nothing scored again
    assert again.results["tasks"] == r.results["tasks"]
    with pytest.raises(UsageError, match="system_instruction"):
        bs.eval(**{**options, "system_instruction": "Lies: "}, resume=str(r.path))
