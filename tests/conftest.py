"""Fixtures shared by every test folder: a running API sandbox, a real Postgres server and a fresh event inbox."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from inbox import Inbox

pytest_plugins = ["tests.fixtures_sandbox", "tests.fixtures_postgres"]


@pytest.fixture
def inbox(tmp_path) -> Iterator[Inbox]:
    box = Inbox(tmp_path / "inbox.sqlite3")
    yield box
    box.close()
