"""Public multilingual benchmarks: one template per benchmark plus its language -> config table.

Documents come from the Hugging Face hub through ``datasets`` (``HF_HUB_OFFLINE`` unset), or
from local copies in the public schema: ``$BABELSCOPE_TASK_DATA/<task>/<config>.jsonl`` (the
``--task_data`` flag). Prompts follow lm-eval's task files (belebele, xcopa, xstorycloze, xnli,
xquad, mgsm) so the numbers are comparable; items keep the dataset's own id, which is shared
across languages in all of them, so consistency works.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path

from babelscope.data.corpus import load_corpus
from babelscope.errors import DataError, LanguageError, require
from babelscope.languages import info
from babelscope.measure.tasks import GenItem, MCItem, Task, register
from babelscope.measure.tasks.builtin import Translation

TASK_DATA_ENV = "BABELSCOPE_TASK_DATA"  # folder of local copies: <task>/<config>.jsonl


def load_docs(task: str, hf_path: str, config: str | None, split: str) -> list[dict]:
    """Rows of one benchmark config: a local copy when present, else ``datasets.load_dataset``."""
    local = os.environ.get(TASK_DATA_ENV)
    if local:
        path = Path(local) / task / f"{config or task}.jsonl"
        if path.is_file():
            with open(path, encoding="utf-8") as f:
                return [json.loads(line) for line in f if line.strip()]
    try:
        import datasets

        return list(datasets.load_dataset(hf_path, config, split=split))
    except Exception as exc:  # offline hub, missing config, ...
        first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise DataError(
            f"cannot load {hf_path} ({config}, split {split}): {first}. With no hub access, put the "
            f"rows in {TASK_DATA_ENV}/{task}/{config or task}.jsonl (--task_data DIR)."
        ) from None


@lru_cache(maxsize=64)
def lm_eval_task_yaml(relpath: str) -> dict:
    """One of lm-eval's installed task YAML files (``!function`` tags read as plain strings)."""
    import yaml

    lm_eval_tasks = require("lm_eval.tasks", extra="lm_eval", feature="the public tasks (lm-eval's prompts)")

    class _Loader(yaml.SafeLoader):
        pass

    _Loader.add_multi_constructor("!", lambda loader, tag, node: loader.construct_scalar(node))
    path = Path(lm_eval_tasks.__file__).parent / relpath
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)


def render(template: str, doc: dict) -> str:
    """A Jinja2 prompt template of lm-eval applied to one document."""
    import jinja2

    return jinja2.Template(template, keep_trailing_newline=True).render(**doc)


class PublicTask(Task):
    """A benchmark: ``hf_path``, ``split``, ``configs`` {language: config} and ``to_item(doc, i)``."""

    hf_path = ""
    split = "test"
    configs: dict[str, str] = {}

    def available_languages(self, source="builtin"):
        return sorted(self.configs)

    def config_for(self, language: str) -> str:
        if language not in self.configs:
            raise LanguageError(f"{self.name} has no {language}; available: {', '.join(sorted(self.configs))}.")
        return self.configs[language]

    def load(self, languages, source="builtin", limit=None):
        configs = {lang: self.config_for(lang) for lang in languages}  # every language checked first
        out = {}
        for lang in languages:
            docs = load_docs(self.name, self.hf_path, configs[lang], self.split)[: limit or None]
            items = []
            for i, doc in enumerate(docs):
                try:
                    items.append(self.to_item(doc, i, lang).check())
                except (KeyError, TypeError, ValueError, IndexError) as exc:
                    raise DataError(
                        f"{self.name} {lang}: item {self.item_id(doc, i)} is malformed ({type(exc).__name__}: {exc})."
                    ) from None
            out[lang] = items
        return out

    def item_id(self, doc: dict, i: int) -> str:
        return str(i)

    def to_item(self, doc: dict, i: int, lang: str):
        raise NotImplementedError


def _table(pairs: str) -> dict[str, str]:
    """``"eng_Latn=en fra_Latn=fr"`` -> {flores code: config}."""
    return dict(p.split("=") for p in pairs.split())


class Belebele(PublicTask):
    name, kind, hf_path, split = "belebele", "mc", "facebook/belebele", "test"
    description = "reading comprehension on FLORES passages, 4 lettered options (lm-eval's prompt)"
    configs = {
        c: c
        for c in (
            "eng_Latn fra_Latn deu_Latn spa_Latn ita_Latn por_Latn nld_Latn pol_Latn rus_Cyrl "
            "ukr_Cyrl bul_Cyrl ell_Grek tur_Latn arb_Arab heb_Hebr hin_Deva ben_Beng urd_Arab "
            "tam_Taml tel_Telu mar_Deva zho_Hans zho_Hant jpn_Jpan kor_Hang vie_Latn tha_Thai "
            "ind_Latn swh_Latn yor_Latn hau_Latn amh_Ethi fin_Latn hun_Latn ces_Latn ron_Latn "
            "swe_Latn dan_Latn"
        ).split()
    }

    def item_id(self, doc, i):
        return f"{doc.get('link', '')}#{doc.get('question_number', i)}"

    def to_item(self, doc, i, lang):
        text = (
            f"P: {doc['flores_passage']}\nQ: {doc['question'].strip()}\nA: {doc['mc_answer1']}\n"
            f"B: {doc['mc_answer2']}\nC: {doc['mc_answer3']}\nD: {doc['mc_answer4']}\nAnswer:"
        )
        return MCItem(self.item_id(doc, i), text, [" A", " B", " C", " D"], int(doc["correct_answer_num"]) - 1)


class XNLI(PublicTask):
    name, kind, hf_path, split = "xnli", "mc", "facebook/xnli", "validation"
    description = "natural language inference, whole-sentence choices with localised label words"
    configs = _table(
        "eng_Latn=en deu_Latn=de fra_Latn=fr spa_Latn=es rus_Cyrl=ru zho_Hans=zh bul_Cyrl=bg "
        "ell_Grek=el tur_Latn=tr vie_Latn=vi swh_Latn=sw hin_Deva=hi arb_Arab=ar tha_Thai=th "
        "urd_Arab=ur"
    )

    def to_item(self, doc, i, lang):
        from lm_eval.tasks.xnli.utils import LANGUAGES  # lm-eval's own localised words

        words = LANGUAGES[self.configs[lang]]
        right, yes, also, no = (
            words[k] for k in ("QUESTION_WORD", "ENTAILMENT_LABEL", "NEUTRAL_LABEL", "CONTRADICTION_LABEL")
        )
        p, h = doc["premise"], doc["hypothesis"]
        choices = [f"{p}, {right}? {w}, {h}" for w in (yes, also, no)]
        return MCItem(str(i), "", choices, int(doc["label"]))


class XCOPA(PublicTask):
    name, kind, hf_path, split = "xcopa", "mc", "cambridgeltl/xcopa", "test"
    description = "causal commonsense: pick the cause/effect of a premise among 2"
    configs = _table(
        "est_Latn=et hat_Latn=ht ind_Latn=id ita_Latn=it quy_Latn=qu swh_Latn=sw tam_Taml=ta "
        "tha_Thai=th tur_Latn=tr vie_Latn=vi zho_Hans=zh"
    )

    def to_item(self, doc, i, lang):
        from lm_eval.tasks.xcopa import utils  # lm-eval's own connectors and choice casing

        context = getattr(utils, f"doc_to_text_{self.configs[lang]}")(doc)
        choices = [" " + c for c in utils.doc_to_choice(doc)]
        return MCItem(str(doc.get("idx", i)), context, choices, int(doc["label"]))


class XStoryCloze(PublicTask):
    name, kind, hf_path, split = "xstorycloze", "mc", "juletxara/xstory_cloze", "eval"
    description = "pick the right ending of a four-sentence story among 2"
    configs = _table(
        "arb_Arab=ar eng_Latn=en spa_Latn=es eus_Latn=eu hin_Deva=hi ind_Latn=id mya_Mymr=my "
        "rus_Cyrl=ru swh_Latn=sw tel_Telu=te zho_Hans=zh"
    )

    def to_item(self, doc, i, lang):
        context = " ".join(doc[f"input_sentence_{k}"] for k in range(1, 5))
        choices = [" " + doc["sentence_quiz1"], " " + doc["sentence_quiz2"]]
        return MCItem(str(doc.get("story_id", i)), context, choices, int(doc["answer_right_ending"]) - 1)


class MGSM(PublicTask):
    name, kind, hf_path, split = "mgsm", "generate", "juletxara/mgsm", "test"
    description = "grade-school maths, greedy answer, last number compared (lm-eval's flexible extract)"
    metrics = ("number_match", "exact_match")
    configs = _table(
        "eng_Latn=en ben_Beng=bn deu_Latn=de spa_Latn=es fra_Latn=fr jpn_Jpan=ja rus_Cyrl=ru "
        "swh_Latn=sw tel_Telu=te tha_Thai=th zho_Hans=zh"
    )

    def to_item(self, doc, i, lang):
        spec = lm_eval_task_yaml(f"mgsm/direct/mgsm_direct_{self.configs[lang]}.yaml")
        number = doc["answer_number"]
        answer = str(int(number)) if float(number).is_integer() else str(number)
        until = list(spec["generation_kwargs"]["until"])
        return GenItem(
            str(i), render(spec["doc_to_text"], {"answer": None, **doc}), [answer], until=until, max_gen_toks=256
        )


class XQuAD(PublicTask):
    name, kind, hf_path, split = "xquad", "generate", "google/xquad", "validation"
    description = "extractive QA by generation: exact match, F1 and gold-in-continuation (LAHIS rule)"
    metrics = ("exact_match", "f1", "gold_in")
    configs = {
        code: f"xquad.{iso}"
        for code, iso in _table(
            "eng_Latn=en arb_Arab=ar deu_Latn=de ell_Grek=el spa_Latn=es hin_Deva=hi rus_Cyrl=ru tha_Thai=th "
            "tur_Latn=tr vie_Latn=vi zho_Hans=zh ron_Latn=ro"
        ).items()
    }

    def to_item(self, doc, i, lang):
        spec = lm_eval_task_yaml(f"xquad/xquad_{self.configs[lang].split('.')[-1]}.yaml")
        context = render(spec["doc_to_text"], doc)
        return GenItem(str(doc.get("id", i)), context, list(doc["answers"]["text"]), until=["\n"], max_gen_toks=32)


class MuBench(PublicTask):
    """MuBench cloze ("lighteval") configs ``<Dataset>_lighteval_<lang>``: prompt, choices, label, _id."""

    name, kind, hf_path, split = "mubench", "mc", "aialt/MuBench", "test"
    description = "MuBench aligned multiple choice (cloze mode), items aligned by _id across languages"
    dataset = "StoryClozeDataset"  # which MuBench benchmark; `mubench_<Dataset>` picks another
    # MuBench's 61 language codes (the config suffixes; ISO 639-1, ceb for Cebuano), as the MuBench task
    # README lists them, mapped by babelscope.languages.resolve (sr -> srp_Cyrl, FLORES' only Serbian).
    configs = _table(
        "eng_Latn=en deu_Latn=de fra_Latn=fr spa_Latn=es ita_Latn=it por_Latn=pt rus_Cyrl=ru "
        "zho_Hans=zh jpn_Jpan=ja kor_Hang=ko arb_Arab=ar hin_Deva=hi ben_Beng=bn tur_Latn=tr "
        "vie_Latn=vi ind_Latn=id pol_Latn=pl nld_Latn=nl ukr_Cyrl=uk swh_Latn=sw "
        "afr_Latn=af azj_Latn=az bul_Cyrl=bg cat_Latn=ca ceb_Latn=ceb ces_Latn=cs dan_Latn=da ell_Grek=el "
        "est_Latn=et pes_Arab=fa fin_Latn=fi gle_Latn=ga guj_Gujr=gu heb_Hebr=he hrv_Latn=hr hun_Latn=hu "
        "isl_Latn=is jav_Latn=jv kaz_Cyrl=kk khm_Khmr=km kan_Knda=kn lit_Latn=lt lvs_Latn=lv mal_Mlym=ml "
        "mar_Deva=mr zsm_Latn=ms mya_Mymr=my nob_Latn=no pan_Guru=pa ron_Latn=ro slk_Latn=sk slv_Latn=sl "
        "als_Latn=sq srp_Cyrl=sr swe_Latn=sv tam_Taml=ta tel_Telu=te tha_Thai=th tgl_Latn=tl urd_Arab=ur "
        "uzn_Latn=uz"
    )

    def config_for(self, language):
        return f"{self.dataset}_lighteval_{super().config_for(language)}"

    def to_item(self, doc, i, lang):
        choices = [c if c[:1].isspace() else " " + c for c in doc["choices"]]
        return MCItem(str(doc["_id"]), doc["prompt"].rstrip(), choices, int(doc["label"]))


class Flores(PublicTask):
    """English -> language translation by generation on FLORES (chrF, BLEU)."""

    name, kind, hf_path, split = "flores", "generate", "openlanguagedata/flores_plus", "devtest"
    description = "translation from English by greedy generation, chrF and BLEU (sacrebleu)"
    metrics = ("chrf", "bleu")

    def available_languages(self, source="builtin"):
        return None  # every FLORES-200 language

    def config_for(self, language):
        return language

    def load(self, languages, source="builtin", limit=None):

        local = os.environ.get(TASK_DATA_ENV)
        folder = Path(local) / "flores" if local else None
        spec = f"hf:{folder}" if folder and folder.is_dir() else f"hf:{self.hf_path}@{self.split}"
        sources = {lang: Translation.source_language(lang, languages) for lang in languages}
        needed = list(dict.fromkeys([*languages, *sources.values()]))
        items = load_corpus(spec).aligned(needed)[: limit or None]
        return {
            lang: [
                GenItem(
                    it.item_id,
                    f"{info(sources[lang]).name}: {it.texts[sources[lang]]}\n{info(lang).name}:",
                    [it.texts[lang]],
                    until=["\n"],
                    max_gen_toks=128,
                ).check()
                for it in items
            ]
            for lang in languages
        }


for _cls in (Belebele, XNLI, XCOPA, XStoryCloze, MGSM, XQuAD, MuBench, Flores):
    register(_cls.name, _cls)
for _ds in (
    "ARCEasyDataset",
    "ARCChallengeDataset",
    "HellaswagDataset",  # the published folder name (not HellaSwag)
    "GPQADataset",
    "MMLUDataset",
    "MMLUProDataset",  # MMLU-Pro (up to 10 options), a folder of the dataset repository
    "WinoGrandeDataset",
    "StoryClozeDataset",
    "TruthfulQADataset",
    "BMLAMADataset",
    "MNLIDataset",
    "SNLIDataset",
):
    register(f"mubench_{_ds}", type(f"MuBench_{_ds}", (MuBench,), {"name": f"mubench_{_ds}", "dataset": _ds}))
