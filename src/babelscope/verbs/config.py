"""Typed verb configs: one dataclass per verb whose fields carry type, default and help text.

The CLI parser of a verb is generated from its config (``add_to_parser``), ``--config run.yaml``
and the Python API map onto the same fields (``from_mapping``), and ``validate`` checks ranges
and types once for all three::

    @dataclass
    class EvalConfig(ModelOptions, OutputOptions):
        tasks: str = option("continuation,translation", "comma-separated tasks", short="-t")
        limit: int | None = option(None, "at most this many items per language", minimum=1)

Precedence: command line > YAML > defaults.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import types
import typing
from dataclasses import dataclass
from typing import Any, ClassVar

from babelscope import protocols
from babelscope.errors import UsageError
from babelscope.languages import DEFAULT_LANGUAGES, resolve_many
from babelscope.models.load import DEFAULT_MODEL, check_model_args, load_from_args, parse_model_args
from babelscope.runs import DEFAULT_OUTPUT, check_run_name

_MISSING = dataclasses.MISSING
SOURCE_HELP = ("text source: builtin (the built-in aligned corpus), a JSONL/CSV/TSV file in wide (one column per "
               "language) or long (item_id, language, text) form, or hf:<dataset>[:<config>][@<split>] in FLORES "
               "layout")
_DEVICE = re.compile(r"(cpu|cuda|mps|xpu|hpu|npu|meta)(:\d+)?")


def option(default=_MISSING, help: str = "", *, short: str | None = None, choices=None, minimum=None,
           maximum=None, metavar: str | None = None, positional: bool = False, group: str | None = None,
           cli: bool = True, existing: bool = False, kw_only=_MISSING):
    """A config field: ``default`` (omit for a required field), help text and checks.

    ``minimum``/``maximum`` bound numbers (inclusive), ``choices`` lists allowed values,
    ``positional`` makes the CLI take it without a flag, ``cli=False`` keeps it out of the CLI
    (Python API only), ``existing`` requires a path that exists (checked before anything runs),
    ``kw_only=True`` lets a base class field (``protocol``) precede subclasses' required fields
    (unset: the dataclass's own setting).
    """
    meta = {"help": help, "short": short, "choices": tuple(choices) if choices else None, "minimum": minimum,
            "maximum": maximum, "metavar": metavar, "positional": positional, "group": group, "cli": cli,
            "existing": existing}
    return dataclasses.field(default=default, metadata=meta, kw_only=kw_only)


def _base_type(tp) -> tuple[type, bool]:
    """(int, True) for ``int | None``; (str, False) for ``str``."""
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0], True
    return tp, False


def _coerce(name: str, value, tp):
    """``value`` as type ``tp`` (YAML and the Python API give plain values; lists become "a,b")."""
    base, optional = _base_type(tp)
    if value is None:
        if optional:
            return None
        raise UsageError(f"--{name} needs a value ({base.__name__}); it was empty.")
    if base is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
    elif base is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
    elif base is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif base is str:
        if isinstance(value, (list, tuple)) and all(isinstance(v, (str, int, float)) for v in value):
            return ",".join(str(v) for v in value)
        if isinstance(value, str) and value.startswith("~/"):
            return os.path.expanduser(value)  # config.yaml writes the home folder as ~
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    else:  # objects passed through the Python API (e.g. a loaded model)
        return value
    raise UsageError(f"--{name} must be {'a number' if base in (int, float) else base.__name__}, "
                     f"not {value!r}.")


@dataclass
class Config:
    """Base of every verb config; subclasses are dataclasses of ``option`` fields."""

    RENAMED: ClassVar[dict] = {}  # keys accepted under another name (old config.yaml files, flag spellings)
    protocol: str | None = option(None, "a paper's protocol: a named preset of this verb's options (babelscope ls "
                                  "protocols); options you give still win", metavar="NAME", kw_only=True)

    @classmethod
    def fields(cls) -> list[dataclasses.Field]:
        return list(dataclasses.fields(cls))

    @classmethod
    def hints(cls) -> dict[str, Any]:
        return typing.get_type_hints(cls)

    @classmethod
    def from_mapping(cls, values: dict, source: str = "", verb: str | None = None) -> Config:
        """A config from flag-named keys (YAML, the Python API); unknown keys are a one-line error.
        A ``protocol`` key applies that preset under the given values (``verb`` checks it fits)."""
        values = {cls.RENAMED.get(k, k): v for k, v in ((k.replace("-", "_"), v) for k, v in dict(values).items())
                  if k != "verb"}
        if values.get("protocol"):
            preset = protocols.for_verb(values["protocol"], verb) if verb else protocols.load(values["protocol"])
            values = {**preset.values, **values}
        known = {f.name for f in cls.fields()}
        unknown = sorted(set(values) - known)
        if unknown:
            where = f"{source}: " if source else ""
            raise UsageError(f"{where}unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}.")
        hints = cls.hints()
        missing = [f.name for f in cls.fields() if f.name not in values
                   and f.default is _MISSING and f.default_factory is _MISSING]
        if missing:
            raise UsageError(f"missing required option --{missing[0]}.")
        config = cls(**{k: _coerce(k, v, hints[k]) for k, v in values.items()})
        config.validate()
        return config

    def validate(self) -> None:
        """Range and choice checks declared on the fields; subclasses add cross-field checks."""
        for f in self.fields():
            value, meta = getattr(self, f.name), f.metadata
            if value is None:
                continue
            if meta.get("choices") and value not in meta["choices"]:
                raise UsageError(f"--{f.name} {value!r} is not one of {', '.join(map(str, meta['choices']))}.")
            if meta.get("minimum") is not None and value < meta["minimum"]:
                raise UsageError(f"--{f.name} must be at least {meta['minimum']}, not {value}.")
            if meta.get("maximum") is not None and value > meta["maximum"]:
                raise UsageError(f"--{f.name} must be at most {meta['maximum']}, not {value}.")
            if meta.get("existing") and not os.path.exists(os.path.expanduser(str(value))):
                raise UsageError(f"--{f.name} {value} does not exist; {meta['help'].split(';')[0]}.")

    def to_dict(self) -> dict:
        """Plain values keyed by long flag name (what config.yaml holds; re-runnable)."""
        return {f.name: getattr(self, f.name) for f in self.fields() if _plain(getattr(self, f.name))}

    @classmethod
    def add_to_parser(cls, parser: argparse.ArgumentParser) -> None:
        """One argument per CLI field; every default is SUPPRESS so YAML values are not overridden."""
        groups: dict[str, Any] = {}
        hints = cls.hints()
        for f in cls.fields():
            meta = f.metadata
            if not meta.get("cli", True):
                continue
            target = parser
            if meta.get("group"):
                target = groups.setdefault(meta["group"], parser.add_argument_group(meta["group"]))
            target.add_argument(*_flags(f), **_argparse_kwargs(f, hints[f.name]))


def _plain(value) -> bool:
    return value is None or isinstance(value, (str, int, float, bool, list, dict))


def _flags(f: dataclasses.Field) -> list[str]:
    if f.metadata.get("positional"):
        return [f.name]
    return [f"--{f.name}", *([f.metadata["short"]] if f.metadata.get("short") else [])]


def _default_text(f: dataclasses.Field) -> str:
    if f.default is _MISSING:
        return " (required)"
    return "" if f.default in (None, False, "") else f" (default: {f.default})"


def _argparse_kwargs(f: dataclasses.Field, tp) -> dict:
    base, _ = _base_type(tp)
    kw: dict = {"default": argparse.SUPPRESS, "help": f.metadata.get("help", "") + _default_text(f)}
    if f.metadata.get("positional"):
        kw["nargs"] = "?"
    if base is bool:
        kw["action"] = argparse.BooleanOptionalAction
        return kw
    if base in (int, float, str):
        kw["type"] = base
    if f.metadata.get("choices") and not f.metadata.get("positional"):  # positional: checked by validate()
        kw["choices"] = f.metadata["choices"]
    if f.metadata.get("metavar"):
        kw["metavar"] = f.metadata["metavar"]
    return kw


# Options shared by several verbs: each verb config inherits the groups it needs. ---------------


HF_BACKENDS = ("hf", "hf-auto", "huggingface")  # lm-eval's --model names for what babelscope always runs
OTHER_BACKENDS = ("vllm", "vllm-vlm", "sglang", "openai-completions", "openai-chat-completions", "local-completions",
                  "local-chat-completions", "anthropic-completions", "anthropic-chat", "gguf", "ggml", "hf-multimodal",
                  "mamba_ssm", "neuronx", "openvino", "optimum-lm", "ipex", "textsynth", "watsonx_llm", "nemo_lm",
                  "sparseml", "deepsparse")  # lm-eval backends babelscope does not run


def check_device_available(device: str | None) -> None:
    """A CUDA or MPS device this torch build or machine lacks is a one-line error, not a traceback."""
    if not device or device in ("cpu", "meta"):
        return
    import torch

    kind = str(device).split(":")[0]
    available = {"cuda": torch.cuda.is_available, "mps": torch.backends.mps.is_available}.get(kind)
    if available is not None and not available():
        build = "a CPU-only torch build" if kind == "cuda" and torch.version.cuda is None else "this machine"
        raise UsageError(f"--device {device}: not available with {build}; use --device cpu.")


def check_model_path(pretrained, flag: str = "model") -> None:
    """A model given as a path (``/…``, ``./…``, ``~/…`` or ``*.gguf``) must exist."""
    if isinstance(pretrained, str) and (pretrained.startswith(("/", ".", "~")) or pretrained.endswith(".gguf")):
        if not os.path.exists(os.path.expanduser(pretrained)):
            raise UsageError(f"{flag} {pretrained} does not exist; pass a model folder, a .gguf file, a hub id or "
                             "`default`.")


def _batch_size(value, auto_allowed: bool) -> int | str:
    """``--batch_size``: a positive number, or ``auto`` where the verb supports it."""
    text = str(value).strip().lower()
    if text == "auto" and auto_allowed:
        return "auto"
    if text.isdigit() and int(text) >= 1 and not isinstance(value, bool):
        return int(text)
    also = " or auto" if auto_allowed else " (auto: eval and cypher only)"
    raise UsageError(f"--batch_size must be a number of at least 1{also}, not {value!r}.")


@dataclass
class ModelOptions(Config):
    model: str | None = option(None, "model: default | smollm2-135m | <folder> | <file.gguf> | <hub id> "
                               "(same as pretrained= in --model_args); lm-eval's `--model hf` is accepted",
                               group="model")
    model_args: str = option("", "comma-separated key=value, as in lm-eval's HFLM: pretrained=..., "
                             "dtype=float32|bfloat16|float16|auto, revision=..., peft=<adapter folder> (a PEFT/LoRA "
                             "adapter merged on top), max_length=N (eval: contexts cut from the left to N tokens "
                             "as lm-eval does), device_map=auto|<device> (or parallelize=True), load_in_4bit=True / "
                             "load_in_8bit=True (need bitsandbytes), trust_remote_code=True, allow_pickle=True, "
                             "attn_implementation=..., head_mask=<mask file>", short="-a", group="model")
    device: str | None = option(None, "cpu, cuda, cuda:0 or mps (default: cpu)", group="model")
    trust_remote_code: bool = option(False, "run the model repository's own Python code (as lm-eval's flag; same as "
                                     "trust_remote_code=True in --model_args); only for repositories you trust",
                                     group="model")
    batch_size: int | str = option(8, "sequences per forward pass; `auto` (eval, cypher): as many as half the free "
                                   "memory holds, at most 64", short="-b", metavar="N|auto", group="model")
    AUTO_BATCH_SIZE: ClassVar[bool] = False  # verbs whose every batch goes through the engine set True

    def model_spec(self) -> dict:
        """The model arguments as one dict (``model`` wins over pretrained= in ``model_args``, except
        lm-eval's backend names: ``--model hf --model_args pretrained=...`` works as in lm-eval)."""
        spec = parse_model_args(self.model_args)
        if self.model and self.model not in HF_BACKENDS:
            spec["pretrained"] = self.model
        if self.trust_remote_code:
            spec["trust_remote_code"] = True
        spec.setdefault("pretrained", DEFAULT_MODEL)
        return spec

    def validate(self) -> None:
        super().validate()
        self.batch_size = _batch_size(self.batch_size, self.AUTO_BATCH_SIZE)
        if self.model in OTHER_BACKENDS:
            raise UsageError(f"--model {self.model}: babelscope runs Hugging Face models in process (it needs their "
                             "hooks); drop --model or write --model hf, and name the model with --model_args "
                             "pretrained=...")
        check_model_args(self.model_spec())
        if self.device is not None and not _DEVICE.fullmatch(self.device):
            raise UsageError(f"--device {self.device!r} is not a device; use cpu, cuda, cuda:N, mps or xpu.")
        check_device_available(self.device or self.model_spec().get("device"))
        device_map = str(self.model_spec().get("device_map", ""))
        if _DEVICE.fullmatch(device_map):  # device_map=cuda:0 names one device; auto/balanced spread the model
            check_device_available(device_map)
        check_model_path(self.model_spec()["pretrained"])

    @property
    def model_name(self) -> str:
        return str(self.model_spec()["pretrained"])

    def load(self):
        """The model these options name, on ``device``."""
        return load_from_args(self.model_spec(), device=self.device)


@dataclass
class LanguageOptions(Config):
    languages: str = option(DEFAULT_LANGUAGES, "comma-separated codes (FLORES-200 like deu_Latn, or de / deu / "
                            "German), or `all`", short="-l")

    def language_list(self) -> list[str]:
        return resolve_many(self.languages)


@dataclass
class OutputOptions(Config):
    output_path: str = option(DEFAULT_OUTPUT, "root of run folders; a run goes to "
                              "<output_path>/<model>/<verb>-<UTC time>/", short="-o", group="output")
    run_name: str | None = option(None, "fixed run folder name instead of <verb>-<UTC time>", group="output")
    seed: int = option(1234, "random seed", group="output")

    def validate(self) -> None:
        super().validate()
        if self.run_name is not None:
            check_run_name(self.run_name)
