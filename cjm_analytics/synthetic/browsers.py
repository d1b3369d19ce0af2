"""Browsers and cookies: which browser each web event happens on, and who is logged in there.

A cookie is one browser on one device (docs/adr/0011-synthetic-browsers-and-cookies.md):

- a customer owns `Population.browser_count` browsers; web events come in sittings (a gap
  of more than SITTING_GAP_HOURS starts a new one) and a sitting stays on one browser:
  the first on the main browser, later ones on the main browser with MAIN_BROWSER_SHARE,
  otherwise on any of the customer's browsers;
- once a customer has an account and has logged in (`Walk.login_at`), every browser they
  use afterwards logs in on its first visit (a `login` event just before it) and stays
  logged in: its later events carry the user id. A returning customer's main browser is
  logged in from the start (the session predates the window). With LOGIN_SKIP_SHARE a
  browser is used after sign-up without ever logging in (a quick look on a second device);
- anonymous browsing before sign-up on a browser that later logs in shares its cookie, so
  it is linked; browsers used only before sign-up, or only by a customer who never
  identifies, stay unlinked, as in any real shop;
- with CHURN_SHARE a browser's cookie is cleared once, at a moment drawn uniformly over the
  browser's events: later events carry a new cookie that never logs in again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from cjm_analytics.synthetic.events import PAGES, WEB_EVENTS, code
from cjm_analytics.synthetic.population import BROWSER_SHARES, cookie_values

if TYPE_CHECKING:
    from cjm_analytics.synthetic.journeys import Walk

MINUTE = 1 / 1440
#: a visit after a break this long may open on another device (a new sitting: work desk,
#: evening sofa); visits closer together continue on the device of the previous one
SITTING_GAP_HOURS = 4.0
MAIN_BROWSER_SHARE = 0.6  # a later visit opens on the customer's main browser
LOGIN_SKIP_SHARE = 0.1  # browsers used after sign-up that never log in
CHURN_SHARE = 0.03  # browsers whose cookie is cleared once in the window
LOGIN_LEAD_MINUTES = 0.5  # the login event comes this long before the visit's first event


def assign_browsers(w: Walk) -> None:
    """Give every web event a browser, a cookie number and a logged-in flag; add the login
    events of browsers first used after sign-up. Replaces the web log by one chunk with the
    extra columns `cookie` (global cookie number) and `signed_in`; sets `w.cookies` and
    `w.cookie_owner`."""
    table = w.log.table("web")
    if not table:
        w.cookies, w.cookie_owner = cookie_values(w.rng, 0), np.zeros(0, np.int64)
        return
    order = np.lexsort((table["event"], table["at"], table["customer"]))
    table = {name: values[order] for name, values in table.items()}
    browser = _session_browsers(w, table["customer"], table["at"])
    table, browser = _add_logins(w, table, browser)
    table["signed_in"] = _signed_in(w, table, browser)
    _churn(w, table, browser)


def _session_browsers(w: Walk, customer: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Browser (0 = main) per event, sorted by customer then time: one per sitting (visits
    less than SITTING_GAP_HOURS apart)."""
    n, rng = len(customer), w.rng
    first_of_customer = np.ones(n, bool)
    first_of_customer[1:] = customer[1:] != customer[:-1]
    new_session = first_of_customer.copy()
    new_session[1:] |= (at[1:] - at[:-1]) > SITTING_GAP_HOURS * 60 * MINUTE
    session_start = np.flatnonzero(new_session)
    owner = customer[session_start]
    other = rng.integers(0, 1 << 30, len(session_start)) % w.pop.browser_count[owner]
    chosen = np.where(rng.random(len(session_start)) < MAIN_BROWSER_SHARE, 0, other)
    chosen[first_of_customer[session_start]] = 0
    return chosen[np.cumsum(new_session) - 1]


def _first_after_login(
    w: Walk, customer: np.ndarray, at: np.ndarray, browser: np.ndarray
) -> np.ndarray:
    """Indices of each (customer, browser)'s first event at or after the customer's login."""
    after = np.flatnonzero(at >= w.login_at[customer])
    key = customer[after] * 8 + browser[after]
    _, first = np.unique(key, return_index=True)  # `after` is in time order per customer
    return after[first]


def _add_logins(
    w: Walk, table: dict[str, np.ndarray], browser: np.ndarray
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """A login event before each browser's first visit after sign-up (unless that visit is
    a login, the browser skips logging in, or it is a returning customer's main browser,
    logged in before the window); re-sorted by customer, time."""
    customer, at = table["customer"], table["at"]
    first = _first_after_login(w, customer, at, browser)
    skips = w.rng.random(len(first)) < LOGIN_SKIP_SHARE
    is_login = table["event"][first] == code(WEB_EVENTS, "login")
    kept_session = (browser[first] == 0) & (w.login_at[customer[first]] == w.start[customer[first]])
    needs = first[~is_login & ~kept_session & ~skips]
    size = len(needs)
    added = {
        "customer": customer[needs], "at": at[needs] - LOGIN_LEAD_MINUTES * MINUTE,
        "event": np.full(size, code(WEB_EVENTS, "login")), "stage": np.zeros(size, np.int64),
        "page": np.full(size, code(PAGES, "login")), "has_email": np.zeros(size, bool),
    }  # fmt: skip
    merged = {name: np.concatenate([table[name], added[name]]) for name in table}
    browser = np.concatenate([browser, browser[needs]])
    skipped = np.zeros(len(merged["at"]), bool)
    skipped[first[skips & ~is_login & ~kept_session]] = (
        True  # marks the browser as never logging in
    )
    order = np.lexsort((merged["event"], merged["at"], merged["customer"]))
    merged = {name: values[order] for name, values in merged.items()}
    merged["_skip"] = skipped[order]
    return merged, browser[order]


def _signed_in(w: Walk, table: dict[str, np.ndarray], browser: np.ndarray) -> np.ndarray:
    """Logged in: at or after the browser's own first login (a login event, or the main
    browser of a customer logged in from the start), unless the browser skips logging in."""
    customer, at = table["customer"], table["at"]
    key = customer * 8 + browser
    is_login = table["event"] == code(WEB_EVENTS, "login")
    kept = (
        (browser == 0) & (w.login_at[customer] == w.start[customer]) & (at >= w.login_at[customer])
    )
    starts = is_login | kept
    order = np.lexsort((at, key))  # per browser, in time order
    sorted_key, sorted_start = key[order], starts[order]
    group_start = np.ones(len(order), bool)
    group_start[1:] = sorted_key[1:] != sorted_key[:-1]
    seen = np.cumsum(sorted_start)
    before_group = np.maximum.accumulate(np.where(group_start, seen - sorted_start, 0))
    signed = np.empty(len(order), bool)
    signed[order] = (seen - before_group) > 0
    skipped_browser = np.isin(key, key[table.pop("_skip")])
    return signed & ~skipped_browser


def _churn(w: Walk, table: dict[str, np.ndarray], browser: np.ndarray) -> None:
    """Cookie numbers: the browser's own, or a fresh one after a cleared-cookie moment."""
    customer, at = table["customer"], table["at"]
    offset = np.cumsum(w.pop.browser_count) - w.pop.browser_count
    cookie = offset[customer] + browser
    used = np.unique(cookie)
    churned = used[w.rng.random(len(used)) < CHURN_SHARE]
    first_at = np.full(int(w.pop.browser_count.sum()), np.inf)
    last_at = np.full(len(first_at), -np.inf)
    np.minimum.at(first_at, cookie, at)
    np.maximum.at(last_at, cookie, at)
    cleared_at = np.full(len(first_at), np.inf)
    cleared_at[churned] = first_at[churned] + w.rng.random(len(churned)) * (
        last_at[churned] - first_at[churned]
    )
    base = len(first_at)
    new_number = np.full(len(first_at), -1)
    new_number[churned] = base + np.arange(len(churned))
    after = at > cleared_at[cookie]
    table["signed_in"] = table["signed_in"] & ~after
    table["cookie"] = np.where(after, new_number[cookie], cookie)
    owner = np.repeat(np.arange(w.pop.size), w.pop.browser_count)
    w.cookie_owner = np.concatenate([owner, owner[churned]])
    w.cookies = cookie_values(w.rng, len(w.cookie_owner))
    w.log.chunks["web"] = [table]


def summary(w: Walk) -> dict[str, object]:
    """The browser model's parameters and what they gave (truth.json `identifiers.browsers`)."""
    owned = int(w.pop.browser_count.sum())
    return {
        "browser_shares": list(BROWSER_SHARES), "sitting_gap_hours": SITTING_GAP_HOURS,
        "main_browser_share": MAIN_BROWSER_SHARE, "login_skip_share": LOGIN_SKIP_SHARE,
        "churn_share": CHURN_SHARE, "browsers_owned": owned,
        "cookies": len(w.cookie_owner), "cleared_cookies": len(w.cookie_owner) - owned,
    }  # fmt: skip
