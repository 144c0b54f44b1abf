"""Which language a customer reads: Chinese or English, from Accept-Language."""

from __future__ import annotations

SUPPORTED = ("en", "zh")


def pick_language(header: str | None, default: str = "en") -> str:
    """The first supported language in ``Accept-Language``, by q-value then order."""
    if not header:
        return default
    best: tuple[float, int, str] | None = None
    for pos, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        for p in params.split(";"):
            key, _, value = p.strip().partition("=")
            if key == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        lang = tag.strip().lower().split("-")[0]
        if lang in SUPPORTED and q > 0 and (best is None or (-q, pos) < (-best[0], best[1])):
            best = (q, pos, lang)
    return best[2] if best else default


def text(lang: str, en: str, zh: str) -> str:
    return zh if lang == "zh" else en
