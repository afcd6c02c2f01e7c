"""Vision-language models (LVLMs): where the language model sits, loading, and image + text inputs.

An LVLM is loaded with transformers' ``AutoModelForImageTextToText`` and its ``AutoProcessor``
(kept in ``loaded.extras["processor"]``; ``loaded.tokenizer`` is the processor's tokenizer). The
adapter points at the **language model** inside it, so every hook site, neuron statistic and
layer selection acts on the language backbone; the vision tower and projector are never hooked
and never trained (``finetune`` makes only decoder layers trainable)::

    loaded = load_model("HuggingFaceTB/SmolVLM-256M-Instruct")   # or a local folder
    loaded.adapter.arch.layers                                    # "model.text_model.layers"
    batch = encode(loaded, "eng_Latn", [image], ["What colour is the shape?"])
    hidden = body_forward(loaded.model, loaded.adapter, batch)  # [B, T, D]; batch.count_mask: text positions

Supported families (``LAYOUTS``): LLaVA, Qwen2-VL, Qwen2.5-VL, Idefics3, SmolVLM and Gemma 3 with
vision. Their language models are llama-like (``self_attn.o_proj``, ``mlp.gate/up/down_proj``).
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from babelscope.errors import ModelLoadError


@dataclass(frozen=True)
class Layout:
    language: str  # the language model (decoder body with .layers and .norm), from the top object
    vision: tuple[str, ...]  # vision tower and projector (frozen, untouched)
    marker: str | None = None  # image placeholder in a prompt (None: the processor's image_token)


_LLAVA_LIKE = Layout("model.language_model", ("model.vision_tower", "model.multi_modal_projector"))
_QWEN = Layout("model.language_model", ("model.visual",), "<|vision_start|><|image_pad|><|vision_end|>")
_IDEFICS = Layout("model.text_model", ("model.vision_model", "model.connector"))

LAYOUTS: dict[str, Layout] = {
    "llava": _LLAVA_LIKE,
    "qwen2_vl": _QWEN,
    "qwen2_5_vl": _QWEN,
    "idefics3": _IDEFICS,
    "smolvlm": _IDEFICS,
    "gemma3": replace(_LLAVA_LIKE, marker="<start_of_image>"),
}
NESTED_IMAGES = ("idefics3", "smolvlm", "gemma3")  # processors that take one list of images per prompt
SLOT = "\x00babelscope-text\x00"  # stands for the user's text while a chat template is rendered


def language_architecture(model_type: str | None, text_arch):
    """The adapter entry of an LVLM family: ``text_arch`` moved under its language model (else None)."""
    layout = LAYOUTS.get(model_type or "")
    if layout is None:
        return None
    return replace(text_arch, layers=f"{layout.language}.layers", norm=f"{layout.language}.norm")


def is_vision(model) -> bool:
    return getattr(getattr(model, "config", None), "model_type", None) in LAYOUTS


def vision_parts(model) -> dict[str, torch.nn.Module]:
    """``{path: module}`` of the vision tower and projector of an LVLM."""
    from babelscope.models.adapters import get_path

    return {path: get_path(model, path) for path in LAYOUTS[model.config.model_type].vision}


# ----------------------------------------------------------------------------- loading


def folder_model_type(where: str, revision: str | None = None, trust_remote_code: bool = False) -> str | None:
    """``model_type`` of a model folder or hub id (None when its config cannot be read)."""
    config = Path(where) / "config.json"
    if config.is_file():
        return json.loads(config.read_text(encoding="utf-8")).get("model_type")
    try:
        from transformers import AutoConfig

        return AutoConfig.from_pretrained(where, revision=revision, trust_remote_code=trust_remote_code).model_type
    except (OSError, ValueError):
        return None


def model_class(where: str, revision: str | None = None, trust_remote_code: bool = False):
    """``AutoModelForImageTextToText`` for an LVLM folder or hub id, else ``AutoModelForCausalLM``."""
    from transformers import AutoModelForCausalLM, AutoModelForImageTextToText

    vision = folder_model_type(where, revision, trust_remote_code) in LAYOUTS
    return AutoModelForImageTextToText if vision else AutoModelForCausalLM


def load_processor(where: str, revision: str | None = None, trust_remote_code: bool = False):
    """The LVLM's processor (image processor + tokenizer); a one-line error when it cannot be built."""
    from transformers import AutoProcessor

    try:
        processor = AutoProcessor.from_pretrained(where, revision=revision, trust_remote_code=trust_remote_code)
    except ImportError as exc:
        raise ModelLoadError(f"the processor of {where} needs a package that is missing: "
                             f"{str(exc).strip().splitlines()[0]} (Qwen2-VL and SmolVLM processors need "
                             "`pip install torchvision`; SmolVLM also num2words).") from None
    except (OSError, ValueError):
        processor = None
    if getattr(processor, "image_processor", None) is None:
        raise ModelLoadError(f"{where} is a vision-language model without its processor (processor_config.json / "
                             "preprocessor_config.json); save it beside the weights with processor.save_pretrained.")
    return processor


# ----------------------------------------------------------------------------- inputs


@dataclass
class VisualBatch:
    """Processor outputs for rows of image + text, one language per batch."""

    language: str
    inputs: dict  # input_ids, attention_mask [B, T], pixel_values, image sizes/grids, token types
    count_mask: torch.Tensor  # [B, T] bool: text positions (not image, special or padding tokens)
    prompt_len: torch.Tensor  # [B] tokens of each row before its completion (= row length without one)

    @property
    def input_ids(self) -> torch.Tensor:
        return self.inputs["input_ids"]

    @property
    def attention_mask(self) -> torch.Tensor:
        return self.inputs["attention_mask"]

    def completion_mask(self) -> torch.Tensor:
        """[B, T] bool: completion tokens (after ``prompt_len``, not padding)."""
        cols = torch.arange(self.input_ids.shape[1])[None, :]  # [1, T]
        return (cols >= self.prompt_len[:, None]) & self.attention_mask.bool()


def image_marker(processor, model_type: str) -> str:
    """The placeholder a prompt holds where the image goes."""
    return LAYOUTS[model_type].marker or processor.image_token


def prompt_frame(processor, model_type: str) -> tuple[str, str]:
    """(before, after) the text of a one-image user turn: the family's chat template up to the
    assistant's turn when the processor has one, else the image placeholder and nothing. A BOS the
    template writes is dropped when the tokenizer adds its own (Gemma 3), so no prompt starts with two."""
    if not getattr(processor, "chat_template", None):
        return image_marker(processor, model_type), ""
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": SLOT}]}]
    out = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    if SLOT not in out:
        raise ModelLoadError("the processor's chat template drops the user's text; pass a model whose template "
                             "keeps it.")
    tok = processor.tokenizer
    if tok.bos_token is not None and tok("x")["input_ids"][:1] == [tok.bos_token_id]:
        out = out.removeprefix(tok.bos_token)
    before, _, after = out.partition(SLOT)
    return before, after


def _special_ids(processor, config) -> torch.Tensor:
    """Ids that are never text: the tokenizer's special tokens and the image tokens of the processor and config."""
    ids = set(processor.tokenizer.all_special_ids)
    for owner, names in ((processor, ("image_token_id", "fake_image_token_id", "global_image_token_id")),
                         (config, ("image_token_id", "image_token_index", "vision_start_token_id",
                                   "vision_end_token_id", "boi_token_index", "eoi_token_index"))):
        ids.update(getattr(owner, n) for n in names if isinstance(getattr(owner, n, None), int))
    ids.update(i for i in getattr(processor, "row_col_ids", None) or [] if isinstance(i, int))
    return torch.tensor(sorted(ids))


@contextmanager
def _right_padding(tokenizer):
    side = tokenizer.padding_side
    tokenizer.padding_side = "right"
    try:
        yield
    finally:
        tokenizer.padding_side = side


def _process(processor, model_type: str, texts: list[str], images: list) -> dict:
    nested = model_type in NESTED_IMAGES
    with _right_padding(processor.tokenizer):
        out = processor(text=texts, images=[[im] for im in images] if nested else images, return_tensors="pt",
                        padding=True)
    return dict(out)


def _lengths(processor, model_type: str, texts: list[str], images: list) -> torch.Tensor:
    return _process(processor, model_type, texts, images)["attention_mask"].sum(1)  # [B]


def encode(loaded, language: str, images: list, texts: list[str], completions: list[str] | None = None):
    """A right-padded VisualBatch of ``image + text (+ completion)`` rows in the family's prompt frame.

    ``count_mask`` marks the tokens of ``texts`` themselves (not the image, the template's framing,
    special tokens, the completion or padding); ``prompt_len`` where each completion starts."""
    processor, model_type = loaded.extras["processor"], loaded.model.config.model_type
    before, after = prompt_frame(processor, model_type)
    prompts = [f"{before}{t}{after}" for t in texts]
    inputs = _process(processor, model_type, [p + c for p, c in zip(prompts, completions or [""] * len(texts),
                                                                       strict=True)], images)
    ids, att = inputs["input_ids"], inputs["attention_mask"]  # [B, T]
    prompt_len = _lengths(processor, model_type, prompts, images) if completions is not None else att.sum(1)
    start = _lengths(processor, model_type, [before] * len(texts), images)  # [B]: first token of the text
    end = _lengths(processor, model_type, [before + t for t in texts], images) if after else prompt_len  # [B]
    cols = torch.arange(ids.shape[1])[None, :]  # [1, T]
    span = (cols >= start[:, None]) & (cols < end[:, None])  # [B, T]
    count = span & att.bool() & ~torch.isin(ids, _special_ids(processor, loaded.model.config))  # [B, T]
    return VisualBatch(language, inputs, count, prompt_len)


def _to(inputs: dict, model) -> dict:
    p = next(model.parameters())
    return {k: v.to(p.device, p.dtype if v.is_floating_point() else v.dtype) if torch.is_tensor(v) else v
            for k, v in inputs.items()}


def body_forward(model, adapter, batch: VisualBatch) -> torch.Tensor:
    """Last hidden states of the LVLM's language model on image + text: [B, T, D] (no logits)."""
    return adapter.body(model)(**_to(batch.inputs, model), use_cache=False).last_hidden_state


def logits(model, batch: VisualBatch) -> torch.Tensor:
    """The LVLM's logits on image + text: [B, T, V]."""
    return model(**_to(batch.inputs, model), use_cache=False).logits


def completion_logprob(model, batch: VisualBatch) -> torch.Tensor:
    """Summed log-probability of each row's completion tokens: [B]."""
    out = logits(model, batch)[:, :-1].float().log_softmax(-1)  # [B, T-1, V]: predicts token t+1
    target = batch.input_ids[:, 1:].to(out.device)  # [B, T-1]
    picked = out.gather(-1, target[..., None])[..., 0]  # [B, T-1]
    keep = batch.completion_mask()[:, 1:].to(out.device)  # [B, T-1]
    return (picked * keep).sum(1)


def completion_loss(model, batch: VisualBatch) -> tuple[torch.Tensor, int]:
    """(summed next-token cross-entropy over completion tokens, their number), with gradients."""
    out = logits(model, batch)[:, :-1].float()  # [B, T-1, V]
    labels = batch.input_ids[:, 1:].masked_fill(~batch.completion_mask()[:, 1:], -100).to(out.device)  # [B, T-1]
    loss = torch.nn.functional.cross_entropy(out.flatten(0, 1), labels.flatten(), ignore_index=-100, reduction="sum")
    return loss, int((labels != -100).sum())
