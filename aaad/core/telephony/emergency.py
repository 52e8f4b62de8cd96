"""Emergency numbers: which dialled numbers pass without rate, credit or account checks.

A call to an emergency number is accepted whatever the caller's account says
(disabled, suspended, over its limits, out of credit): that is why the match
must be exact. A number is an emergency number when one of its readings
equals an entry of the list:

* the digits **as dialled**, when they carry no international marker
  (``112``, ``000``, ``999``): a short code dialled at home;
* the **national form** of an international number, when ``+`` or the
  international prefix (``00``) is followed by the operator's own country
  code: ``+44 999`` and ``0044999`` read as ``999`` with country code 44.

An international number to another country (``+911123456789``: India) has
no national form here and is never an emergency number, whatever digits it
starts with. Entries may end in or contain ``X`` (any one digit) for ranges
of short codes of a fixed length: ``116XXX`` matches ``116000`` and
``116117`` but not ``1161`` or ``1161170``. Nothing matches by prefix.
"""

from __future__ import annotations

from collections.abc import Sequence

from aaad.core.telephony.rate_table import NumberPlan

__all__ = ["national_forms", "emergency_match", "valid_emergency_entry"]

_SEPARATORS = " -.()/"
_DIGITS = "0123456789*#"


def national_forms(dialled: str, numbers: NumberPlan) -> tuple[str, ...]:
    """The readings of ``dialled`` that may be compared with emergency numbers.

    ``()`` when the number has none: empty, not digits, or international to
    another country (or to any country when no ``country_code`` is set).
    """
    s = dialled.strip()
    for scheme in ("sips:", "sip:", "tel:"):
        if s[:len(scheme)].lower() == scheme:
            s = s[len(scheme):]
            break
    s = s.split("@", 1)[0].split(";", 1)[0]
    s = "".join(ch for ch in s if ch not in _SEPARATORS)
    forms: list[str] = []
    international: str | None = None
    if s.startswith("+"):
        international = s[1:]
    else:
        if s and all(ch in _DIGITS for ch in s):
            forms.append(s)                         # as dialled: 112, 000, 999
        if numbers.international_prefix and s.startswith(numbers.international_prefix):
            international = s[len(numbers.international_prefix):]
    if international is not None and numbers.country_code \
            and international.startswith(numbers.country_code):
        national = international[len(numbers.country_code):]
        if national and all(ch in _DIGITS for ch in national):
            forms.append(national)
    return tuple(forms)


def emergency_match(dialled: str, entries: Sequence[str], numbers: NumberPlan) -> str | None:
    """The entry of ``entries`` that ``dialled`` is, exactly (see the module doc); None."""
    for form in national_forms(dialled, numbers):
        for entry in entries:
            if len(entry) == len(form) and all(_digit_matches(e, f)
                                               for e, f in zip(entry, form, strict=True)):
                return entry
    return None


def _digit_matches(entry_char: str, char: str) -> bool:
    return (entry_char in "Xx" and char.isdigit()) or entry_char == char


def valid_emergency_entry(entry: object) -> bool:
    """An entry of the list: digits, ``*``, ``#`` and ``X`` (any digit), not all ``X``."""
    return (isinstance(entry, str) and 0 < len(entry) <= 32
            and all(ch in _DIGITS or ch in "Xx" for ch in entry)
            and any(ch not in "Xx" for ch in entry))
