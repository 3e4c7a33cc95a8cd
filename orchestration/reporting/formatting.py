"""Number, money, percentage and month formatting shared by the templates and the takeaways.

Money stays a Decimal until it is shown (rounded half-up to 2 decimals, as the marts store it);
ratios are floats. None is shown as 'n/a', never as 0.
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹", "CAD": "CA$", "AUD": "A$"}
NA = "n/a"
CENT = Decimal("0.01")


def currency_symbol(currency: str) -> str:
    code = (currency or "USD").upper()
    return CURRENCY_SYMBOLS.get(code, code + " ")


def to_decimal(value: Any) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return value
    return Decimal(str(value))


def money(value: Any, symbol: str = "$") -> str:
    """12345.6 -> '$12,345.60'; negative -> '-$12.00'."""
    amount = to_decimal(value)
    if amount is None:
        return NA
    amount = amount.quantize(CENT, rounding=ROUND_HALF_UP)
    sign = "-" if amount < 0 else ""
    return f"{sign}{symbol}{abs(amount):,.2f}"


def money_short(value: Any, symbol: str = "$") -> str:
    """A compact amount for prose: $1.2M, $34.5K, $980.00."""
    amount = to_decimal(value)
    if amount is None:
        return NA
    number = float(amount)
    sign = "-" if number < 0 else ""
    number = abs(number)
    for limit, divisor, suffix in ((1e9, 1e9, "B"), (1e6, 1e6, "M"), (1e4, 1e3, "K")):
        if number >= limit:
            return f"{sign}{symbol}{number / divisor:,.1f}{suffix}"
    return money(value, symbol)


METHOD_NAMES = {"paypal": "PayPal", "apple_pay": "Apple Pay", "google_pay": "Google Pay", "cod": "Cash on delivery",
                "bnpl": "Buy now, pay later", "upi": "UPI", "ideal": "iDEAL", "sepa": "SEPA"}


def method_label(method: str | None) -> str:
    """Payment methods are lower snake case in the marts: 'bank_transfer' -> 'Bank transfer'."""
    if not method:
        return "Unknown"
    key = method.strip().lower()
    if key in METHOD_NAMES:
        return METHOD_NAMES[key]
    text = key.replace("_", " ")
    return text[:1].upper() + text[1:]


def plural(count: Any, word: str, many: str | None = None) -> str:
    """plural(1, 'cohort') -> '1 cohort'; plural(1200, 'day') -> '1,200 days'."""
    return f"{integer(count)} {word if count == 1 else (many or word + 's')}"


def integer(value: Any) -> str:
    if value is None:
        return NA
    return f"{int(value):,}"


def number(value: Any, digits: int = 1) -> str:
    if value is None:
        return NA
    return f"{float(value):,.{digits}f}"


def pct(ratio: float | None, digits: int = 1) -> str:
    """0.1234 -> '12.3%'."""
    if ratio is None:
        return NA
    return f"{float(ratio) * 100:.{digits}f}%"


def change(ratio: float | None, digits: int = 1) -> str:
    """A relative change with its sign: +12.4%, −3.0% (typographic minus), 0.0%."""
    if ratio is None:
        return NA
    value = float(ratio) * 100
    if round(value, digits) == 0:
        return f"{0:.{digits}f}%"
    return f"+{value:.{digits}f}%" if value > 0 else f"\u2212{abs(value):.{digits}f}%"


def direction(ratio: float | None, up: str = "up", down: str = "down", flat: str = "flat") -> str:
    if ratio is None:
        return NA
    if abs(float(ratio)) < 0.0005:
        return flat
    return up if ratio > 0 else down


def pct_change(current: Any, previous: Any) -> float | None:
    """(current - previous) / previous, None when either is missing or previous is 0."""
    if current is None or previous is None:
        return None
    prev = to_decimal(previous)
    if prev == 0:
        return None
    return float((to_decimal(current) - prev) / prev)


def month_label(value: date | str) -> str:
    """date(2024, 3, 1) or '2024-03' -> 'Mar 2024'."""
    if isinstance(value, str):
        value = parse_month(value)
    return value.strftime("%b %Y")


def parse_month(month: str) -> date:
    year, mon = month.split("-")[:2]
    return date(int(year), int(mon), 1)


def add_months(day: date, months: int) -> date:
    index = day.year * 12 + (day.month - 1) + months
    return date(index // 12, index % 12 + 1, 1)


def month_key(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"
