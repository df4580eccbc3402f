"""Money as Stripe counts it: how many decimals a currency's minor unit has, an amount in minor
units as a number, and an amount as a person reads it.

The number of decimals is ISO 4217's (the `iso4217` package, which follows the published list),
except where Stripe documents otherwise (https://docs.stripe.com/currencies):

- zero-decimal currencies: the amount is the whole amount (`jpy` 5000 is ¥5,000). Stripe's list
  is ISO's zero-exponent currencies it supports, plus MGA (ISO: two decimals);
- three-decimal currencies (BHD, JOD, KWD, OMR, TND; ISO agrees): `kwd` 92000 is 92.000 KWD.
  Stripe requires their amounts to end in 0 (rounded to the nearest ten minor units) for its
  payment partners, so a charged amount never has more than two significant decimals;
- special cases: ISK is zero-decimal in ISO 4217, but Stripe keeps it two-decimal in its API
  for backwards compatibility (500 is 5 ISK, always a multiple of 100). HUF and TWD are
  two-decimal in the API (ISO agrees) and whole units only for payouts; UGX is zero-decimal
  (ISO agrees). None of these payout rules changes how an amount is read.
"""

from __future__ import annotations

from decimal import Decimal

from iso4217 import Currency

# Where Stripe's minor unit differs from ISO 4217's (https://docs.stripe.com/currencies).
STRIPE_EXPONENTS = {"MGA": 0, "ISK": 2}
DEFAULT_EXPONENT = 2  # Stripe: "unless noted otherwise, currencies are two-decimal"
SYMBOLS = {"GBP": "£", "EUR": "€", "USD": "$"}  # shown before the amount; others after it


def known_currency(code: str) -> str:
    """`code` if ISO 4217 lists it (any case; https://www.iso.org/iso-4217-currency-codes.html,
    as the `iso4217` package publishes it). Raises ValueError naming the code otherwise."""
    try:
        Currency(code.strip().upper())
    except ValueError:
        raise ValueError(f"{code!r} is not an ISO 4217 currency code") from None
    return code


def exponent(currency: str | None) -> int:
    """Decimals in `currency`'s minor unit as Stripe counts them (0, 2 or 3 for the currencies
    Stripe supports); a code ISO 4217 does not know, or that has no minor unit, counts as
    two-decimal like Stripe's default."""
    code = (currency or "").strip().upper()
    if code in STRIPE_EXPONENTS:
        return STRIPE_EXPONENTS[code]
    try:
        found = Currency(code).exponent
    except ValueError:
        return DEFAULT_EXPONENT
    return DEFAULT_EXPONENT if found is None else found


def from_minor(minor: int, currency: str | None) -> Decimal:
    """An amount in minor units (Stripe's `amount`, `amount_paid`, ...) as an exact decimal in
    the currency's major unit: `from_minor(92000, "kwd")` is Decimal("92.000")."""
    return Decimal(minor).scaleb(-exponent(currency))


def amount(minor: int, currency: str | None) -> float:
    """The same as a JSON number, the way records carry money (`92.0`, `5000.0`, `99.5`)."""
    return float(from_minor(minor, currency))


def format_money(value: float | Decimal | None, currency: str | None) -> str:
    """An amount in major units as a person reads it, with the currency's own decimals:
    "£99.00", "5,000 JPY", "92.000 KWD"; "an unknown amount" for None."""
    if value is None:
        return "an unknown amount"
    code = (currency or "").strip().upper()
    places = exponent(code)
    exact = Decimal(str(value)) if isinstance(value, float) else value
    shown = f"{exact.quantize(Decimal(1).scaleb(-places)):,.{places}f}"
    if code in SYMBOLS:
        return f"{SYMBOLS[code]}{shown}"
    return f"{shown} {code}".strip()
