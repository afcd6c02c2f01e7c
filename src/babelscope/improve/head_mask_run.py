"""``babelscope mask``: pick the top LAHIS heads, train a soft mask on answer tokens, evaluate
before and after on held-out items, and write everything into the run folder.

Training data (never from the held-out side):

* default: the built-in tasks' formats on the *training* items of the built-in corpus
  (``split_for_eval``): ``continuation`` (first half of a paragraph -> its true second half)
  and ``translation`` (``English: ...\\n<Language>:`` -> the true translation);
* ``--train_data file.jsonl``: question-answer pairs (``language``, ``prompt`` or
  ``question`` [+ ``context``], ``answer``), 20% held out by a seeded hash of the line.

Evaluation: ``babelscope.measure.evaluate`` on the tasks' held-out items (their headline
metric, e.g. accuracy; full results in ``eval_before.json`` / ``eval_after.json``), or for a QA
file the paper's metric: the lowercased gold answer is a substring of a 10-token greedy
continuation.
"""

from __future__ import annotations

import hashlib
import json
import random
import time

import torch

from babelscope.errors import DataError, UsageError

TRAIN_LIMIT = 32  # training items per language, each giving one pair per task (official: 200 XQuAD items)
EVAL_LIMIT = 32  # held-out items per language and task, evaluated before and after
DEFAULT_TASKS = "continuation,translation"  # built-in tasks used for training pairs and evaluation
TRAINABLE_TASKS = ("continuation", "translation")  # tasks whose format task_pairs can rebuild on training items
QA_NEW_TOKENS = 10  # greedy tokens for the QA substring metric (official)
QA_HELD_OUT = 0.2  # share of a QA file held out for evaluation


# --------------------------------------------------------------------------- heads


def combined_scores(result, languages: list[str]) -> torch.Tensor:
    """Mean over ``languages`` of each language's scores divided by its maximum, [L, H]."""
    missing = [lang for lang in languages if lang not in result.languages]
    if missing:
        raise UsageError(
            f"the LAHIS scores have no {', '.join(missing)} (they cover {', '.join(result.languages)}); "
            "rerun `babelscope heads` with these languages or drop --scores."
        )
    cols = [result.of(lang) / result.of(lang).max().clamp(min=1e-12) for lang in languages]
    return torch.stack(cols).mean(0)  # [L, H]


def choose_heads(args, loaded, languages: list[str]) -> tuple[list[int], dict]:
    from babelscope.cli.heads import split_items, texts_of
    from babelscope.data.corpus import load_corpus
    from babelscope.improve.head_mask import n_trainable
    from babelscope.interpret.lahis import LahisResult, lahis, top_heads

    a = loaded.adapter
    n = n_trainable(a.n_layers, a.n_heads, args.top_rate, args.num_heads)
    if args.random_heads:
        return sorted(random.Random(args.seed).sample(range(a.n_layers * a.n_heads), n)), {"selection": "random"}
    if args.scores:
        result = LahisResult.load(args.scores)
    else:
        train, _ = split_items(load_corpus(args.source), languages)
        result = lahis(loaded, texts_of(train, languages, args.num_items), args.batch_size)
    if result.scores.shape[:2] != (a.n_layers, a.n_heads):
        raise UsageError(
            f"--scores has {tuple(result.scores.shape[:2])} layers x heads; the model has "
            f"{a.n_layers} x {a.n_heads}. Score this model with `babelscope heads`."
        )
    combined = combined_scores(result, languages)
    return top_heads(combined, n), {
        "selection": "lahis",
        "scores_from": args.scores or "computed",
        "combined_scores": combined,
    }


# --------------------------------------------------------------------------- data


def task_pairs(languages: list[str], source: str, limit: int, tasks: list[str]) -> dict[str, list]:
    """Training (prompt, answer) pairs in the built-in tasks' formats, from training items only."""
    from babelscope.data.corpus import load_corpus
    from babelscope.languages import info
    from babelscope.measure.tasks.builtin import ENGLISH, Translation, split_for_eval, split_text

    corpus = load_corpus(source)
    needed = list(dict.fromkeys([*languages, ENGLISH]))
    train, _ = split_for_eval(corpus)
    train = [it for it in train if all(it.texts.get(lang, "").strip() for lang in needed)]
    out = {lang: [] for lang in languages}
    for lang in languages:
        for it in train[:limit]:
            if "continuation" in tasks:
                head, tail = split_text(it.texts[lang])
                if tail.strip():
                    out[lang].append((head, tail))
            if "translation" in tasks:
                src = Translation.source_language(lang, languages)
                if it.texts.get(src, "").strip():
                    out[lang].append(
                        (f"{info(src).name}: {it.texts[src].strip()}\n{info(lang).name}:", " " + it.texts[lang].strip())
                    )
    return out


def qa_file(path: str, languages: list[str], seed: int) -> tuple[dict, dict]:
    """(train pairs, held-out (prompt, answer) pairs) per language from a QA JSONL file."""
    from babelscope.languages import resolve

    train = {lang: [] for lang in languages}
    held = {lang: [] for lang in languages}
    try:
        lines = open(path, encoding="utf-8").read().splitlines()
    except OSError as exc:
        raise UsageError(f"--train_data {path}: {exc.strerror}; give a JSONL file of question-answer pairs.") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            lang = resolve(row["language"])
            prompt = row.get("prompt") or (
                f"{row['context']}\n{row['question']}\n" if row.get("context") else f"{row['question']}\n"
            )
            answer = str(row["answer"])
        except (ValueError, KeyError) as exc:
            raise DataError(f"{path}:{n}: need language, prompt (or question) and answer ({exc}).") from None
        if lang in train:
            side = int.from_bytes(hashlib.sha256(f"{seed}:{n}".encode()).digest()[:8], "big") / 2**64
            (held if side < QA_HELD_OUT else train)[lang].append((prompt, answer))
    return train, held


# --------------------------------------------------------------------------- evaluation


def qa_accuracy(engine, held: dict[str, list]) -> dict[str, float]:
    """The paper's XQuAD metric: gold (lowercased, trailing '.' removed) inside 10 greedy tokens."""
    out = {}
    for lang, rows in held.items():
        gens = engine.generate_until([(p, {"until": [], "max_gen_toks": QA_NEW_TOKENS}) for p, _ in rows])
        hits = [a.strip().rstrip(".").lower() in g.lower() for (_, a), g in zip(rows, gens, strict=True)]
        out[lang] = sum(hits) / max(len(hits), 1)
    return out


def evaluate(loaded, args, languages, held_qa, mask=None) -> tuple[dict, dict]:
    """({task: {language: headline metric}}, the full measure results) with ``mask`` applied or not."""
    from babelscope.improve.head_mask import apply_head_mask, remove_head_mask
    from babelscope.measure import evaluate as measure_evaluate
    from babelscope.measure.engine import Engine

    if mask is not None:
        apply_head_mask(loaded, mask)
    try:
        if held_qa is not None:
            table = {"qa_substring": qa_accuracy(Engine(loaded, batch_size=args.batch_size, progress=False), held_qa)}
            return table, {"tasks": table}
        res = measure_evaluate(
            loaded,
            args.tasks or DEFAULT_TASKS,
            languages,
            limit=args.eval_limit,
            source=args.source,
            batch_size=args.batch_size,
            progress=False,
            fertility=False,
        ).results
        table = {
            task: {lang: m[res["headline"][task]["metric"]] for lang, m in per.items()}
            for task, per in res["tasks"].items()
        }
        return table, res
    finally:
        remove_head_mask(loaded)


def macro(table: dict) -> dict:
    return {task: sum(v.values()) / len(v) for task, v in table.items() if v}


def run(args) -> int:
    from babelscope.cli.common import load_from_args, model_name_of, seed_everything, start_run
    from babelscope.improve.head_mask import SoftHeadMask, train_mask
    from babelscope.languages import resolve_many

    seed_everything(args.seed)
    run_dir = start_run(args, "mask", model_name_of(args))
    languages = resolve_many(args.languages)
    t0 = time.time()
    loaded = load_from_args(args)
    a = loaded.adapter
    heads, how = choose_heads(args, loaded, languages)
    if args.train_data:
        train, held = qa_file(args.train_data, languages, args.seed)
    else:
        tasks = [t.strip() for t in (args.tasks or DEFAULT_TASKS).split(",") if t.strip()]
        unknown = [t for t in tasks if t not in TRAINABLE_TASKS]
        if unknown:
            raise UsageError(
                f"--tasks {','.join(unknown)}: the mask trains on the built-in "
                f"{' and '.join(TRAINABLE_TASKS)} formats; for other data pass --train_data qa.jsonl."
            )
        train, held = task_pairs(languages, args.source, args.train_limit, tasks), None
    per_lang = args.train_limit if args.train_data else None  # task pairs are already limited per item
    pairs = [p for lang in languages for p in train[lang][:per_lang]]
    if not pairs:
        raise DataError("no training pairs for these languages; check --languages, --source or --train_data.")
    before, before_full = evaluate(loaded, args, languages, held)
    run_dir.write_json("eval_before.json", before_full)
    mask = SoftHeadMask(a.n_layers, a.n_heads, heads)
    losses = train_mask(loaded, mask, pairs, args.epochs, args.lr, args.train_batch_size, args.seed)
    after, after_full = evaluate(loaded, args, languages, held, mask)
    run_dir.write_json("eval_after.json", after_full)
    n_params = sum(p.numel() for p in mask.parameters())
    meta = {
        "model": loaded.name,
        "languages": languages,
        "epochs": args.epochs,
        "lr": args.lr,
        "selection": how["selection"],
        "train_pairs": len(pairs),
    }
    mask.save(run_dir.path / "head_mask.safetensors", meta)
    if "combined_scores" in how:
        run_dir.save_tensors(
            "artifacts/combined_scores.safetensors",
            {"scores": how.pop("combined_scores")},
            {"axes": ["layer", "head"], "languages": languages},
        )
    values = mask.values.detach().tolist()
    results = {
        "method": "lahis_soft_head_mask",
        "model": loaded.name,
        "languages": languages,
        "n_trainable_parameters": n_params,
        "heads": [f"L{h // a.n_heads}.H{h % a.n_heads}" for h in heads],
        "values": values,
        "before": before,
        "after": after,
        "before_macro": macro(before),
        "after_macro": macro(after),
        "train_pairs": len(pairs),
        "loss_first": losses[0],
        "loss_last": losses[-1],
        "losses": losses,
        "seconds": time.time() - t0,
        **how,
    }
    run_dir.write_results(results)
    lines = [
        f"# Soft head mask: {loaded.name}",
        "",
        f"{n_params} trainable parameters on heads "
        f"{', '.join(results['heads'])}; values after training: {', '.join(f'{v:.3f}' for v in values)}.",
        f"Trained on {len(pairs)} answer-token pairs, {args.epochs} epochs, lr {args.lr}.",
        "",
        "| task | language | before | after |",
        "|---|---|---|---|",
    ]
    for task in before:
        for lang in before[task]:
            lines.append(f"| {task} | {lang} | {before[task][lang]:.3f} | {after[task][lang]:.3f} |")
        lines.append(f"| {task} | macro | {macro(before)[task]:.3f} | {macro(after)[task]:.3f} |")
    lines += ["", f"Use it: `--model_args pretrained={loaded.name},head_mask={run_dir.path / 'head_mask.safetensors'}`"]
    run_dir.write_readme("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0
