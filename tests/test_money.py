"""Stripe's minor units: ISO 4217 with the exceptions Stripe documents
(https://docs.stripe.com/currencies)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from app.money import amount, exponent, format_money, from_minor

# Stripe's documented lists, as its currencies page gives them.
STRIPE_ZERO_DECIMAL = [
    "BIF",
    "CLP",
    "DJF",
    "GNF",
    "JPY",
    "KMF",
    "KRW",
    "MGA",
    "PYG",
    "RWF",
    "UGX",
    "VND",
    "VUV",
    "XAF",
    "XOF",
    "XPF",
]
STRIPE_THREE_DECIMAL = ["BHD", "JOD", "KWD", "OMR", "TND"]


@pytest.mark.parametrize("code", STRIPE_ZERO_DECIMAL)
def test_stripes_zero_decimal_currencies_have_no_minor_unit(code: str) -> None:
    assert exponent(code) == 0
    assert exponent(code.lower()) == 0


@pytest.mark.parametrize("code", STRIPE_THREE_DECIMAL)
def test_stripes_three_decimal_currencies_count_thousandths(code: str) -> None:
    assert exponent(code.lower()) == 3


@pytest.mark.parametrize(
    ("code", "places"),
    [
        ("gbp", 2),
        ("eur", 2),
        ("usd", 2),
        ("isk", 2),  # zero-decimal in ISO 4217; two-decimal in Stripe's API (500 is 5 ISK)
        ("huf", 2),  # whole forints only for payouts; charges are two-decimal
        ("twd", 2),  # likewise
        ("ugx", 0),
        ("mga", 0),  # two-decimal in ISO 4217; zero-decimal at Stripe
        ("xyz", 2),  # unknown to ISO 4217: Stripe's default
        ("", 2),
        (None, 2),
    ],
)
def test_special_cases_and_the_default(code: str | None, places: int) -> None:
    assert exponent(code) == places


def test_amounts_are_read_in_the_currencys_own_minor_unit() -> None:
    assert from_minor(9900, "gbp") == Decimal("99.00")
    assert from_minor(5000, "jpy") == Decimal("5000")
    assert from_minor(92000, "kwd") == Decimal("92.000")
    assert from_minor(500, "isk") == Decimal("5.00")
    assert amount(92120, "kwd") == 92.12
    assert amount(45000, "gbp") == 450.0
    assert amount(5000, "jpy") == 5000.0


def test_amounts_are_shown_with_the_currencys_decimals() -> None:
    assert format_money(99.0, "gbp") == "£99.00"
    assert format_money(1234.5, "eur") == "€1,234.50"
    assert format_money(5000.0, "jpy") == "5,000 JPY"
    assert format_money(92.0, "kwd") == "92.000 KWD"
    assert format_money(Decimal("92.120"), "KWD") == "92.120 KWD"
    assert format_money(None, "gbp") == "an unknown amount"
