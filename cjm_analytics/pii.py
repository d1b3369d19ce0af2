"""Pseudonymization of personal data: emails and phone numbers become salted SHA-256 hashes.

The same rules exist twice, in Python (for config values such as shared switchboard numbers,
and for scoring against a truth file) and as DuckDB SQL (for ingest, vectorized). A property
test keeps the two identical. See docs/adr/0007-pseudonymization.md.

- email: trimmed and lower-cased; must look like `local@domain`.
- phone: digits only, with the country code: `+49 30 1234-5000`, `0049 30 12345000` and
  (with `pii.default_country_code: "49"`) `030 12345000` all become `493012345000`;
  8 to 15 digits (E.164).
- hash: `sha256(salt || ':' || kind || ':' || normalized)`, hex. The salt comes from the
  environment (`JourneyConfig.pii_salt()`), never from the repo.
"""

from __future__ import annotations

import hashlib
import re

EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
PHONE_MIN_DIGITS = 8
PHONE_MAX_DIGITS = 15
_EMAIL = re.compile(EMAIL_PATTERN)
_NON_DIGIT = re.compile(r"[^0-9]")
_EMAIL_IN_TEXT = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+")
_PHONE_IN_TEXT = re.compile(r"[+(]?\d[\d ()/.-]{5,}\d")
_DATE_LIKE = re.compile(r"^\d{4}-\d{2}-\d{2}|^\d{1,2}[./]\d{1,2}[./]\d{2,4}")


def normalize_email(value: str | None) -> str | None:
    """Trimmed, lower-cased email, or None when empty or not an email address."""
    if value is None or not value.strip():
        return None
    email = value.strip().lower()
    return email if _EMAIL.match(email) else None


def normalize_phone(value: str | None, default_country_code: str | None = None) -> str | None:
    """Digits with country code (E.164 without '+'), or None when not a phone number."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    digits = _NON_DIGIT.sub("", text)
    if text.startswith("+"):
        full = digits
    elif digits.startswith("00"):
        full = digits[2:]
    elif digits.startswith("0"):
        if not default_country_code:
            return None
        full = default_country_code + digits[1:]
    else:
        full = digits
    return full if PHONE_MIN_DIGITS <= len(full) <= PHONE_MAX_DIGITS else None


def hash_identifier(kind: str, normalized: str, salt: str) -> str:
    """Salted SHA-256 (hex) of an already normalized identifier value."""
    return hashlib.sha256(f"{salt}:{kind}:{normalized}".encode()).hexdigest()


def pseudonymize(
    kind: str, value: str | None, salt: str, default_country_code: str | None = None
) -> str | None:
    """The value as stored in the lake: hashed for email/phone, trimmed for other kinds."""
    if kind == "email":
        normalized = normalize_email(value)
    elif kind == "phone":
        normalized = normalize_phone(value, default_country_code)
    else:
        return value.strip() or None if value is not None else None
    return None if normalized is None else hash_identifier(kind, normalized, salt)


# --- the same rules as DuckDB SQL fragments (column names are generated, never from config) ---


def email_normalized_sql(column: str) -> str:
    """SQL: normalized email or NULL. `column` is a generated name such as `c3`."""
    value = f"lower(trim({column}))"
    return f"CASE WHEN regexp_matches({value}, '{EMAIL_PATTERN}') THEN {value} END"


def phone_normalized_sql(column: str) -> str:
    """SQL: normalized phone digits or NULL; needs the named parameter `$country_code`."""
    text = f"trim({column})"
    digits = f"regexp_replace({text}, '[^0-9]', '', 'g')"
    full = (
        f"CASE WHEN starts_with({text}, '+') THEN {digits} "
        f"WHEN starts_with({digits}, '00') THEN substr({digits}, 3) "
        f"WHEN starts_with({digits}, '0') THEN $country_code || substr({digits}, 2) "
        f"ELSE {digits} END"
    )
    return (
        f"CASE WHEN length({full}) BETWEEN {PHONE_MIN_DIGITS} AND {PHONE_MAX_DIGITS} "
        f"THEN {full} END"
    )


def hash_sql(kind: str, normalized_sql: str) -> str:
    """SQL: salted hash of a normalized value; needs the named parameter `$salt`."""
    if kind not in ("email", "phone"):
        raise ValueError(f"only email and phone are hashed, not {kind!r}")
    return f"sha256($salt || ':{kind}:' || ({normalized_sql}))"


def redact(text: str | None, known_values: list[str] | tuple[str, ...] = ()) -> str | None:
    """A raw line safe to keep in the rejects store: emails and phone numbers masked."""
    if text is None:
        return None
    for value in known_values:
        if value and value.strip():
            text = text.replace(value, "<pii>")
    text = _EMAIL_IN_TEXT.sub("<email>", text)
    return _PHONE_IN_TEXT.sub(_mask_phone, text)


def _mask_phone(match: re.Match[str]) -> str:
    found = match.group(0)
    digit_count = sum(ch.isdigit() for ch in found)
    if digit_count < PHONE_MIN_DIGITS or _DATE_LIKE.match(found.lstrip("(")):
        return found
    return "<phone>"
