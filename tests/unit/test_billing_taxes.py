"""Tests of aaad/core/billing/taxes.py: tax lines per billing line, exemptions, parsing."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aaad.core.billing.taxes import (
    Tax,
    TaxError,
    TaxLine,
    parse_tax,
    parse_taxes,
    tax_lines,
    tax_ref,
)

VAT20 = Tax("vat", percent=Fraction(20))
VAT196 = Tax("tva", percent=Fraction(98, 5))            # 19.6 %
MWST77 = Tax("mwst", percent=Fraction(77, 10))          # 7.7 %
LEVY = Tax("levy", fixed=1_000, kinds=frozenset({"fee"}))   # 0.10 per fee line
CALLS = Tax("telecom", percent=Fraction(5), kinds=frozenset({"call"}))


@pytest.mark.parametrize(("tax", "amount", "expected"), [
    (VAT20, 299_000, 59_800),      # 20 % of 29.90 = 5.98
    (VAT20, -299_000, -59_800),    # the credit's tax is the negative
    (VAT20, 0, 0),
    (VAT20, 2, 0),                 # 0.4
    (VAT20, 3, 1),                 # 0.6
    (VAT196, 299_000, 58_604),     # 5.8604 exactly
    (VAT196, 1, 0),                # 0.196
    (VAT196, -1, 0),
    (VAT196, 3, 1),                # 0.588
    (VAT196, -3, -1),
    (VAT196, 125, 25),             # 24.5: half away from zero
    (VAT196, -125, -25),
    (VAT196, 124, 24),             # 24.304
    (MWST77, 299_000, 23_023),
    (MWST77, 6_500, 501),          # 500.5
    (MWST77, -6_500, -501),
    (MWST77, 65, 5),               # 5.005
    (Tax("zero", percent=Fraction(0)), 299_000, 0),
    (Tax("all", percent=Fraction(100)), 299_001, 299_001),
    (LEVY, 299_000, 1_000),        # fixed: per line, with the line's sign
    (LEVY, 1, 1_000),
    (LEVY, -299_000, -1_000),
    (LEVY, 0, 0),
])
def test_one_tax(tax: Tax, amount: int, expected: int) -> None:
    kind = "fee"
    assert tax_lines(amount, kind, [tax]) == [TaxLine(tax=tax.name, base=amount, amount=expected)]


def test_each_tax_on_the_line_not_compounding() -> None:
    taxes = [VAT20, LEVY, CALLS, MWST77]
    assert tax_lines(299_000, "fee", taxes) == [
        TaxLine("vat", 299_000, 59_800),       # not 20 % of (line + levy)
        TaxLine("levy", 299_000, 1_000),
        TaxLine("mwst", 299_000, 23_023),
    ]
    assert tax_lines(12_345, "call", taxes) == [
        TaxLine("vat", 12_345, 2_469),
        TaxLine("telecom", 12_345, 617),       # 617.25
        TaxLine("mwst", 12_345, 951),          # 950.565
    ]


@pytest.mark.parametrize(("kind", "exempt", "names"), [
    ("fee", frozenset(), ["vat", "levy"]),
    ("fee", frozenset({"vat"}), ["levy"]),
    ("fee", frozenset({"vat", "levy"}), []),
    ("call", frozenset(), ["vat", "telecom"]),
    ("call", frozenset({"levy"}), ["vat", "telecom"]),     # exempt from a tax that did not apply
    ("overage", frozenset(), ["vat"]),
    ("overage", frozenset({"unknown"}), ["vat"]),
])
def test_kinds_and_exemptions(kind: str, exempt: frozenset[str], names: list[str]) -> None:
    lines = tax_lines(10_000, kind, [VAT20, LEVY, CALLS], exempt)
    assert [line.tax for line in lines] == names


def test_duplicate_names_refused() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        tax_lines(100, "fee", [VAT20, Tax("vat", fixed=1)])


def test_tax_ref() -> None:
    assert tax_ref("fee:17:home:1780272000", "vat") == "tax:fee:17:home:1780272000:vat"
    assert tax_ref("call:abc", "mwst") == "tax:call:abc:mwst"


@pytest.mark.parametrize("kwargs", [
    {},
    {"percent": Fraction(20), "fixed": 100},
    {"percent": Fraction(101)},
    {"percent": Fraction(-1)},
    {"fixed": -1},
])
def test_tax_value_refuses(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Tax("t", **kwargs)


# -- parsing -----------------------------------------------------------------------------

@pytest.mark.parametrize(("item", "expected"), [
    ({"name": "vat", "percent": "20"}, Tax("vat", percent=Fraction(20))),
    ({"name": "tva", "percent": "19.6"}, Tax("tva", percent=Fraction(98, 5))),
    ({"name": "mwst", "percent": "7.7"}, Tax("mwst", percent=Fraction(77, 10))),
    ({"name": "x", "percent": " 0.125 "}, Tax("x", percent=Fraction(1, 8))),
    ({"name": "vat", "percent": 20}, Tax("vat", percent=Fraction(20))),
    ({"name": "none", "percent": "0"}, Tax("none", percent=Fraction(0))),
    ({"name": "all", "percent": "100"}, Tax("all", percent=Fraction(100))),
    ({"name": "levy", "fixed": "0.10", "kinds": ["fee", "block"]},
     Tax("levy", fixed=1_000, kinds=frozenset({"fee", "block"}))),
    ({"name": "levy", "fixed": 1}, Tax("levy", fixed=10_000)),
    ({"name": "a.b-c_1", "fixed": "0.0001"}, Tax("a.b-c_1", fixed=1)),
])
def test_parse_tax(item: dict[str, Any], expected: Tax) -> None:
    assert parse_tax(item, "taxes[0]") == expected


@pytest.mark.parametrize(("item", "message"), [
    ({"name": "vat", "percent": "101"}, "taxes[1].percent: must be 0-100"),
    ({"name": "vat", "percent": "100.01"}, "taxes[1].percent: must be 0-100"),
    ({"name": "vat", "percent": -5}, "taxes[1].percent: must be 0-100"),
    ({"name": "vat", "percent": "-5"}, 'taxes[1].percent: expected a decimal such as "19.6"'),
    ({"name": "vat", "percent": "20%"}, 'taxes[1].percent: expected a decimal'),
    ({"name": "vat", "percent": "1e1"}, 'taxes[1].percent: expected a decimal'),
    ({"name": "vat", "percent": 19.6}, 'taxes[1].percent: expected a quoted decimal'),
    ({"name": "vat", "percent": True}, 'taxes[1].percent: expected a decimal'),
    ({"name": "vat", "fixed": "0.00001"}, "taxes[1].fixed: expected a decimal amount"),
    ({"name": "vat", "fixed": "-1"}, "taxes[1].fixed: expected a decimal amount"),
    ({"name": "vat", "fixed": 0.1}, "taxes[1].fixed: expected a quoted decimal amount"),
    ({"name": "vat"}, "taxes[1]: needs exactly one of percent and fixed"),
    ({"name": "vat", "percent": "1", "fixed": "1"}, "taxes[1]: needs exactly one"),
    ({"percent": "20"}, "taxes[1].name: is required"),
    ({"name": "", "percent": "20"}, "taxes[1].name: is required"),
    ({"name": "v:at", "percent": "20"}, "taxes[1].name: must be 1-32"),
    ({"name": "v at", "percent": "20"}, "taxes[1].name: must be 1-32"),
    ({"name": "x" * 33, "percent": "20"}, "taxes[1].name: must be 1-32"),
    ({"name": 5, "percent": "20"}, "taxes[1].name: must be 1-32"),
    ({"name": "vat", "percent": "20", "rate": 1}, "taxes[1].rate: unknown key"),
    ({"name": "vat", "percent": "20", "kinds": "fee"}, "taxes[1].kinds: must be a list"),
    ({"name": "vat", "percent": "20", "kinds": []}, "taxes[1].kinds: must name at least one"),
    ({"name": "vat", "percent": "20", "kinds": ["fee", 3]}, "taxes[1].kinds[1]: expected"),
    ({"name": "vat", "percent": "20", "kinds": ["Fee"]}, "taxes[1].kinds[0]: expected"),
])
def test_parse_tax_errors_name_the_key(item: dict[str, Any], message: str) -> None:
    with pytest.raises(TaxError) as e:
        parse_tax(item, "taxes[1]")
    assert str(e.value).startswith(message)
    assert isinstance(e.value, ValueError)
    assert str(e.value) == f"{e.value.path}: {e.value.message}"


def test_parse_tax_not_a_mapping() -> None:
    with pytest.raises(TaxError, match=r"^taxes\[0\]: must be a mapping"):
        parse_tax(["vat"], "taxes[0]")


def test_parse_taxes() -> None:
    assert parse_taxes(None) == ()
    assert parse_taxes([{"name": "vat", "percent": "20"},
                        {"name": "levy", "fixed": "0.10", "kinds": ["fee"]}]) == (VAT20, LEVY)
    with pytest.raises(TaxError, match=r"^taxes\[1\]\.name: duplicate tax name 'vat'"):
        parse_taxes([{"name": "vat", "percent": "20"}, {"name": "vat", "percent": "7"}])
    with pytest.raises(TaxError, match=r"^taxes: must be a list"):
        parse_taxes({"name": "vat"})


# -- properties --------------------------------------------------------------------------

percents = st.one_of(
    st.sampled_from([Fraction(20), Fraction(98, 5), Fraction(77, 10), Fraction(11, 2)]),
    st.fractions(min_value=0, max_value=100, max_denominator=10_000))
line_amounts = st.integers(-(10**10), 10**10)


@given(percents, st.lists(line_amounts, min_size=1, max_size=40))
def test_rounding_error_of_a_sum_is_bounded(percent: Fraction, amounts: list[int]) -> None:
    tax = Tax("t", percent=percent)
    rounded = sum(tax_lines(a, "fee", [tax])[0].amount for a in amounts)
    exact = sum(amounts) * percent / 100
    assert abs(rounded - exact) <= Fraction(len(amounts), 2)


@given(st.one_of(percents.map(lambda p: Tax("t", percent=p)),
                 st.integers(0, 10**6).map(lambda f: Tax("t", fixed=f))),
       line_amounts)
def test_a_line_and_its_reversal_cancel(tax: Tax, amount: int) -> None:
    [line] = tax_lines(amount, "fee", [tax])
    [back] = tax_lines(-amount, "fee", [tax])
    assert line.amount + back.amount == 0
    assert line.amount * amount >= 0                          # same sign as the line
    if tax.percent is not None:
        assert abs(line.amount - amount * tax.percent / 100) <= Fraction(1, 2)
