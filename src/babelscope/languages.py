"""Language codes: FLORES-200 style (``deu_Latn``) is canonical.

``resolve`` also accepts ISO 639-1 (``de``), ISO 639-3 or 639-2/B (``deu``, ``ger``), English
names (``German``) and locale forms (``de_DE``, ``pt_BR``, ``zh_CN``, ``zh-tw``, ``sr@latin``),
and answers a typo with a did-you-mean error.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import lru_cache

from babelscope.errors import LanguageError

REFERENCE = "eng_Latn"  # the reference language: consistency, parity and English-centred comparisons
DEFAULT_LANGUAGES = "eng_Latn,fra_Latn,deu_Latn,spa_Latn,rus_Cyrl,zho_Hans,jpn_Jpan,hin_Deva"  # every verb's default

# code|ISO 639-1|English name. FLORES-200 codes (flores_plus spelling), plus a few languages
# that the built-in corpus or common catalogs carry and FLORES lacks (marked at the end).
_TABLE = """
ace_Arab||Acehnese (Arabic script)
ace_Latn||Acehnese (Latin script)
acm_Arab||Mesopotamian Arabic
acq_Arab||Ta'izzi-Adeni Arabic
aeb_Arab||Tunisian Arabic
afr_Latn|af|Afrikaans
ajp_Arab||South Levantine Arabic
aka_Latn|ak|Akan
amh_Ethi|am|Amharic
apc_Arab||North Levantine Arabic
arb_Arab|ar|Arabic
arb_Latn||Arabic (Romanized)
ars_Arab||Najdi Arabic
ary_Arab||Moroccan Arabic
arz_Arab||Egyptian Arabic
asm_Beng|as|Assamese
ast_Latn||Asturian
awa_Deva||Awadhi
ayr_Latn|ay|Aymara
azb_Arab||South Azerbaijani
azj_Latn|az|Azerbaijani
bak_Cyrl|ba|Bashkir
bam_Latn|bm|Bambara
ban_Latn||Balinese
bel_Cyrl|be|Belarusian
bem_Latn||Bemba
ben_Beng|bn|Bengali
bho_Deva||Bhojpuri
bjn_Arab||Banjar (Arabic script)
bjn_Latn||Banjar (Latin script)
bod_Tibt|bo|Tibetan
bos_Latn|bs|Bosnian
bug_Latn||Buginese
bul_Cyrl|bg|Bulgarian
cat_Latn|ca|Catalan
ceb_Latn||Cebuano
ces_Latn|cs|Czech
cjk_Latn||Chokwe
ckb_Arab||Central Kurdish
crh_Latn||Crimean Tatar
cym_Latn|cy|Welsh
dan_Latn|da|Danish
deu_Latn|de|German
dik_Latn||Southwestern Dinka
dyu_Latn||Dyula
dzo_Tibt|dz|Dzongkha
ell_Grek|el|Greek
eng_Latn|en|English
epo_Latn|eo|Esperanto
est_Latn|et|Estonian
eus_Latn|eu|Basque
ewe_Latn|ee|Ewe
fao_Latn|fo|Faroese
fij_Latn|fj|Fijian
fin_Latn|fi|Finnish
fon_Latn||Fon
fra_Latn|fr|French
fur_Latn||Friulian
fuv_Latn||Nigerian Fulfulde
gla_Latn|gd|Scottish Gaelic
gle_Latn|ga|Irish
glg_Latn|gl|Galician
grn_Latn|gn|Guarani
guj_Gujr|gu|Gujarati
hat_Latn|ht|Haitian Creole
hau_Latn|ha|Hausa
heb_Hebr|he|Hebrew
hin_Deva|hi|Hindi
hne_Deva||Chhattisgarhi
hrv_Latn|hr|Croatian
hun_Latn|hu|Hungarian
hye_Armn|hy|Armenian
ibo_Latn|ig|Igbo
ilo_Latn||Ilocano
ind_Latn|id|Indonesian
isl_Latn|is|Icelandic
ita_Latn|it|Italian
jav_Latn|jv|Javanese
jpn_Jpan|ja|Japanese
kab_Latn||Kabyle
kac_Latn||Jingpho
kam_Latn||Kamba
kan_Knda|kn|Kannada
kas_Arab|ks|Kashmiri (Arabic script)
kas_Deva||Kashmiri (Devanagari script)
kat_Geor|ka|Georgian
kaz_Cyrl|kk|Kazakh
kbp_Latn||Kabiye
kea_Latn||Kabuverdianu
khk_Cyrl|mn|Mongolian
khm_Khmr|km|Khmer
kik_Latn|ki|Kikuyu
kin_Latn|rw|Kinyarwanda
kir_Cyrl|ky|Kyrgyz
kmb_Latn||Kimbundu
kmr_Latn|ku|Northern Kurdish
knc_Arab||Central Kanuri (Arabic script)
knc_Latn||Central Kanuri (Latin script)
kon_Latn|kg|Kikongo
kor_Hang|ko|Korean
lao_Laoo|lo|Lao
lij_Latn||Ligurian
lim_Latn|li|Limburgish
lin_Latn|ln|Lingala
lit_Latn|lt|Lithuanian
lmo_Latn||Lombard
ltg_Latn||Latgalian
ltz_Latn|lb|Luxembourgish
lua_Latn||Luba-Kasai
lug_Latn|lg|Ganda
luo_Latn||Luo
lus_Latn||Mizo
lvs_Latn|lv|Latvian
mag_Deva||Magahi
mai_Deva||Maithili
mal_Mlym|ml|Malayalam
mar_Deva|mr|Marathi
min_Arab||Minangkabau (Arabic script)
min_Latn||Minangkabau (Latin script)
mkd_Cyrl|mk|Macedonian
mlt_Latn|mt|Maltese
mni_Beng||Meitei
mos_Latn||Mossi
mri_Latn|mi|Maori
mya_Mymr|my|Burmese
nld_Latn|nl|Dutch
nno_Latn|nn|Norwegian Nynorsk
nob_Latn|nb|Norwegian Bokmal
npi_Deva|ne|Nepali
nso_Latn||Northern Sotho
nus_Latn||Nuer
nya_Latn|ny|Nyanja
oci_Latn|oc|Occitan
gaz_Latn|om|Oromo
ory_Orya|or|Odia
pag_Latn||Pangasinan
pan_Guru|pa|Punjabi
pap_Latn||Papiamento
pes_Arab|fa|Persian
plt_Latn|mg|Malagasy
pol_Latn|pl|Polish
por_Latn|pt|Portuguese
prs_Arab||Dari
pbt_Arab|ps|Pashto
quy_Latn|qu|Quechua
ron_Latn|ro|Romanian
run_Latn|rn|Rundi
rus_Cyrl|ru|Russian
sag_Latn|sg|Sango
san_Deva|sa|Sanskrit
sat_Olck||Santali
scn_Latn||Sicilian
shn_Mymr||Shan
sin_Sinh|si|Sinhala
slk_Latn|sk|Slovak
slv_Latn|sl|Slovenian
smo_Latn|sm|Samoan
sna_Latn|sn|Shona
snd_Arab|sd|Sindhi
som_Latn|so|Somali
sot_Latn|st|Southern Sotho
spa_Latn|es|Spanish
als_Latn|sq|Albanian
srd_Latn|sc|Sardinian
srp_Cyrl|sr|Serbian
ssw_Latn|ss|Swati
sun_Latn|su|Sundanese
swe_Latn|sv|Swedish
swh_Latn|sw|Swahili
szl_Latn||Silesian
tam_Taml|ta|Tamil
taq_Latn||Tamasheq (Latin script)
taq_Tfng||Tamasheq (Tifinagh script)
tat_Cyrl|tt|Tatar
tel_Telu|te|Telugu
tgk_Cyrl|tg|Tajik
tgl_Latn|tl|Tagalog
tha_Thai|th|Thai
tir_Ethi|ti|Tigrinya
tpi_Latn||Tok Pisin
tsn_Latn|tn|Tswana
tso_Latn|ts|Tsonga
tuk_Latn|tk|Turkmen
tum_Latn||Tumbuka
tur_Latn|tr|Turkish
twi_Latn|tw|Twi
tzm_Tfng||Central Atlas Tamazight
uig_Arab|ug|Uyghur
ukr_Cyrl|uk|Ukrainian
umb_Latn||Umbundu
urd_Arab|ur|Urdu
uzn_Latn|uz|Uzbek
vec_Latn||Venetian
vie_Latn|vi|Vietnamese
war_Latn||Waray
wol_Latn|wo|Wolof
xho_Latn|xh|Xhosa
ydd_Hebr|yi|Yiddish
yor_Latn|yo|Yoruba
yue_Hant||Cantonese
zho_Hans|zh|Chinese (Simplified)
zho_Hant||Chinese (Traditional)
zsm_Latn|ms|Malay
zul_Latn|zu|Zulu
bre_Latn|br|Breton
fry_Latn|fy|Western Frisian
ina_Latn|ia|Interlingua
ido_Latn|io|Ido
hsb_Latn||Upper Sorbian
dsb_Latn||Lower Sorbian
oss_Cyrl|os|Ossetian
udm_Cyrl||Udmurt
srp_Latn||Serbian (Latin script)
"""

# ISO 639-3 macrolanguage and 639-2/B codes that FLORES spells with another code.
_ALIASES = {
    "zho": "zho_Hans", "chi": "zho_Hans", "cmn": "zho_Hans", "ara": "arb_Arab", "fas": "pes_Arab",
    "per": "pes_Arab", "msa": "zsm_Latn", "may": "zsm_Latn", "swa": "swh_Latn", "lav": "lvs_Latn",
    "nep": "npi_Deva", "ori": "ory_Orya", "orm": "gaz_Latn", "pus": "pbt_Arab", "sqi": "als_Latn",
    "alb": "als_Latn", "mon": "khk_Cyrl", "uzb": "uzn_Latn", "aze": "azj_Latn", "yid": "ydd_Hebr",
    "que": "quy_Latn", "mlg": "plt_Latn", "kur": "kmr_Latn", "ger": "deu_Latn", "fre": "fra_Latn",
    "dut": "nld_Latn", "cze": "ces_Latn", "gre": "ell_Grek", "rum": "ron_Latn", "slo": "slk_Latn",
    "ice": "isl_Latn", "arm": "hye_Armn", "geo": "kat_Geor", "mac": "mkd_Cyrl", "bur": "mya_Mymr",
    "wel": "cym_Latn", "baq": "eus_Latn", "tib": "bod_Tibt", "nor": "nob_Latn", "no": "nob_Latn",
    "fil": "tgl_Latn", "ekk": "est_Latn", "pnb": "pan_Guru", "kmr": "kmr_Latn", "tzm": "tzm_Tfng",
    "persian": "pes_Arab", "farsi": "pes_Arab", "chinese": "zho_Hans", "mandarin": "zho_Hans",
}
_HANT_REGIONS = {"tw", "hk", "mo", "hant"}


@dataclass(frozen=True)
class Language:
    code: str  # FLORES-200 style, e.g. deu_Latn
    name: str  # English name
    iso1: str  # ISO 639-1, "" when none
    script: str  # ISO 15924, e.g. Latn

    @property
    def iso3(self) -> str:
        return self.code.split("_")[0]


@lru_cache(maxsize=1)
def _languages() -> dict[str, Language]:
    out = {}
    for line in _TABLE.strip().splitlines():
        code, iso1, name = line.split("|")
        out[code] = Language(code, name, iso1, code.split("_")[1])
    return out


@lru_cache(maxsize=1)
def _index() -> dict[str, str]:
    """Lower-cased key (code, iso1, iso3, name) -> canonical code; the first entry wins."""
    idx: dict[str, str] = {}
    for lang in _languages().values():
        for key in (lang.code, lang.iso1, lang.iso3, lang.name, re.sub(r" \(.*\)", "", lang.name)):
            if key:
                idx.setdefault(key.lower(), lang.code)
    for key, code in _ALIASES.items():
        idx.setdefault(key, code)
    return idx


def all_codes() -> list[str]:
    """Every known canonical code, sorted."""
    return sorted(_languages())


def info(code: str) -> Language:
    """Facts about one language (name, ISO 639-1, script)."""
    return _languages()[resolve(code)]


def _with_script(code: str, script: str | None, region: str | None) -> str:
    """Pick the variant of ``code``'s language in the requested script or region."""
    base = code.split("_")[0]
    want = None
    if script:
        want = {"latin": "Latn", "cyrillic": "Cyrl"}.get(script.lower(), script.title())
    elif region and region.lower() in _HANT_REGIONS:
        want = "Hant"
    if want and f"{base}_{want}" in _languages():
        return f"{base}_{want}"
    return code


def _lookup(text: str) -> str | None:
    key = text.strip().lower()
    idx = _index()
    if key in idx:
        return idx[key]
    m = re.fullmatch(r"([a-z]{2,3})(?:[-_]([a-z]{4}))?(?:[-_]([a-z]{2}|\d{3}))?(?:@(\w+))?", key)
    if not m:
        return None
    base, script, region, variant = m.groups()
    code = idx.get(base)
    if code is None:
        return None
    return _with_script(code, script or variant, region)


def resolve(code: str) -> str:
    """Canonical FLORES-style code for ``code``; raises LanguageError with a suggestion."""
    found = _lookup(str(code))
    if found:
        return found
    keys = list(_index())
    close = difflib.get_close_matches(str(code).lower(), keys, n=1, cutoff=0.6)
    hint = f" Did you mean {_index()[close[0]]} ({close[0]})?" if close else ""
    raise LanguageError(
        f"unknown language {code!r}.{hint} Use a FLORES-200 code such as deu_Latn, an ISO code "
        "such as de, or an English name; `babelscope ls languages` lists them."
    )


def resolve_many(spec, available=None) -> list[str]:
    """Resolve ``"a,b c"``, a list, or ``"all"`` (= every available language) to codes.

    With ``available``, every code must be in it; the error lists what is available.
    """
    avail = list(available) if available is not None else None
    if spec is None or spec == "all" or spec == ["all"]:
        return sorted(avail) if avail is not None else all_codes()
    parts = spec if isinstance(spec, (list, tuple)) else re.split(r"[,\s]+", str(spec))
    out: list[str] = []
    for part in (p for p in parts if p):
        code = resolve(part)
        if avail is not None and code not in avail:
            close = difflib.get_close_matches(code, avail, n=1)
            hint = f" Did you mean {close[0]}?" if close else ""
            raise LanguageError(
                f"language {code} is not available here.{hint} Available: {', '.join(sorted(avail))}."
            )
        if code not in out:
            out.append(code)
    if not out:
        raise LanguageError("no language given; pass codes such as eng_Latn,fra_Latn or `all`.")
    return out


_FLORES_SHAPE = re.compile(r"[a-z]{3}_[A-Z][a-z]{3}")


def split_task_name(task_name: str) -> tuple[str | None, str]:
    """(FLORES-200 code, family) of an lm-eval subtask name; the family is the name with its language
    written ``*``. The language is a FLORES-shaped code (``belebele_deu_Latn``; None when this table
    lacks it, e.g. belebele's hin_Latn), else the last word after the first that is an ISO code or
    English name (``xnli_de``, ``global_mmlu_full_de_anatomy``, ``include_base_44_albanian_stem``)."""
    parts = task_name.split("_")
    for i in range(len(parts) - 1):
        code = f"{parts[i]}_{parts[i + 1]}"
        if _FLORES_SHAPE.fullmatch(code):
            return (code if code in _languages() else None), "_".join([*parts[:i], "*", *parts[i + 2 :]])
    for i in range(len(parts) - 1, 0, -1):
        code = _lookup(parts[i]) if len(parts[i]) >= 2 and not parts[i].isdigit() else None
        if code:
            return code, "_".join([*parts[:i], "*", *parts[i + 1 :]])
    return None, task_name
