"""Tiny models and a tiny multilingual tokenizer built from configs, for tests and examples.

Every family of ``babelscope.models.adapters`` gets a 2-layer model with 4 query heads over
2 KV heads (GQA, so head-indexing bugs show), built in seconds without any download.
"""

from __future__ import annotations

from babelscope.models.load import LoadedModel

SAMPLE_TEXTS = [  # a few scripts, so tokenizer statistics cover more than Latin
    "The cat sat on the mat and looked out of the window.",
    "Le chat était assis sur le tapis et regardait par la fenêtre.",
    "Die Katze saß auf der Matte und schaute aus dem Fenster.",
    "El gato se sentó en la alfombra y miró por la ventana.",
    "Кошка сидела на коврике и смотрела в окно.",
    "बिल्ली चटाई पर बैठी और खिड़की से बाहर देखने लगी।",
    "猫坐在垫子上，望着窗外。",
    "猫はマットの上に座って窓の外を見ていた。",
    "جلست القطة على الحصيرة ونظرت من النافذة.",
    "Η γάτα κάθισε στο χαλάκι και κοίταξε έξω από το παράθυρο.",
]

TINY_DIMS = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, head_dim=8, max_position_embeddings=256)
FAMILIES = ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3_text", "cohere", "phi3", "gpt2")


def train_tiny_tokenizer(vocab_size: int = 400, texts=None):
    """A byte-level BPE trained on ``texts`` (default: SAMPLE_TEXTS), wrapped for transformers."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<pad>", "<s>", "</s>", "<unk>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(list(texts or SAMPLE_TEXTS) * 4, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>")


def tiny_config(model_type: str, vocab_size: int, **overrides):
    """The config of a tiny model of ``model_type`` (2 layers, 4 heads over 2 KV heads)."""
    from transformers import AutoConfig

    dims = {**TINY_DIMS, **overrides}
    ids = dict(vocab_size=vocab_size, pad_token_id=0, bos_token_id=1, eos_token_id=2)
    if model_type == "gpt2":
        return AutoConfig.for_model("gpt2", n_embd=dims["hidden_size"], n_layer=dims["num_hidden_layers"],
                                    n_head=dims["num_attention_heads"], n_inner=dims["intermediate_size"],
                                    n_positions=dims["max_position_embeddings"], **ids)
    extra = {"tie_word_embeddings": False}
    if model_type in ("gemma2", "gemma3_text", "mistral", "qwen2", "qwen3"):
        extra["sliding_window"] = dims["max_position_embeddings"]
    return AutoConfig.for_model(model_type, **dims, **ids, **extra)


def make_tiny_model(model_type: str = "llama", vocab_size: int = 400, seed: int = 0, **overrides):
    """A randomly initialised tiny causal LM in eval mode (float32, eager attention)."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    config = tiny_config(model_type, vocab_size, **overrides)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32, attn_implementation="eager")
    return model.eval()


def make_tiny_loaded(model_type: str = "llama", tokenizer=None, seed: int = 0, **overrides):
    """A ``LoadedModel`` around a tiny model and tokenizer."""
    tokenizer = tokenizer or train_tiny_tokenizer()
    model = make_tiny_model(model_type, len(tokenizer), seed, **overrides)
    return LoadedModel(model, tokenizer, f"tiny-{model_type}", source="testing")


def run_cli(args: list[str], nproc: int = 1, port: int = 29500, timeout: float = 300):
    """``babelscope ARGS`` in a subprocess (under ``torchrun`` with ``nproc`` CPU processes when > 1);
    fails with the end of stderr when it exits non-zero. Tests give each torchrun its own ``port``."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, HF_HUB_OFFLINE="1", TQDM_DISABLE="1", OMP_NUM_THREADS="1")
    launcher = ["-m", "torch.distributed.run", "--nproc_per_node", str(nproc), "--master_port", str(port)]
    cmd = [sys.executable, *(launcher if nproc > 1 else []), "-m", "babelscope", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    return out
