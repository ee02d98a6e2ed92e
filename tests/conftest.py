"""Fixtures shared by every test folder: a running API sandbox and a real Postgres server."""
pytest_plugins = ["tests.fixtures_sandbox", "tests.fixtures_postgres"]
