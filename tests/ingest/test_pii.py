"""Pseudonymization: the SQL and Python rules agree, so config values hash like lake values."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cjm_analytics import pii, warehouse

SALT = "test-salt-not-a-secret-0123456789"
PHONES = st.one_of(
    st.from_regex(r"\A(\+|00|0)?[1-9][0-9 ()/.-]{4,16}\Z"),
    st.text(alphabet="+0123456789 -()abc", max_size=20),
)
EMAILS = st.one_of(st.emails(), st.text(alphabet="aB@. _x", max_size=12))


def sql_hashes(kind: str, values: list[str], country_code: str | None) -> list[str | None]:
    normalized = pii.email_normalized_sql("v") if kind == "email" else pii.phone_normalized_sql("v")
    params = {"values": values, "salt": SALT, "country_code": country_code}
    if kind == "email":
        params.pop("country_code")
    with warehouse.connection() as con:
        sql = f"SELECT {pii.hash_sql(kind, normalized)} FROM (SELECT unnest($values) AS v, generate_subscripts($values, 1) AS i) ORDER BY i"
        return [row[0] for row in con.execute(sql, params).fetchall()]


@settings(max_examples=20, deadline=None)
@given(st.lists(PHONES, min_size=1, max_size=8), st.sampled_from([None, "49"]))
def test_phone_rules_agree_in_sql_and_python(values, country_code):
    expected = [pii.pseudonymize("phone", v, SALT, country_code) for v in values]
    assert sql_hashes("phone", values, country_code) == expected


@settings(max_examples=20, deadline=None)
@given(st.lists(EMAILS, min_size=1, max_size=8))
def test_email_rules_agree_in_sql_and_python(values):
    assert sql_hashes("email", values, None) == [pii.pseudonymize("email", v, SALT) for v in values]


def test_phone_spellings_of_one_number_hash_alike():
    spellings = ["+49 30 1234 5000", "0049 (30) 1234-5000", "+49-30-12345000"]
    assert {pii.normalize_phone(s) for s in spellings} == {"493012345000"}
    assert pii.normalize_phone("030 12345000", "49") == "493012345000"
    assert pii.normalize_phone("030 12345000") is None  # national, no default country code
    assert pii.normalize_email("  Ann@Example.COM ") == "ann@example.com"


def test_redact_masks_emails_and_phones_but_keeps_timestamps():
    line = "1,2024-01-01 10:00:00,ann@example.com,+49 30 1234567,0171 2345678,k1"
    assert pii.redact(line) == "1,2024-01-01 10:00:00,<email>,<phone>,<phone>,k1"
