"""The customers of Voltstore: segments, paths and identifiers, one array per attribute."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from cjm_analytics.synthetic import plan

FIRST_NAMES = ("anna", "ben", "clara", "david", "emma", "felix", "greta", "hannah", "jonas",
               "lena", "lukas", "marie", "max", "mia", "noah", "paul", "sofia", "tim")  # fmt: skip
LAST_NAMES = ("bauer", "becker", "fischer", "hoffmann", "koch", "meyer", "mueller", "richter",
              "schmidt", "schneider", "schulz", "wagner", "weber", "wolf")  # fmt: skip
EMAIL_DOMAINS = ("example.com", "example.org", "example.net", "mail.example")
#: browsers (devices) a customer owns: 1, 2 or 3 (docs/adr/0011-synthetic-browsers-and-cookies.md)
BROWSER_SHARES = (0.62, 0.28, 0.10)


@dataclass
class Population:
    """One entry per customer (index = customer number)."""

    size: int
    device: np.ndarray  # index into plan.DEVICES
    region: np.ndarray  # index into plan.REGIONS
    acquisition: np.ndarray  # index into plan.ACQUISITION
    is_returning: np.ndarray
    is_phone_path: np.ndarray
    is_sales_led: np.ndarray
    is_office: np.ndarray
    browser_count: np.ndarray  # browsers (devices) the customer browses on; a cookie each
    skips_awareness: np.ndarray
    ids: pl.DataFrame  # customer_id, user_id, contact_id, email, phone, other_phone

    def segment_value(self, dimension: str) -> tuple[np.ndarray, tuple[str, ...]]:
        """(codes, names) of one segment dimension."""
        if dimension == "device":
            return self.device, plan.DEVICES
        if dimension == "region":
            return self.region, plan.REGIONS
        if dimension == "acquisition":
            return self.acquisition, tuple(plan.ACQUISITION)
        if dimension == "customer_type":
            return self.is_returning.astype(np.int64), plan.CUSTOMER_TYPES
        raise KeyError(dimension)


def draw_population(rng: np.random.Generator, size: int) -> Population:
    """Draw segments, paths and identifier values for `size` customers."""
    device = rng.choice(len(plan.DEVICES), size, p=plan.DEVICE_SHARES)
    region = rng.choice(len(plan.REGIONS), size, p=plan.REGION_SHARES)
    acquisition = rng.choice(len(plan.ACQUISITION), size, p=plan.ACQUISITION_SHARES)
    in_region = region == plan.REGIONS.index(plan.PHONE_PATH_REGION)
    phone_share = np.where(
        in_region, plan.PHONE_PATH_SHARE_IN_REGION, plan.PHONE_PATH_SHARE_ELSEWHERE
    )
    browser_count = rng.choice(np.arange(1, len(BROWSER_SHARES) + 1), size, p=BROWSER_SHARES)
    return Population(
        size=size,
        device=device,
        region=region,
        acquisition=acquisition,
        is_returning=rng.random(size) < plan.RETURNING_SHARE,
        is_phone_path=rng.random(size) < phone_share,
        is_sales_led=rng.random(size) < plan.SALES_LED_SHARE,
        is_office=rng.random(size) < plan.OFFICE_SHARE,
        browser_count=browser_count,
        skips_awareness=rng.random(size) < 0.2,
        ids=_identifier_values(rng, size),
    )


def _padded(prefix: str, numbers: np.ndarray, width: int) -> pl.Expr:
    return pl.lit(prefix) + pl.lit(pl.Series(numbers)).cast(pl.String).str.zfill(width)


def _identifier_values(rng: np.random.Generator, size: int) -> pl.DataFrame:
    """Raw identifier strings per customer; numbers are permuted so ids do not leak order."""
    first = pl.Series(FIRST_NAMES).gather(rng.integers(0, len(FIRST_NAMES), size))
    last = pl.Series(LAST_NAMES).gather(rng.integers(0, len(LAST_NAMES), size))
    domain = pl.Series(EMAIL_DOMAINS).gather(rng.integers(0, len(EMAIL_DOMAINS), size))
    mobile = pl.Series(["151", "160", "170", "176"]).gather(rng.integers(0, 4, size))
    phone_number = pl.Series(rng.permutation(size) + 1_000_000).cast(pl.String)
    other_number = pl.Series(rng.permutation(size) + 1_000_000).cast(pl.String)
    frame = pl.DataFrame({"first": first, "last": last, "domain": domain, "mobile": mobile})
    return frame.select(
        customer_id=_padded("VC", np.arange(1, size + 1), 7),
        user_id=_padded("u", rng.permutation(size) + 1, 8),
        contact_id=_padded("CRM-", rng.permutation(size) + 1, 8),
        email=pl.col("first")
        + "."
        + pl.col("last")
        + "."
        + pl.lit(pl.Series(rng.permutation(size) + 1)).cast(pl.String)
        + "@"
        + pl.col("domain"),
        phone=pl.lit("+49 ") + pl.col("mobile") + " " + pl.lit(phone_number),
        other_phone=pl.lit("+49 15")
        + pl.lit(pl.Series(rng.integers(2, 10, size))).cast(pl.String)
        + " "
        + pl.lit(other_number),
    )


def cookie_values(rng: np.random.Generator, cookies: int) -> pl.Series:
    """Raw anonymous_id per global cookie number (a permutation, so ids do not leak order)."""
    numbers = pl.Series(rng.permutation(cookies) + 1).cast(pl.String).str.zfill(10)
    return ("anon-" + numbers).alias("anonymous_id")
