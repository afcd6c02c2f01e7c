"""Multimodal items: the synthetic set's answers match its pictures, MM-Bench/MMMB files parse in their
public schema, and the held-out split is by item_id (never trained on)."""

import base64
import io
import json

import pytest
from PIL import Image

from babelscope.data import visual
from babelscope.errors import DataError, UsageError


def _ink(image):
    """(x, y, rgb) of every non-white pixel."""
    w, h = image.size
    return [(x, y, image.getpixel((x, y))) for x in range(w) for y in range(h) if image.getpixel((x, y)) != (255,) * 3]


def test_builtin_answers_match_the_pictures():
    items = visual.builtin_items()
    assert len(items) == visual.BUILTIN_ITEMS and len({it.item_id for it in items}) == len(items)
    assert set(items[0].questions) == set(visual.BUILTIN_LANGUAGES) and len(visual.BUILTIN_LANGUAGES) >= 8
    half = visual.IMAGE_SIZE // 2
    for k, it in enumerate(items):
        ink = _ink(it.pil())
        kind = visual.KINDS[k % len(visual.KINDS)]
        if kind == "colour":
            assert {rgb for _, _, rgb in ink} == {visual.RGB[it.answer]}
        elif kind == "count":
            quadrants = {(x >= half, y >= half) for x, y, _ in ink}
            assert len(quadrants) == it.answer + 1
        elif kind == "position":
            cx = sum(x for x, _, _ in ink) / len(ink)
            cy = sum(y for _, y, _ in ink) / len(ink)
            side = [cx < half - 8, cx > half + 8, cy < half - 8, cy > half + 8]
            assert side.index(True) == it.answer and sum(side) == 1
        assert all(len(it.options[lang]) == len(it.options["eng_Latn"]) for lang in it.options)


def test_builtin_is_deterministic_and_prompted_in_each_language():
    a, b = visual.builtin_items(n=8), visual.builtin_items(n=8)
    assert [list(x.pil().getdata()) for x in a] == [list(y.pil().getdata()) for y in b]
    prompt = a[0].prompt("fra_Latn")
    assert prompt.startswith("De quelle couleur") and "\nA. rouge\nB. verte\n" in prompt
    assert prompt.endswith("Réponse :")


def _png(colour) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def test_mmbench_tsv_folder_aligns_languages_by_index(tmp_path):
    header = "index\tquestion\thint\tA\tB\tC\tD\tanswer\tcategory\timage\n"
    (tmp_path / "mmmb_en.tsv").write_text(
        header + f"7\tWhat colour?\tLook closely.\tred\tblue\t\t\tB\tcolour\t{_png((0, 0, 255))}\n"
        f"9\tHow many?\tnan\tone\ttwo\tthree\t\tA\tcount\t{_png((0, 0, 0))}\n", encoding="utf-8")
    (tmp_path / "mmmb_cn.tsv").write_text(
        header + f"7\t什么颜色？\t\t红色\t蓝色\t\t\tB\tcolour\t{_png((0, 0, 255))}\n", encoding="utf-8")
    items = visual.load_visual(f"visual:{tmp_path}")
    by_id = {it.item_id: it for it in items}
    assert set(by_id) == {"7", "9"} and set(by_id["7"].questions) == {"eng_Latn", "zho_Hans"}
    assert by_id["7"].answer == 1 and by_id["7"].options["zho_Hans"] == ["红色", "蓝色"]
    assert by_id["7"].questions["eng_Latn"] == "Look closely.\nWhat colour?"
    assert by_id["9"].questions["eng_Latn"] == "How many?" and len(by_id["9"].options["eng_Latn"]) == 3
    assert by_id["7"].pil().getpixel((0, 0)) == (0, 0, 255)
    assert [it.item_id for it in visual.load_visual(f"visual:{tmp_path}", ["eng_Latn", "zho_Hans"])] == ["7"]
    with pytest.raises(UsageError, match="no items in fra_Latn"):
        visual.load_visual(f"visual:{tmp_path}", ["fra_Latn"])


def test_benchmark_names_read_task_data(tmp_path):
    (tmp_path / "mmmb").mkdir()
    row = {"index": 3, "question": "Какого цвета?", "A": "красный", "B": "синий", "answer": "B",
           "image": _png((0, 0, 9))}
    (tmp_path / "mmmb" / "ru.jsonl").write_text(json.dumps(row), encoding="utf-8")
    (item,) = visual.load_visual("visual:mmmb", ["rus_Cyrl"], task_data=str(tmp_path))
    assert item.item_id == "3" and item.answer == 1
    with pytest.raises(UsageError, match="--task_data DIR"):
        visual.load_visual("visual:mmmb")


def test_jsonl_with_language_column_and_image_paths(tmp_path):
    Image.new("RGB", (8, 8), (255, 0, 0)).save(tmp_path / "a.png")
    rows = [{"index": 1, "language": lang, "question": q, "A": "x", "B": "y", "answer": "A", "image_path": "a.png"}
            for lang, q in (("en", "Q?"), ("de", "F?"))]
    path = tmp_path / "items.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    (item,) = visual.load_visual(f"visual:{path}")
    assert item.questions == {"eng_Latn": "Q?", "deu_Latn": "F?"} and item.pil().getpixel((1, 1)) == (255, 0, 0)
    path.write_text(json.dumps({**rows[0], "answer": "C"}), encoding="utf-8")
    with pytest.raises(DataError, match="answer letter"):
        visual.load_visual(f"visual:{path}")
    with pytest.raises(UsageError, match="visual:"):
        visual.load_visual("visual:/no/such/file.tsv")


def test_split_is_by_item_id_and_disjoint():
    items = visual.builtin_items()
    train, held = visual.split_items(items)
    assert held and train and not {it.item_id for it in train} & {it.item_id for it in held}
    sub_train, sub_held = visual.split_items(visual.builtin_items(["eng_Latn", "zho_Hans"]))
    assert [it.item_id for it in sub_held] == [it.item_id for it in held]  # same side in any language subset
