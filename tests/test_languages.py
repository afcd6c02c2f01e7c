import pytest

from babelscope.errors import LanguageError
from babelscope.languages import all_codes, info, resolve, resolve_many


@pytest.mark.parametrize("given,code", [
    ("deu_Latn", "deu_Latn"), ("de", "deu_Latn"), ("deu", "deu_Latn"), ("German", "deu_Latn"),
    ("german", "deu_Latn"), ("ger", "deu_Latn"), ("de_DE", "deu_Latn"), ("pt_BR", "por_Latn"),
    ("zh_CN", "zho_Hans"), ("zh-tw", "zho_Hant"), ("zh_Hant", "zho_Hant"), ("sr@latin", "srp_Latn"),
    ("sr", "srp_Cyrl"), ("en-gb", "eng_Latn"), ("ar", "arb_Arab"), ("fa", "pes_Arab"), ("sw", "swh_Latn"),
    ("bn", "ben_Beng"), ("Chinese", "zho_Hans"), ("ZHO_HANS", "zho_Hans"), ("nb", "nob_Latn"),
])
def test_resolve_aliases(given, code):
    assert resolve(given) == code


def test_typo_gets_a_suggestion():
    with pytest.raises(LanguageError, match="Did you mean deu_Latn"):
        resolve("Germn")
    with pytest.raises(LanguageError, match="unknown language 'xx_Yyyy'"):
        resolve("xx_Yyyy")


def test_resolve_many_and_availability():
    assert resolve_many("de, fr ru") == ["deu_Latn", "fra_Latn", "rus_Cyrl"]
    assert resolve_many(["de", "deu_Latn"]) == ["deu_Latn"]
    assert resolve_many("all", available=["fra_Latn", "deu_Latn"]) == ["deu_Latn", "fra_Latn"]
    with pytest.raises(LanguageError, match="not available here.*Available: deu_Latn"):
        resolve_many("fr", available=["deu_Latn"])


def test_table_is_consistent():
    codes = all_codes()
    assert len(codes) >= 200 and len(set(codes)) == len(codes)
    for code in codes:
        lang = info(code)
        assert lang.script == code.split("_")[1] and lang.iso3 == code.split("_")[0]
        if lang.iso1:
            assert resolve(lang.iso1) is not None


def test_one_reference_language_and_one_default_set():
    import importlib

    from babelscope import languages

    assert languages.REFERENCE == "eng_Latn" and resolve_many(languages.DEFAULT_LANGUAGES)[0] == languages.REFERENCE
    for name in ("consistency", "fertility", "aggregate", "evaluate", "tasks.builtin"):
        assert importlib.import_module(f"babelscope.measure.{name}").REFERENCE is languages.REFERENCE


def test_cypher_pairs_resolve_language_names_like_every_verb():
    from babelscope.cypher.questions import finetune_pairs

    assert finetune_pairs("en,es") == finetune_pairs(["eng_Latn", "spa_Latn"])
    with pytest.raises(LanguageError):
        finetune_pairs("xx_Yyyy")
