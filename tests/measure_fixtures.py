"""A small aligned corpus for measure tests (4 languages, distinct paragraphs)."""

from babelscope.data.corpus import Item, ParallelCorpus

_EN = ["cat", "dog", "bird", "horse", "fish", "mouse", "lion", "bear"]
_FR = ["chat", "chien", "oiseau", "cheval", "poisson", "souris", "lion", "ours"]
_DE = ["Katze", "Hund", "Vogel", "Pferd", "Fisch", "Maus", "Löwe", "Bär"]
_ZH = ["猫", "狗", "鸟", "马", "鱼", "鼠", "狮", "熊"]
_PLACES_EN = ["garden", "house", "river", "forest", "city", "school", "market", "field"]
_PLACES_FR = ["jardin", "maison", "rivière", "forêt", "ville", "école", "marché", "champ"]
_PLACES_DE = ["Garten", "Haus", "Fluss", "Wald", "Stadt", "Schule", "Markt", "Feld"]
_PLACES_ZH = ["花园", "房子", "河边", "森林", "城市", "学校", "市场", "田野"]


def small_corpus(n: int = 120) -> ParallelCorpus:
    items = []
    for i in range(n):
        a, p, k = i % 8, (i // 8) % 8, i
        items.append(
            Item(
                f"t{i:04d}",
                {
                    "eng_Latn": f"On day {k} the {_EN[a]} walked slowly to the {_PLACES_EN[p]} and rested there.",
                    "fra_Latn": f"Le jour {k}, le {_FR[a]} marcha lentement vers le {_PLACES_FR[p]} et s'y reposa.",
                    "deu_Latn": f"Am Tag {k} ging der {_DE[a]} langsam zum {_PLACES_DE[p]} und ruhte dort.",
                    "zho_Hans": f"第{k}天，{_ZH[a]}慢慢地走到{_PLACES_ZH[p]}，在那里休息。",
                },
                "fixture",
            )
        )
    return ParallelCorpus(items, "fixture")
