"""Korean text helpers for templates: particles (josa) chosen by the final sound, and KRW amounts.

Josa rule: a particle pair such as 을/를 has a form used after a final consonant (batchim: 을, 은, 이,
과, 으로) and one used after a vowel (를, 는, 가, 와, 로). 으로/로 is special: a final ㄹ takes 로.
The final sound of a word is taken from its last readable character:

- a Hangul syllable: its jongseong (final consonant), if any;
- a digit: the Korean reading of the number's last part (1 일, 2 이, 3 삼, 6 육, 7 칠, 8 팔; trailing
  zeros read as 십/백/천/만/억, and 0 alone as 영);
- Latin letters: an all-caps run or a single letter is read letter by letter (LG -> 엘지, SK -> 에스케이,
  M -> 엠); a word by common loanword pronunciation: ending in m, n, ng -> consonant, l -> ㄹ,
  ck -> ㄱ, a silent e after m/n/l counts as
  that letter (phone 폰, game 게임, apple 애플), anything else (e, r, t -> 트, d -> 드, k -> 크 ...) -> vowel;
- trailing punctuation, quotes, spaces and a closing parenthesised part ("샴푸(500ml)") are skipped.

When no sound can be found the combined form "을(를)" is produced.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from segmint.errors import InvalidInput

# Final-sound classes: None = vowel, "r" = ㄹ, "c" = any other consonant.
_VOWEL, _RIEUL, _CONS = None, "r", "c"

_PAIRS: dict[frozenset[str], tuple[str, str]] = {
    frozenset(p): p
    for p in [("은", "는"), ("이", "가"), ("을", "를"), ("과", "와"), ("으로", "로"), ("이랑", "랑"), ("아", "야"),
              ("이나", "나"), ("이에요", "예요"), ("으로서", "로서"), ("으로써", "로써")]
}

_DIGIT = {"0": _CONS, "1": _RIEUL, "2": _VOWEL, "3": _CONS, "4": _VOWEL, "5": _VOWEL, "6": _CONS,
          "7": _RIEUL, "8": _RIEUL, "9": _VOWEL}
# Letter names: a 에이, b 비, c 씨, d 디, e 이, f 에프, g 지, h 에이치, i 아이, j 제이, k 케이, l 엘,
# m 엠, n 엔, o 오, p 피, q 큐, r 알, s 에스, t 티, u 유, v 브이, w 더블유, x 엑스, y 와이, z 지.
_LETTER = {c: _VOWEL for c in "abcdefghijkopqstuvwxyz"} | {"l": _RIEUL, "r": _RIEUL, "m": _CONS, "n": _CONS}
_TRAILING_SKIP = re.compile(r"(\s*\([^()]*\)|[\s\"'’”」』\]\.!?,~…])+$")


def final_sound(word: str) -> str | bool | None:
    """The final sound class of a word: None (vowel), "r" (ㄹ), "c" (other consonant), False if unknown."""
    text = _TRAILING_SKIP.sub("", str(word))
    if not text:
        return False
    last = text[-1]
    code = ord(last)
    if 0xAC00 <= code <= 0xD7A3:
        jong = (code - 0xAC00) % 28
        return _VOWEL if jong == 0 else (_RIEUL if jong == 8 else _CONS)
    if last.isdigit() and last.isascii():
        digits = re.search(r"[0-9]+$", text).group(0)  # type: ignore[union-attr]
        stripped = digits.rstrip("0")
        if not stripped:
            return _CONS  # 영
        if len(stripped) < len(digits):
            return _CONS  # trailing zeros read 십, 백, 천, 만, 억: all end in a consonant
        return _DIGIT[last]
    if last.isascii() and last.isalpha():
        run = re.search(r"[A-Za-z]+$", text).group(0)  # type: ignore[union-attr]
        if len(run) == 1 or run.isupper():
            return _LETTER[last.lower()]
        low = run.lower()
        if low.endswith(("m", "n", "ng", "ck", "me", "ne")):
            return _CONS
        if low.endswith(("l", "le")):
            return _RIEUL
        return _VOWEL
    return False


def josa(word: object, pair: str) -> str:
    """The word followed by the right particle of `pair` ("을/를", "은/는", "으로/로" ...)."""
    forms = tuple(part.strip() for part in str(pair).split("/"))
    key = frozenset(forms)
    if len(forms) != 2 or key not in _PAIRS:
        known = ", ".join("/".join(p) for p in _PAIRS.values())
        raise InvalidInput(f"unknown particle pair {pair!r} (known: {known})", where="josa")
    after_consonant, after_vowel = _PAIRS[key]
    text = "" if word is None else str(word)
    sound = final_sound(text)
    if sound is False:
        return f"{text}{after_consonant}({after_vowel})"
    if sound is _VOWEL:
        return text + after_vowel
    if sound == _RIEUL and after_consonant.startswith("으로"):
        return text + after_vowel
    return text + after_consonant


def krw(amount: object) -> str:
    """A KRW amount with thousands separators and 원, rounded half-up to whole won: 15000 -> "15,000원"."""
    if isinstance(amount, bool):
        raise InvalidInput(f"not an amount: {amount!r}", where="krw")
    try:
        value = Decimal(str(amount).replace(",", "").strip())
    except InvalidOperation as exc:
        raise InvalidInput(f"not an amount: {amount!r}", where="krw") from exc
    if not value.is_finite():
        raise InvalidInput(f"not an amount: {amount!r}", where="krw")
    won = int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    return f"{won:,}원"
