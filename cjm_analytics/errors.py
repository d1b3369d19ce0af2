"""Errors a user can act on: what was wrong, where, and what would be accepted."""

from __future__ import annotations


class CjmError(Exception):
    """Base class of every error cjm-analytics raises on purpose."""


class ConfigError(CjmError):
    """journey.yaml is missing, unreadable or invalid (the message names the key)."""


class IngestError(CjmError):
    """A source file cannot be read at all (row-level problems become rejects instead)."""


class WarehouseError(CjmError):
    """The warehouse cannot be built, opened or published."""


class FunnelError(CjmError):
    """An ad-hoc funnel definition is invalid."""


class MiningError(CjmError):
    """A process-mining step cannot run on the given log."""
