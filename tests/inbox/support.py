"""Test helpers around the inbox."""
from __future__ import annotations

import sqlite3

from inbox import Inbox


class FlakyInbox(Inbox):
    """An inbox whose disk fails while ``broken`` is set."""

    broken = False

    @staticmethod
    def _write_batch(conn, events):
        if FlakyInbox.broken:
            raise sqlite3.OperationalError("disk I/O error")
        return Inbox._write_batch(conn, events)
