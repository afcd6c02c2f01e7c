"""Data and scores of the soft head mask (``babelscope mask``, run by ``babelscope.verbs.mask``):
which heads (``combined_scores``), the training pairs and the held-out QA metric.

Training data (never from the held-out side):

* default: the built-in tasks' formats on the *training* items of the built-in corpus
  (``split_for_eval``): ``continuation`` (first half of a paragraph -> its true second half)
  and ``translation`` (``English: ...\\n<Language>:`` -> the true translation);
* ``--train_data file.jsonl``: question-answer pairs (``language``, ``prompt`` or
  ``question`` [+ ``context``], ``answer``), 20% held out by a seeded hash of the line, or with
  ``train_pool=N`` the paper's split: each language's first N rows are the training pool
  (the official ``train[:390]``; ``train_limit`` of them drawn with the seed), the rest held out
  (``train[390:1190]``). The prompt is ``context\nquestion\n`` (``template="plain"``) or the
  paper's per-language XQuAD template (``template="lahis"``, ``LAHIS_QA_TEMPLATES``; languages
  without one use the English template), whose answer is appended with no separator and its
  dots stripped, as ``Linuxin-xxx/LAHIS:src/lan_head_mask.py`` does.

Evaluation: ``babelscope.measure.evaluate`` on the tasks' held-out items (their headline
metric, e.g. accuracy; full results in ``eval_before.json`` / ``eval_after.json``), or for a QA
file the paper's metric: the lowercased gold answer is a substring of a 10-token greedy
continuation.
"""

from __future__ import annotations

import hashlib
import json
import random

import torch

from babelscope.data.corpus import load_corpus
from babelscope.data.split import split_for_eval
from babelscope.errors import DataError, UsageError
from babelscope.languages import REFERENCE, info, resolve
from babelscope.measure.tasks.builtin import Translation, split_text

TRAIN_LIMIT = 32  # training items per language, each giving one pair per task (official: 200 XQuAD items)
EVAL_LIMIT = 32  # held-out items per language and task, evaluated before and after
DEFAULT_TASKS = "continuation,translation"  # built-in tasks used for training pairs and evaluation
TRAINABLE_TASKS = ("continuation", "translation")  # tasks whose format task_pairs can rebuild on training items
QA_NEW_TOKENS = 10  # greedy tokens for the QA substring metric (official)
QA_HELD_OUT = 0.2  # share of a QA file held out for evaluation
QA_TEMPLATES = ("plain", "lahis")  # prompt formats of a QA file's context and question

# The LAHIS paper's XQuAD prompts (Linuxin-xxx/LAHIS:data/xquad/xquad_prompt.json, commit 3b84cc3):
# {context} and {question} are filled in; the answer follows the closing tag directly.
LAHIS_QA_TEMPLATES = {
    "eng_Latn": "[System Prompt]Based on the given context, give the answer to the question directly."
                "[Context]{context}[Question]{question}[Answer]",
    "zho_Hans": "[系统提示]根据给定的上下文，直接给出问题的答案。[上下文]{context}[问题]{question}[答案]",
    "deu_Latn": "[Systemaufforderung]Beantworte die Frage direkt basierend auf dem gegebenen Kontext."
                "[Kontext]{context}[Frage]{question}[Antwort]",
    "hin_Deva": "[सिस्टम संकेत]दिए गए संदर्भ के आधार पर सीधे प्रश्न का उत्तर दें।[संदर्भ]{context}[प्रश्न]{question}[उत्तर]",
    "tha_Thai": "[คำสั่งระบบ]ให้ตอบคำถามโดยตรงตามบริบทที่กำหนด[บริบท]{context}[คำถาม]{question}[คำตอบ]",
    "vie_Latn": "[Lời nhắc hệ thống]Dựa trên ngữ cảnh đã cho, hãy trả lời câu hỏi một cách trực tiếp."
                "[Ngữ cảnh]{context}[Câu hỏi]{question}[Câu trả lời]",
    "spa_Latn": "[Instrucción del sistema]Con base en el contexto proporcionado, responde directamente a la "
                "pregunta.[Contexto]{context}[Pregunta]{question}[Respuesta]",
    "tur_Latn": "[Sistem Komutu]Verilen bağlama dayanarak soruyu doğrudan yanıtlayın."
                "[Bağlam]{context}[Soru]{question}[Yanıt]",
    "ell_Grek": "[Προτροπή συστήματος]Με βάση τα συμφραζόμενα, δώστε άμεσα την απάντηση στην ερώτηση."
                "[Συμφραζόμενα]{context}[Ερώτηση]{question}[Απάντηση]",
}


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


# --------------------------------------------------------------------------- data


def task_pairs(languages: list[str], source: str, limit: int, tasks: list[str]) -> dict[str, list]:
    """Training (prompt, answer) pairs in the built-in tasks' formats, from training items only."""
    corpus = load_corpus(source)
    needed = list(dict.fromkeys([*languages, REFERENCE]))
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


def qa_prompt(row: dict, lang: str, template: str = "plain") -> tuple[str, str]:
    """(prompt, answer) of one QA row: its own ``prompt``, else ``template`` filled with context and question."""
    if template not in QA_TEMPLATES:
        raise UsageError(f"--qa_template must be one of {', '.join(QA_TEMPLATES)}, got {template!r}.")
    answer = str(row["answer"])
    if row.get("prompt"):
        return row["prompt"], answer
    if template == "lahis":
        form = LAHIS_QA_TEMPLATES.get(lang, LAHIS_QA_TEMPLATES["eng_Latn"])
        # str.replace, not format: contexts may hold braces
        prompt = form.replace("{context}", str(row.get("context", "")), 1)
        prompt = prompt.replace("{question}", str(row["question"]), 1)
        return prompt, answer.strip(".").strip()
    context = row.get("context")
    return (f"{context}\n{row['question']}\n" if context else f"{row['question']}\n"), answer


def qa_file(path: str, languages: list[str], seed: int, template: str = "plain",
            train_pool: int | None = None) -> tuple[dict, dict]:
    """(train pairs, held-out (prompt, answer) pairs) per language from a QA JSONL file.

    Without ``train_pool`` 20% of the lines are held out by a seeded hash; with it each language's
    first ``train_pool`` rows (file order) are the training pool, shuffled with ``seed``, and the rest
    is held out (the paper: ``train[:390]`` / ``train[390:1190]``)."""
    train = {lang: [] for lang in languages}
    held = {lang: [] for lang in languages}
    try:
        lines = open(path, encoding="utf-8-sig").read().splitlines()
    except UnicodeDecodeError:
        raise UsageError(f"--train_data {path} is not UTF-8 text (a binary file?); give a JSONL file of "
                         "question-answer pairs.") from None
    except OSError as exc:
        raise UsageError(f"--train_data {path}: {exc.strerror}; give a JSONL file of question-answer pairs.") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            lang = resolve(row["language"])
            prompt, answer = qa_prompt(row, lang, template)
        except (ValueError, KeyError) as exc:
            raise DataError(f"{path}:{n}: need language, prompt (or question) and answer ({exc}).") from None
        if lang not in train:
            continue
        if train_pool is not None:
            (train if len(train[lang]) < train_pool else held)[lang].append((prompt, answer))
            continue
        side = int.from_bytes(hashlib.sha256(f"{seed}:{n}".encode()).digest()[:8], "big") / 2**64
        (held if side < QA_HELD_OUT else train)[lang].append((prompt, answer))
    if train_pool is not None:
        for lang in languages:
            random.Random(seed).shuffle(train[lang])
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


def macro(table: dict) -> dict:
    """{task: mean over languages} of a {task: {language: value}} table."""
    return {task: sum(v.values()) / len(v) for task, v in table.items() if v}
