"""Multimodal items: an image, a multiple-choice question per language, aligned by ``item_id``.

Two sources (``visual:<source>`` in ``layers --tasks`` and ``finetune --data``):

* ``visual:builtin``: a synthetic set drawn at run time with PIL (coloured circles, squares and
  triangles; questions about their colour, shape, number and position) with questions and
  options in 9 languages from the templates below. The translations were written by the
  babelscope team and are **not yet checked by native speakers**.
* ``visual:mmbench`` / ``visual:mmmb`` with ``task_data`` (``--task_data DIR``): the folder
  ``DIR/mmbench`` or ``DIR/mmmb`` of local copies, read as below (the hub is not read).
* ``visual:<file or folder>``: MM-Bench / MMMB items in their public TSV schema (``index``,
  ``question``, optional ``hint``, ``A`` .. ``D``, ``answer`` letter, ``image`` base64 or
  ``image_path``), as a TSV/JSONL file with a ``language`` column, or a folder with one file per
  language named by its code (``mmmb_en.tsv``, ``en.tsv``, ``zho_Hans.jsonl``; MM-Bench's ``cn``
  is Chinese). Rows with the same ``index`` are the same item in several languages.

``split_items`` holds items out by the same seeded item_id hash as every text source, so the
items a model is fine-tuned on are never the ones it is evaluated on::

    items = load_visual("builtin", ["eng_Latn", "fra_Latn"])
    train, held = split_items(items)
    held[0].prompt("fra_Latn")  # "De quelle couleur ...\\nA. rouge\\nB. verte\\n...\\nRéponse :"
"""

from __future__ import annotations

import base64
import csv
import io
import json
import random
import sys
from dataclasses import dataclass
from pathlib import Path

from babelscope.data.aligned import Item, ParallelCorpus
from babelscope.data.split import EVAL_FRACTION, EVAL_SEED
from babelscope.errors import DataError, UsageError
from babelscope.languages import resolve

LETTERS = "ABCD"
BUILTIN_ITEMS = 160  # synthetic items (40 per question kind)
IMAGE_SIZE = 64  # pixels per side of a synthetic image
SOURCE_PREFIX = "visual:"
BENCHMARKS = ("mmbench", "mmmb")  # visual:<name> reads <task_data>/<name>/

# Templates written by the babelscope team (not yet checked by native speakers). Colours agree with
# the feminine "shape" noun where the language inflects them (French forme, Spanish figura, Russian
# фигура, Hindi आकृति); German predicative adjectives do not inflect.
TEMPLATES = {
    "eng_Latn": ("What colour is the shape in the picture?", "Which shape is in the picture?",
                 "How many shapes are in the picture?", "Where is the shape in the picture?",
                 ("red", "green", "blue", "yellow"), ("a circle", "a square", "a triangle"),
                 ("on the left", "on the right", "at the top", "at the bottom"), "Answer:"),
    "fra_Latn": ("De quelle couleur est la forme sur l'image ?", "Quelle forme y a-t-il sur l'image ?",
                 "Combien de formes y a-t-il sur l'image ?", "Où se trouve la forme sur l'image ?",
                 ("rouge", "verte", "bleue", "jaune"), ("un cercle", "un carré", "un triangle"),
                 ("à gauche", "à droite", "en haut", "en bas"), "Réponse :"),
    "deu_Latn": ("Welche Farbe hat die Form auf dem Bild?", "Welche Form ist auf dem Bild zu sehen?",
                 "Wie viele Formen sind auf dem Bild?", "Wo befindet sich die Form auf dem Bild?",
                 ("rot", "grün", "blau", "gelb"), ("ein Kreis", "ein Quadrat", "ein Dreieck"),
                 ("links", "rechts", "oben", "unten"), "Antwort:"),
    "spa_Latn": ("¿De qué color es la figura de la imagen?", "¿Qué figura hay en la imagen?",
                 "¿Cuántas figuras hay en la imagen?", "¿Dónde está la figura en la imagen?",
                 ("roja", "verde", "azul", "amarilla"), ("un círculo", "un cuadrado", "un triángulo"),
                 ("a la izquierda", "a la derecha", "arriba", "abajo"), "Respuesta:"),
    "rus_Cyrl": ("Какого цвета фигура на картинке?", "Какая фигура изображена на картинке?",
                 "Сколько фигур на картинке?", "Где находится фигура на картинке?",
                 ("красная", "зелёная", "синяя", "жёлтая"), ("круг", "квадрат", "треугольник"),
                 ("слева", "справа", "сверху", "снизу"), "Ответ:"),
    "zho_Hans": ("图中的图形是什么颜色？", "图中是什么图形？", "图中有几个图形？", "图形在图中的什么位置？",
                 ("红色", "绿色", "蓝色", "黄色"), ("圆形", "正方形", "三角形"),
                 ("左边", "右边", "上面", "下面"), "答案："),
    "jpn_Jpan": ("画像の図形は何色ですか？", "画像にはどんな図形がありますか？", "画像には図形がいくつありますか？",
                 "図形は画像のどこにありますか？", ("赤", "緑", "青", "黄色"), ("円", "正方形", "三角形"),
                 ("左", "右", "上", "下"), "答え："),
    "arb_Arab": ("ما لون الشكل في الصورة؟", "ما الشكل الموجود في الصورة؟", "كم عدد الأشكال في الصورة؟",
                 "أين يقع الشكل في الصورة؟", ("أحمر", "أخضر", "أزرق", "أصفر"), ("دائرة", "مربع", "مثلث"),
                 ("على اليسار", "على اليمين", "في الأعلى", "في الأسفل"), "الإجابة:"),
    "hin_Deva": ("चित्र में आकृति किस रंग की है?", "चित्र में कौन-सी आकृति है?", "चित्र में कितनी आकृतियाँ हैं?",
                 "चित्र में आकृति कहाँ है?", ("लाल", "हरी", "नीली", "पीली"), ("वृत्त", "वर्ग", "त्रिभुज"),
                 ("बाईं ओर", "दाईं ओर", "ऊपर", "नीचे"), "उत्तर:"),
}
BUILTIN_LANGUAGES = tuple(TEMPLATES)
KINDS = ("colour", "shape", "count", "position")
RGB = ((220, 30, 30), (30, 170, 60), (30, 70, 220), (235, 200, 20))  # red, green, blue, yellow
COUNTS = ("1", "2", "3", "4")  # digits are read the same in every template language


@dataclass
class VisualItem:
    """One image with the same multiple-choice question in several languages."""

    item_id: str
    image: object  # a PIL image, encoded bytes, or a file path
    questions: dict[str, str]  # {language: question (with the hint, if any)}
    options: dict[str, list[str]]  # {language: option texts, in letter order}
    answer: int  # index of the right option
    answer_labels: dict[str, str]  # {language: "Answer:" label}

    def prompt(self, language: str) -> str:
        """Question, lettered options and the answer label (MM-Bench's layout)."""
        lines = [self.questions[language]]
        lines += [f"{LETTERS[k]}. {opt}" for k, opt in enumerate(self.options[language])]
        return "\n".join([*lines, self.answer_labels.get(language, "Answer:")])

    def pil(self):
        """The image as an RGB PIL image."""
        from PIL import Image

        if isinstance(self.image, (bytes, bytearray)):
            return Image.open(io.BytesIO(self.image)).convert("RGB")
        if isinstance(self.image, (str, Path)):
            return Image.open(self.image).convert("RGB")
        return self.image.convert("RGB")


def template_texts() -> list[str]:
    """Every template string (for tokenizer training in tests and token statistics)."""
    return [s for t in TEMPLATES.values() for part in t for s in ([part] if isinstance(part, str) else part)]


# ----------------------------------------------------------------------------- built-in synthetic set


def _draw(draw, shape: int, box: tuple[int, int, int, int], colour) -> None:
    x0, y0, x1, y1 = box
    if shape == 0:
        draw.ellipse(box, fill=colour)
    elif shape == 1:
        draw.rectangle(box, fill=colour)
    else:
        draw.polygon([((x0 + x1) // 2, y0), (x1, y1), (x0, y1)], fill=colour)


def _scene(kind: str, rng: random.Random):
    """(PIL image, option key, answer index) for one synthetic item of ``kind``."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    h = IMAGE_SIZE // 2
    colour, shape = rng.randrange(4), rng.randrange(3)
    cells = [(0, 0), (h, 0), (0, h), (h, h)]  # quadrants: top-left, top-right, bottom-left, bottom-right
    if kind == "count":
        n = rng.randrange(4) + 1
        for x, y in rng.sample(cells, n):
            _draw(draw, shape, (x + 6, y + 6, x + h - 6, y + h - 6), RGB[colour])
        return image, "count", n - 1
    if kind == "position":
        where = rng.randrange(4)  # left, right, top, bottom: the shape sits in that half's middle
        x, y = [(4, h // 2 + 4), (h + 4, h // 2 + 4), (h // 2 + 4, 4), (h // 2 + 4, h + 4)][where]
        _draw(draw, shape, (x, y, x + h - 8, y + h - 8), RGB[colour])
        return image, "position", where
    x, y = rng.choice(cells)
    _draw(draw, shape, (x + 4, y + 4, x + h - 4, y + h - 4), RGB[colour])
    return image, kind, colour if kind == "colour" else shape


def builtin_items(languages=BUILTIN_LANGUAGES, n: int = BUILTIN_ITEMS, seed: int = 0) -> list[VisualItem]:
    """The synthetic set: ``n`` items cycling through the question kinds, drawn with a seeded RNG."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        kind = KINDS[i % len(KINDS)]
        image, key, answer = _scene(kind, rng)
        questions, options, labels = {}, {}, {}
        for lang in languages:
            q_colour, q_shape, q_count, q_where, colours, shapes, places, label = TEMPLATES[lang]
            questions[lang] = {"colour": q_colour, "shape": q_shape, "count": q_count, "position": q_where}[kind]
            options[lang] = list({"colour": colours, "shape": shapes, "count": COUNTS, "position": places}[key])
            labels[lang] = label
        out.append(VisualItem(f"visual-{i:04d}", image, questions, options, answer, labels))
    return out


# ----------------------------------------------------------------------------- MM-Bench / MMMB files


def _language_of(stem: str) -> str:
    code = stem.split("_", 1)[1] if stem.lower().startswith(("mmmb_", "mmbench_")) else stem
    return "zho_Hans" if code.lower() == "cn" else resolve(code)


def _rows(path: Path) -> list[dict]:
    if path.suffix == ".jsonl":
        lines = path.read_text(encoding="utf-8").splitlines()
        try:
            return [json.loads(line) for line in lines if line.strip()]
        except ValueError as exc:
            raise DataError(f"{path}: not JSON lines ({exc}).") from None
    csv.field_size_limit(sys.maxsize)  # base64 images are long fields
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t" if path.suffix == ".tsv" else ","))


def _image_of(row: dict, path: Path):
    if row.get("image_path"):
        found = (path.parent / row["image_path"]).expanduser()
        if not found.is_file():
            raise DataError(f"{path}: image_path {row['image_path']} does not exist.")
        return found
    try:
        return base64.b64decode(row["image"], validate=False)
    except (KeyError, ValueError, TypeError):
        raise DataError(f"{path}: row {row.get('index')} has neither a base64 image nor an image_path.") from None


def _add_row(found: dict, row: dict, lang: str, path: Path) -> None:
    options = [str(row[k]).strip() for k in LETTERS if str(row.get(k) or "").strip() not in ("", "nan")]
    answer = str(row.get("answer", "")).strip().upper()
    if "index" not in row or not row.get("question") or answer not in LETTERS[: len(options)]:
        raise DataError(f"{path}: each row needs index, question, options A.. and an answer letter among them "
                        f"(row {row.get('index')!r}: answer {answer!r}, {len(options)} options).")
    hint = str(row.get("hint") or "").strip()
    question = f"{hint}\n{row['question']}" if hint and hint != "nan" else str(row["question"])
    item = found.setdefault(str(row["index"]), VisualItem(str(row["index"]), _image_of(row, path), {}, {},
                                                          LETTERS.index(answer), {}))
    item.questions[lang], item.options[lang] = question.strip(), options


def file_items(source: str) -> list[VisualItem]:
    """MM-Bench / MMMB items from a file with a ``language`` column or a folder of per-language files."""
    path = Path(source).expanduser()
    files = sorted(p for p in path.iterdir() if p.suffix in (".tsv", ".jsonl", ".csv")) if path.is_dir() else [path]
    if not files or not files[0].is_file():
        raise UsageError(f"visual:{source}: no such file or folder of .tsv/.jsonl files (MM-Bench/MMMB layout).")
    found: dict[str, VisualItem] = {}
    for f in files:
        for row in _rows(f):
            lang = resolve(row["language"]) if row.get("language") else _language_of(f.stem)
            _add_row(found, row, lang, f)
    return list(found.values())


# ----------------------------------------------------------------------------- selection and split


def parse_source(spec: str) -> str:
    """``visual:builtin`` -> ``builtin``; anything else is not a visual spec (UsageError)."""
    if not str(spec).startswith(SOURCE_PREFIX) or not spec[len(SOURCE_PREFIX):]:
        raise UsageError(f"{spec!r} is not a visual source; write visual:builtin or visual:<MM-Bench/MMMB file>.")
    return spec[len(SOURCE_PREFIX):]


def is_visual(spec) -> bool:
    return bool(spec) and any(s.startswith(SOURCE_PREFIX) for s in str(spec).replace(",", " ").split())


def _source_path(source: str, task_data: str | None) -> str:
    if source not in BENCHMARKS:
        return source
    if not task_data:
        raise UsageError(f"visual:{source} reads local copies: pass --task_data DIR with DIR/{source}/ holding one "
                         f"MM-Bench-schema .tsv or .jsonl per language (the hub is not read).")
    return str(Path(task_data).expanduser() / source)


def load_visual(spec: str, languages=None, task_data: str | None = None) -> list[VisualItem]:
    """Items of ``visual:<source>`` (or the bare source) that have every one of ``languages``."""
    source = parse_source(spec) if str(spec).startswith(SOURCE_PREFIX) else str(spec)
    items = builtin_items() if source == "builtin" else file_items(_source_path(source, task_data))
    if languages is None:
        return items
    missing = [lang for lang in languages if not any(lang in it.questions for it in items)]
    if missing:
        have = sorted({lang for it in items for lang in it.questions})
        raise UsageError(f"visual:{source} has no items in {', '.join(missing)}; it has {', '.join(have)}.")
    return [it for it in items if all(lang in it.questions for lang in languages)]


def available_languages(spec: str, task_data: str | None = None) -> list[str]:
    return sorted({lang for it in load_visual(spec, task_data=task_data) for lang in it.questions})


def split_items(items: list[VisualItem]) -> tuple[list[VisualItem], list[VisualItem]]:
    """(train, held out) by the shared seeded item_id hash (``data.split``'s fraction and seed)."""
    corpus = ParallelCorpus([Item(it.item_id, {"_": ""}) for it in items])
    _, held = corpus.split(held_out_fraction=EVAL_FRACTION, seed=EVAL_SEED)
    held_ids = {it.item_id for it in held}
    return [it for it in items if it.item_id not in held_ids], [it for it in items if it.item_id in held_ids]
