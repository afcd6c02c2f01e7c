"""Vision-language models: the adapter finds the language model, hooks are exact on image + text,
only text positions count, PLAST training moves only the chosen layers, a planted layer is found."""

import pytest
import torch

from babelscope.data.visual import builtin_items
from babelscope.improve import layer_finetune as lf
from babelscope.improve import visual_qt
from babelscope.improve.train_loop import TrainConfig
from babelscope.interpret import layers as ly
from babelscope.interpret import neurons as nr
from babelscope.interpret.ternary import classify
from babelscope.models import vision
from babelscope.models.adapters import get_path
from babelscope.models.hooks import SITE_KINDS, hooks
from lvlm_fixtures import LVLM_FAMILIES, tiny_lvlm_loaded

LANGS = ["eng_Latn", "zho_Hans", "fra_Latn"]


@pytest.fixture(scope="module")
def items():
    return builtin_items(LANGS, n=8)


@pytest.fixture(scope="module")
def lvlm():
    cache = {}

    def make(family, seed=0, **kw):
        if (family, seed) not in cache or kw:
            cache[family, seed] = tiny_lvlm_loaded(family, seed, **kw)
        return cache[family, seed]

    return make


def _batch(loaded, items, lang="zho_Hans", completions=None):
    return vision.encode(loaded, lang, [it.pil() for it in items], [it.questions[lang] for it in items], completions)


@pytest.mark.parametrize("family", LVLM_FAMILIES)
def test_adapter_finds_the_language_layers(lvlm, family):
    loaded = lvlm(family)
    a, model = loaded.adapter, loaded.model
    language_model = get_path(model, vision.LAYOUTS[family].language)
    assert a.model_type == family and a.layers(model) is language_model.layers
    assert a.final_norm(model) is language_model.norm
    assert a.n_layers == model.config.text_config.num_hidden_layers == len(a.layers(model))
    assert a.d_mlp == a.down(a.layer(model, 0)).in_features == model.config.text_config.intermediate_size
    vision_ids = {id(m) for part in vision.vision_parts(model).values() for m in part.modules()}
    assert vision_ids and not vision_ids & {id(m) for m in a.layers(model).modules()}
    assert lf.layer_param_names(model, a, [1]) == [n for n, _ in model.named_parameters() if ".layers.1." in n
                                                   and n.startswith(vision.LAYOUTS[family].language)]


@pytest.mark.parametrize("family", LVLM_FAMILIES)
def test_noop_hooks_leave_logits_bit_identical(lvlm, items, family):
    loaded = lvlm(family)
    batch = _batch(loaded, items[:3])
    with torch.no_grad():
        plain = vision.logits(loaded.model, batch)
        sites = {f"blocks.{i}.{k}": (lambda t, s: None) for i in range(loaded.adapter.n_layers) for k in SITE_KINDS}
        with hooks(loaded.model, sites):
            hooked = vision.logits(loaded.model, batch)
    assert torch.equal(plain, hooked)


@pytest.mark.parametrize("family", LVLM_FAMILIES)
def test_only_question_tokens_count(lvlm, items, family):
    """No image or special token is counted; what is counted is exactly the question's tokens."""
    loaded = lvlm(family)
    processor = loaded.extras["processor"]
    batch = _batch(loaded, items[:2])
    image_id = processor.image_token_id
    assert (batch.input_ids == image_id).any() and not batch.count_mask[batch.input_ids == image_id].any()
    for row, it in enumerate(items[:2]):
        question = loaded.tokenizer(it.questions["zho_Hans"], add_special_tokens=False)["input_ids"]
        assert batch.input_ids[row][batch.count_mask[row]].tolist() == question


@pytest.mark.parametrize("family", LVLM_FAMILIES)
def test_finetune_moves_only_the_chosen_layers(family, items):
    loaded = tiny_lvlm_loaded(family)
    before = {n: p.detach().clone() for n, p in loaded.model.named_parameters()}
    pairs = visual_qt.qt_pairs(items, "eng_Latn", LANGS)
    assert {p.direction for p in pairs} == {"zho_Hans>eng_Latn", "fra_Latn>eng_Latn"}
    cfg = TrainConfig(batch_size=2, lr=1e-2, warmup=0.0)
    share, out, fed = visual_qt.train_layers(loaded, [1], pairs, cfg, epochs=1.0, max_steps=2)
    assert out["steps"] == 2 and len(fed) == 4 and 0 < share["share"] < 1
    assert not any(p.requires_grad for p in loaded.model.parameters())  # frozen again after training
    prefix = loaded.adapter.layer_prefix(1)
    changed = {n for n, p in loaded.model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all(n.startswith(prefix) for n in changed)
    vision_names = [f"{path}." for path in vision.vision_parts(loaded.model)]
    untouched = [n for n in before if n.startswith(tuple(vision_names))]
    assert untouched and not set(untouched) & changed


def _plant(loaded, layer: int, language_ids: list[int], scale: float = 4.0):
    """Residual dimension 0 carries the language (+ for ``language_ids``, - otherwise); only layer
    ``layer``'s first quarter of gate neurons reads it, so they fire for that language alone."""
    model, a = loaded.model, loaded.adapter
    with torch.no_grad():
        embed = model.get_input_embeddings().weight  # [V, D]
        embed[:, 0] = -scale
        embed[language_ids, 0] = scale
        for i in range(a.n_layers):
            lay = a.layer(model, i)
            for proj in (a.gate(lay), a.up(lay), lay.self_attn.q_proj, lay.self_attn.k_proj, lay.self_attn.v_proj):
                proj.weight[:, 0] = 0.0  # blind to the language dimension ...
        quarter = a.d_mlp // 4
        a.gate(a.layer(model, layer)).weight[:quarter, 0] = scale  # ... except the planted neurons


@pytest.mark.parametrize("planted", [0, 1])
def test_planted_language_layer_is_selected(planted):
    """Image + question statistics of a 4-layer LLaVA rank the planted layer first and recommend it
    (unplanted, this model's top layer is 1: planting 0 must move the choice)."""
    items = builtin_items(LANGS, n=24)
    loaded = tiny_lvlm_loaded("llava", num_hidden_layers=4)
    ids = {lang: {i for it in items for i in loaded.tokenizer(it.prompt(lang))["input_ids"]} for lang in LANGS}
    _plant(loaded, planted, sorted(ids["zho_Hans"] - ids["eng_Latn"] - ids["fra_Latn"]))  # tokens only Chinese uses
    batches = ly.visual_batches(loaded, items, LANGS, max_tokens=400, batch_size=8)
    p = ly.visual_stats(loaded, batches, LANGS).probabilities()  # [L, F, K]
    classes = classify(p, nr.identify(p, LANGS, "ternary"))
    doc = ly.layer_report("planted", LANGS, classes, p, {"target_share": {}}, {}, budget=0.25, max_depth=0.5)
    assert doc["recommended"]["layers"] == [planted] and doc["ranking"][0] == planted
    quarter = loaded.adapter.d_mlp // 4
    assert p[planted, :quarter, 1].min() > 0.8 and p[planted, :quarter, 0].max() == 0  # zho fires, eng never


def test_chat_template_frames_the_prompt(items):
    """With a chat template the model is fed the template's turn (image where the template puts it)."""
    loaded = tiny_lvlm_loaded("llava")
    processor = loaded.extras["processor"]
    processor.chat_template = ("USER: {% for m in messages %}{% for c in m['content'] %}{% if c['type'] == 'image' %}"
                               "<image>\n{% else %}{{ c['text'] }}{% endif %}{% endfor %}{% endfor %} ASSISTANT:")
    batch = _batch(loaded, items[:1], "fra_Latn", [" A"])
    ids, question = batch.input_ids[0], items[0].questions["fra_Latn"]
    assert loaded.tokenizer.decode(ids[ids != processor.image_token_id]) == f"USER: \n{question} ASSISTANT: A"
    assert loaded.tokenizer.decode(ids[batch.completion_mask()[0]]) == " A"
    assert loaded.tokenizer.decode(ids[batch.count_mask[0]]) == question  # the template's framing never counts
