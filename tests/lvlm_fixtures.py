"""Tiny vision-language models of every supported family, built from configs (no download).

Each has a 2-layer language model (the tiny dims of ``babelscope.testing``), a 1- or 2-layer vision
tower on 32x32 images and the family's own processor around the tiny multilingual tokenizer with
the family's image tokens added, so prompts are expanded exactly as for the real models.
"""

from __future__ import annotations

import torch

from babelscope.data.visual import template_texts
from babelscope.models.load import LoadedModel
from babelscope.testing import SAMPLE_TEXTS, TINY_DIMS, train_tiny_tokenizer

LVLM_FAMILIES = ("llava", "qwen2_vl", "qwen2_5_vl", "idefics3", "smolvlm", "gemma3")
IMAGE = 32  # pixels per side of the tiny vision towers' input
TEXT = dict(TINY_DIMS, pad_token_id=0, bos_token_id=1, eos_token_id=2, tie_word_embeddings=False)
VISION = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2)


def image_only(processor_class):
    """``processor_class`` without its video processor: the class check of the video slot needs
    torchvision (not installed here); everything the image path runs is the class's own code."""

    def check(self, name, arg):
        return None if arg is None else processor_class.check_argument_for_proper_class(self, name, arg)

    return type(f"ImageOnly{processor_class.__name__}", (processor_class,), {"check_argument_for_proper_class": check})


def _tokenizer(specials: list[str], **named):
    tok = train_tiny_tokenizer(texts=SAMPLE_TEXTS + template_texts())
    tok.add_special_tokens({"additional_special_tokens": specials})
    for key, value in named.items():
        setattr(tok, key, value)
    return tok


def _llava(text):
    from transformers import CLIPImageProcessor, LlavaConfig, LlavaProcessor

    tok = _tokenizer(["<image>"])
    image_proc = CLIPImageProcessor(size={"shortest_edge": IMAGE}, crop_size={"height": IMAGE, "width": IMAGE})
    proc = LlavaProcessor(image_proc, tok, patch_size=8, vision_feature_select_strategy="default",
                          image_token="<image>", num_additional_image_tokens=1)
    config = LlavaConfig(vision_config=dict(model_type="clip_vision_model", image_size=IMAGE, patch_size=8,
                                            projection_dim=16, **VISION),
                         text_config=dict(model_type="llama", vocab_size=len(tok), **text),
                         image_token_index=tok.convert_tokens_to_ids("<image>"), image_seq_length=16,
                         vision_feature_layer=-1)
    return config, proc


def _qwen(family: str, text):
    from transformers import AutoConfig, Qwen2VLImageProcessor, Qwen2VLProcessor

    names = ["<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]
    tok = _tokenizer(names)
    ids = dict(zip(("vision_start_token_id", "vision_end_token_id", "image_token_id", "video_token_id"),
                   tok.convert_tokens_to_ids(names), strict=True))
    image_proc = Qwen2VLImageProcessor(min_pixels=IMAGE * IMAGE, max_pixels=IMAGE * IMAGE, patch_size=8,
                                       merge_size=2, temporal_patch_size=2)
    proc = image_only(Qwen2VLProcessor)(image_proc, tok, None)
    text = dict(model_type=f"{family}_text", vocab_size=len(tok), **text,
                rope_parameters={"rope_type": "default", "mrope_section": [1, 1, 2], "rope_theta": 10000.0})
    if family == "qwen2_vl":
        vision = dict(depth=1, embed_dim=16, hidden_size=text["hidden_size"], num_heads=2, mlp_ratio=2, patch_size=8,
                      spatial_merge_size=2, temporal_patch_size=2)
    else:
        vision = dict(depth=2, hidden_size=16, out_hidden_size=text["hidden_size"], intermediate_size=32,
                      num_heads=2, patch_size=8, spatial_merge_size=2, temporal_patch_size=2,
                      fullatt_block_indexes=[1], window_size=16)
    config = AutoConfig.for_model(family, text_config=text, vision_config=vision, **ids)
    return config, proc


def _idefics(family: str, text):
    from transformers import AutoConfig, Idefics3ImageProcessor, Idefics3Processor

    tok = _tokenizer(["<fake_token_around_image>", "<image>", "<end_of_utterance>", "<global-img>"])
    size = {"longest_edge": IMAGE}
    image_proc = Idefics3ImageProcessor(size=size, max_image_size=size, do_image_splitting=False)
    vision = dict(model_type="idefics3_vision" if family == "idefics3" else "smolvlm_vision", image_size=IMAGE,
                  patch_size=8, **VISION)
    text = dict(model_type="llama", vocab_size=len(tok), **text)
    if family == "idefics3":
        proc = Idefics3Processor(image_proc, tok, image_seq_len=4)
    else:
        from transformers import SmolVLMImageProcessor, SmolVLMProcessor

        image_proc = SmolVLMImageProcessor(size=size, max_image_size=size, do_image_splitting=False)
        proc = image_only(SmolVLMProcessor)(image_proc, tok, None,
                                image_seq_len=4)
    config = AutoConfig.for_model(family, vision_config=vision, text_config=text, scale_factor=2,
                                  image_token_id=tok.convert_tokens_to_ids("<image>"))
    return config, proc


def _gemma3(text):
    from transformers import AutoConfig, Gemma3ImageProcessor, Gemma3Processor

    names = ["<start_of_image>", "<end_of_image>", "<image_soft_token>"]
    tok = _tokenizer(names, boi_token=names[0], eoi_token=names[1], image_token=names[2])
    boi, eoi, image = tok.convert_tokens_to_ids(names)
    tok.boi_token_id, tok.eoi_token_id, tok.image_token_id = boi, eoi, image
    proc = Gemma3Processor(Gemma3ImageProcessor(size={"height": IMAGE, "width": IMAGE}), tok, image_seq_length=4)
    text = dict(model_type="gemma3_text", vocab_size=len(tok), **text, sliding_window=text["max_position_embeddings"])
    vision = dict(model_type="siglip_vision_model", image_size=IMAGE, patch_size=8, **VISION)
    config = AutoConfig.for_model("gemma3", text_config=text, vision_config=vision, mm_tokens_per_image=4,
                                  boi_token_index=boi, eoi_token_index=eoi, image_token_index=image)
    return config, proc


def tiny_lvlm(family: str = "llava", seed: int = 0, **text_overrides):
    """(model, processor) of a tiny LVLM of ``family`` in eval mode (float32, eager attention);
    ``text_overrides`` change the language model's config (e.g. ``num_hidden_layers=4``)."""
    from transformers import AutoModelForImageTextToText

    text = {**TEXT, **text_overrides}
    if family.startswith("qwen"):
        config, proc = _qwen(family, text)
    elif family in ("idefics3", "smolvlm"):
        config, proc = _idefics(family, text)
    else:
        config, proc = {"llava": _llava, "gemma3": _gemma3}[family](text)
    torch.manual_seed(seed)
    model = AutoModelForImageTextToText.from_config(config, dtype=torch.float32, attn_implementation="eager")
    return model.eval(), proc


def tiny_lvlm_loaded(family: str = "llava", seed: int = 0, **text_overrides) -> LoadedModel:
    model, proc = tiny_lvlm(family, seed, **text_overrides)
    return LoadedModel(model, proc.tokenizer, f"tiny-{family}", source="testing", extras={"processor": proc})


def save_tiny_lvlm(folder, family: str = "llava", seed: int = 0):
    model, proc = tiny_lvlm(family, seed)
    model.save_pretrained(str(folder))
    proc.save_pretrained(str(folder))
    return folder
