"""A small aligned corpus of five languages for the finetune tests (60 items)."""

import json

SENTENCES = {
    "eng_Latn": "The cat number {k} sat on the mat and looked out of the window.",
    "fra_Latn": "Le chat numéro {k} était assis sur le tapis et regardait par la fenêtre.",
    "deu_Latn": "Die Katze Nummer {k} saß auf der Matte und schaute aus dem Fenster.",
    "spa_Latn": "El gato número {k} se sentó en la alfombra y miró por la ventana.",
    "rus_Cyrl": "Кошка номер {k} сидела на коврике и смотрела в окно.",
}


def write_corpus(folder, items: int = 60):
    """``folder/corpus.jsonl`` in the wide layout; returns its path."""
    path = folder / "corpus.jsonl"
    rows = [{"item_id": f"c{k}", **{lang: s.format(k=k) for lang, s in SENTENCES.items()}} for k in range(items)]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path
