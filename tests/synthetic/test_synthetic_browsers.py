"""The browser model of the synthetic web log (ADR 0011), checked from the files alone:
a browser stays logged in once it logs in, and truth.json's recall ceiling is recounted
with a plain union-find over the valid rows."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl

BERLIN = ZoneInfo("Europe/Berlin")


def _web_rows(company: Path, as_of: datetime) -> list[dict]:
    """Parseable web rows before as-of, first copy of each event id, in file order."""
    rows, seen = [], set()
    for path in sorted(company.glob("raw/web/*.jsonl")):
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
                row["_at"] = datetime.fromisoformat(row["timestamp"])
            except (ValueError, TypeError):
                continue
            if row["event_id"] not in seen and row["_at"] < as_of:
                seen.add(row["event_id"])
                rows.append(row)
    return rows


def _csv_rows(company: Path, glob: str, delimiter: str, key: str, at: str, zone: tzinfo,
              as_of: datetime) -> list[dict[str, str]]:  # fmt: skip
    rows, seen = [], set()
    for path in sorted(company.glob(glob)):
        for row in csv.DictReader(path.open(), delimiter=delimiter):
            try:
                moment = datetime.strptime(row[at], "%Y-%m-%d %H:%M:%S").replace(tzinfo=zone)
            except ValueError:
                continue
            if row[key] not in seen and moment < as_of:
                seen.add(row[key])
                rows.append(row)
    return rows


def test_a_browser_stays_logged_in_after_its_login(company: Path, truth: dict) -> None:
    """Per cookie in time order: after the first event with a user id, every event has it;
    and that first event is a `login`, or the cookie's first event (a session from before
    the window). Planted dirty rows may break either, so at most their count may."""
    as_of = datetime.fromisoformat(truth["as_of"]).replace(tzinfo=UTC)
    by_cookie: dict[str, list[dict]] = {}
    for row in _web_rows(company, as_of):
        if row["anonymous_id"]:
            by_cookie.setdefault(row["anonymous_id"], []).append(row)
    broken = logged_in_cookies = 0
    for events in by_cookie.values():
        events.sort(key=lambda r: (r["_at"], r["event"] != "login"))
        users = [r["user_id"] for r in events]
        first = next((i for i, u in enumerate(users) if u), None)
        if first is None:
            continue
        logged_in_cookies += 1
        stays = len(set(users[first:])) == 1
        starts = events[first]["event"] == "login" or first == 0
        broken += not (stays and starts)
    assert logged_in_cookies > 100
    assert broken <= sum(truth["dirty"]["web"].values())


def test_recall_ceiling_in_truth_is_recounted_from_the_files(company: Path, truth: dict) -> None:
    """Union-find over identifiers that share a valid row (switchboard left out): the pairs
    of one true customer joined this way over all its pairs is truth.json's ceiling."""
    as_of = datetime.fromisoformat(truth["as_of"]).replace(tzinfo=UTC)
    owner = {
        (k, v): c for k, v, c in pl.read_parquet(company / "truth_identifiers.parquet").iter_rows()
    }
    rows = [
        [("cookie", r["anonymous_id"]), ("user_id", r["user_id"]), ("email", r["email"])]
        for r in _web_rows(company, as_of)
    ]
    crm = _csv_rows(company, "raw/crm/*.csv", ",", "record_id", "occurred_at", BERLIN, as_of)
    rows += [[("contact_id", r["contact_id"]), ("email", r["email"]), ("phone", r["phone"]),
              ("user_id", r["web_user_id"])] for r in crm]  # fmt: skip
    calls = _csv_rows(company, "raw/calls/*.csv", ";", "call_id", "queued_at", UTC, as_of)
    rows += [[("phone", r["caller_phone"])] for r in calls]
    parent: dict[tuple[str, str], tuple[str, str]] = {}

    def find(node: tuple[str, str]) -> tuple[str, str]:
        while parent.setdefault(node, node) != node:
            node = parent[node]
        return node

    for identifiers in rows:
        known = [i for i in identifiers if i[1] and i in owner]
        for node in known:
            find(node)
            if owner[node] == owner[known[0]]:
                parent[find(node)] = find(known[0])
    groups: dict[object, int] = {}
    per_customer: dict[str, int] = {}
    for node in parent:
        groups[find(node)] = groups.get(find(node), 0) + 1
        per_customer[owner[node]] = per_customer.get(owner[node], 0) + 1
    reachable = sum(n * (n - 1) // 2 for n in groups.values())
    true_pairs = sum(n * (n - 1) // 2 for n in per_customer.values())
    reach = truth["identifiers"]["reach"]
    assert (reach["reachable_pair_count"], reach["true_pair_count"]) == (reachable, true_pairs)
    assert 0 < reach["recall_ceiling"] < 1
