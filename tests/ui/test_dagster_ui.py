"""What a Dagster user sees in the running UI, in a real browser (headless Debian chromium): the raw tables in the
asset graph under names that say what they are, with their kinds; the golden table's page with its description,
owner, kinds, full storage, freshness policy, every column described, readable blocking checks and nothing
"(unserializable)"; and a run started from the command line on its job's page."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Browser, Page, expect, sync_playwright

from orchestration.definitions import PROJECT_ROOT

# one test, so the webserver starts once whichever worker takes it (a command-line run and the webserver's start
# take minutes on a busy machine)
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

WAIT_MS = 120_000  # the code location loads in the webserver's own process; slow on a busy machine
expect.set_options(timeout=WAIT_MS)
RAW_TABLES = {"raw_b2c_users": "Azure", "raw_akamai_users": "akamai", "raw_scim_users": "scim",
              "raw_salesforce_contact": "Salesforce", "raw_dynamics_contact": "dynamics365"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def environment(tmp_path_factory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("dagster_home")
    shutil.copy(PROJECT_ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    data = tmp_path_factory.mktemp("data")
    return {**os.environ, "DAGSTER_HOME": str(home), "WAREHOUSE_PATH": str(data / "warehouse.duckdb"),
            "GATEWAY_INBOX_PATH": str(data / "inbox.sqlite3")}


@pytest.fixture(scope="module")
def cli_run_id(environment) -> str:
    """A run of ingest_and_link started from the command line (the SCIM load alone: not configured, so quick)."""
    done = subprocess.run([sys.executable, "-m", "orchestration.runs", "ingest_and_link", "--select",
                           "raw_scim_users"], cwd=PROJECT_ROOT, env=environment, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return re.search(r"run ([0-9a-f-]{36})", done.stdout).group(1)


@pytest.fixture(scope="module")
def webserver(environment, cli_run_id) -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("dagster-webserver")), "-w", "workspace.yaml", "-h", "127.0.0.1",
         "-p", str(port)], cwd=PROJECT_ROOT, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)  # its own process group: the code server it starts stops with it
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + WAIT_MS / 1000
        while True:
            assert proc.poll() is None, "the webserver exited"
            try:
                if requests.get(f"{url}/server_info", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "the webserver did not answer"
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("Debian's chromium is needed for the UI tests: apt-get install chromium (.ci/run does)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser, webserver) -> Iterator[Page]:
    context = browser.new_context(base_url=webserver, viewport={"width": 1600, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    # Dagster's first-visit invitation covers the page; a user dismisses it
    page.add_locator_handler(page.get_by_role("button", name="Skip"), lambda skip: skip.click())
    yield page
    context.close()


def the_asset_graph_names_each_raw_table_after_its_storage_with_its_kinds(page):
    page.goto("/locations/idlink/asset-groups/ingestion/lineage")
    for name in RAW_TABLES:
        expect(page.get_by_text(name, exact=True).first).to_be_attached()
    # each node's kinds sit under it; the storage kind and the loader are on every raw table, the system on its own
    for kind in {"DuckDB", "dlt", *RAW_TABLES.values()}:
        expect(page.get_by_text(kind, exact=True).first).to_be_attached()
    # no node titled by the last part of a key alone ("users", "users", "contact")
    for bare in ("users", "contact"):
        expect(page.get_by_text(bare, exact=True)).to_have_count(0)


def the_golden_tables_page_says_what_it_is_where_it_lives_and_who_owns_it(page):
    page.goto("/assets/identity_contact_links")
    expect(page.get_by_text("The golden identity-contact link table", exact=False).first).to_be_visible()
    for shown in ("marts.identity_contact_links", "identity-data", "dbt", "DuckDB",
                  "Fails if more than an hour since last materialization"):
        expect(page.get_by_text(shown, exact=True).first).to_be_attached()
    manifest = json.loads((PROJECT_ROOT / "dbt_project" / "target" / "manifest.json").read_text())
    columns = manifest["nodes"]["model.idlink.identity_contact_links"]["columns"]
    assert len(columns) >= 13
    for column in columns.values():  # every column is described where the user reads the columns
        first_words = " ".join(re.sub(r"[`*]", "", column["description"]).split()[:5])  # as markdown renders it
        expect(page.get_by_text(first_words, exact=False).first).to_be_attached()
    assert "(unserializable)" not in page.inner_text("body")


def the_golden_tables_checks_have_readable_names_and_say_what_they_guard(page):
    page.goto("/assets/identity_contact_links?view=checks")
    for name in ("active_link_volume", "consented_identities", "one_row_per_crm_contact_id",
                 "status_accepted_values"):
        expect(page.get_by_text(name, exact=True).first).to_be_attached()
    page.get_by_text("active_link_volume", exact=True).first.click()
    expect(page.get_by_text("This is a blocking asset check.")).to_be_visible()
    expect(page.get_by_text("The active links did not fall to none", exact=False).first).to_be_visible()


def a_run_started_from_the_command_line_is_on_its_jobs_page(page, cli_run_id):
    page.goto("/locations/idlink/jobs/ingest_and_link/runs")
    expect(page.get_by_text(cli_run_id[:8], exact=True).first).to_be_visible()


def test_a_dagster_user_sees_what_each_asset_is_and_where_a_cli_run_went(page, cli_run_id):
    the_asset_graph_names_each_raw_table_after_its_storage_with_its_kinds(page)
    the_golden_tables_page_says_what_it_is_where_it_lives_and_who_owns_it(page)
    the_golden_tables_checks_have_readable_names_and_say_what_they_guard(page)
    a_run_started_from_the_command_line_is_on_its_jobs_page(page, cli_run_id)
