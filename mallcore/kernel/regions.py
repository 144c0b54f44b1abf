"""Place names of a delivery address's region code (GB/T 2260): ``440300`` -> 广东省 深圳市.

Addresses carry the region as its GB/T 2260 code (``Address.region``, e.g.
``310000`` for Shanghai, ``440300`` for Shenzhen). Pages show it as place
names, in the page's language: the province, and the prefecture-level city
(地级市, autonomous prefecture, league) when the code names one; a
county-level code (``440305``) reads as its city. Municipalities read as
themselves (``310000`` and ``310115`` -> 上海市 / Shanghai). A region that is
not a code we know is shown as it was given.

The names come from ``regions.tsv`` beside this module: provinces and
prefecture-level divisions of the Ministry of Civil Affairs' list of 2019-04
(the GB/T 2260 codes in force then), as transcribed in the cn/GB2260 data set
(``mca/201904.tsv``), with English names added (provinces' usual English
names; cities in pinyin without 市). No PyPI package keeps this list current
(``gb2260`` was last released in 2015), so the project ships the file.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

# Province-level cities: their code's city part names a district, never a city of its own.
MUNICIPALITIES = frozenset({"11", "12", "31", "50"})


@cache
def _names() -> dict[str, tuple[str, str]]:
    """code -> (zh, en), read once from ``regions.tsv``."""
    out: dict[str, tuple[str, str]] = {}
    for line in Path(__file__).with_name("regions.tsv").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            code, zh, en = line.split("\t")
            out[code] = (zh, en)
    return out


def region_name(region: str | None, lang: str = "zh") -> str:
    """``region`` as place names in ``lang`` (``zh``: 广东省 深圳市; ``en``: Shenzhen, Guangdong).

    Unknown codes and anything that is not a six-digit code come back as given.
    """
    code = (region or "").strip()
    if len(code) != 6 or not code.isdigit():
        return code
    names = _names()
    province = names.get(code[:2] + "0000")
    if province is None:
        return code
    if code[2:4] == "00" or code[:2] in MUNICIPALITIES:
        return province[0] if lang == "zh" else province[1]
    city = names.get(code[:4] + "00")
    if city is None:
        return code
    if lang == "zh":
        return f"{province[0]} {city[0]}"
    return f"{city[1]}, {province[1]}"
