"""Vocabularies of the three sources and the growing log of generated events.

Events are kept as integer-coded numpy chunks (one chunk per kind of step, never one
Python object per event) and rendered to text once, in `render.py`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

WEB_EVENTS = ("page_view", "product_view", "newsletter_signup", "add_to_cart",
              "compare_products", "login", "checkout_started", "review_posted")  # fmt: skip
PAGES = ("home", "blog", "landing", "deals", "product", "search", "account", "newsletter",
         "compare", "login", "checkout", "confirmation", "review")  # fmt: skip
AWARENESS_PAGES = ("home", "blog", "landing", "deals")
CRM_ACTIVITIES = ("contact_created", "lead_created", "deal_stage_changed", "order_placed",
                  "repeat_order", "warranty_registered", "survey_response")  # fmt: skip
DEAL_STAGES = ("", "qualified", "quote_sent", "won", "lost")
ORDER_CHANNELS = ("", "web", "phone", "store")
OUTCOMES = ("answered", "abandoned", "voicemail")
REASONS_ORDER = ("product_question", "order", "support")
CATEGORIES = (
    "tv",
    "laptops",
    "smartphones",
    "audio",
    "cameras",
    "gaming",
    "smart_home",
    "appliances",
)

#: web event -> page it happens on (page_view picks its own page)
EVENT_PAGE = {
    "product_view": "product",
    "newsletter_signup": "newsletter",
    "add_to_cart": "product",
    "compare_products": "compare",
    "login": "login",
    "checkout_started": "checkout",
    "review_posted": "review",
}


def code(vocabulary: tuple[str, ...], name: str) -> int:
    return vocabulary.index(name)


@dataclass
class EventLog:
    """Integer-coded chunks per source; `stage` is the 1-based stage the rules give (0 = none)."""

    chunks: dict[str, list[dict[str, np.ndarray]]] = field(
        default_factory=lambda: defaultdict(list)
    )

    def web(self, customer: np.ndarray, at: np.ndarray, event: str, stage: int | np.ndarray, *,
            page: np.ndarray | None = None, has_email: np.ndarray | bool = False) -> None:  # fmt: skip
        size = len(customer)
        pages = page if page is not None else np.full(size, code(PAGES, EVENT_PAGE[event]))
        self.chunks["web"].append({
            "customer": customer, "at": at, "event": np.full(size, code(WEB_EVENTS, event)),
            "stage": np.broadcast_to(np.asarray(stage), size).copy(), "page": pages,
            "has_email": np.broadcast_to(np.asarray(has_email), size).copy(),
        })  # fmt: skip

    def crm(self, customer: np.ndarray, at: np.ndarray, activity: str, stage: int | np.ndarray, *,
            deal_stage: str = "", order_channel: np.ndarray | None = None,
            amount: np.ndarray | None = None, nps: np.ndarray | None = None,
            csat: np.ndarray | None = None) -> None:  # fmt: skip
        size = len(customer)
        self.chunks["crm"].append({
            "customer": customer, "at": at, "activity": np.full(size, code(CRM_ACTIVITIES, activity)),
            "stage": np.broadcast_to(np.asarray(stage), size).copy(),
            "deal_stage": np.full(size, code(DEAL_STAGES, deal_stage)),
            "order_channel": order_channel if order_channel is not None else np.zeros(size, np.int64),
            "amount": amount if amount is not None else np.full(size, np.nan),
            "nps": nps if nps is not None else np.full(size, -1),
            "csat": csat if csat is not None else np.full(size, -1),
        })  # fmt: skip

    def calls(self, columns: dict[str, np.ndarray]) -> None:
        self.chunks["calls"].append(columns)

    def table(self, source: str) -> dict[str, np.ndarray]:
        """All chunks of one source concatenated, column by column."""
        parts = self.chunks[source]
        if not parts:
            return {}
        return {name: np.concatenate([np.asarray(p[name]) for p in parts]) for name in parts[0]}
