"""The SCIM source against a SCIM server written by others (scim2-server from PyPI), run as its own process and
filled through its own SCIM API: the source must work with a directory it was not built alongside.

scim2-server's test server speaks plain HTTP, which the source accepts for loopback hosts only.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
import requests
from scim2_server.utils import (
    load_default_resource_types,
    load_default_schemas,
    load_default_service_provider_config,
)

from ingestion.pipeline import run_scim
from sandbox.synthetic import generate
from sandbox.synthetic.build import SCIM_IDLINK_USER
from settings import ScimSettings
from tests.akamai.support import free_port

TOKEN = "scim2-server-token"
IDLINK_SCHEMA = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"], "id": SCIM_IDLINK_USER, "name": "IdlinkUser",
    "description": "What idlink reads of a user: CRM-sync consent, the CRM contact id it carries and the client "
                   "(application) it was provisioned for",
    "attributes": [
        {"name": "crmSyncConsent", "type": "boolean", "multiValued": False, "required": False,
         "mutability": "readWrite", "returned": "default"},
        {"name": "crmContactId", "type": "string", "multiValued": False, "required": False, "caseExact": True,
         "mutability": "readWrite", "returned": "default", "uniqueness": "none"},
        {"name": "clientId", "type": "string", "multiValued": False, "required": False, "caseExact": True,
         "mutability": "readWrite", "returned": "default", "uniqueness": "none"},
    ],
}


class Directory:
    def __init__(self, url: str, log: Path, filtering: bool) -> None:
        self.url, self.log, self.filtering = url, log, filtering
        self.http = requests.Session()
        self.http.headers.update({"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/scim+json"})

    def create(self, user: dict) -> str:
        body = {k: v for k, v in user.items() if k not in ("id", "meta")}
        response = self.http.post(f"{self.url}/Users", data=json.dumps(body), timeout=10)
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def replace(self, user_id: str, changes: dict) -> None:
        current = self.http.get(f"{self.url}/Users/{user_id}", timeout=10).json()
        body = {k: v for k, v in {**current, **changes}.items() if k not in ("id", "meta")}
        assert self.http.put(f"{self.url}/Users/{user_id}", data=json.dumps(body), timeout=10).ok

    def delete(self, user_id: str) -> None:
        assert self.http.delete(f"{self.url}/Users/{user_id}", timeout=10).status_code == 204


def start_server(workdir: Path, *, filtering: bool) -> tuple[subprocess.Popen, str]:
    workdir.mkdir(parents=True, exist_ok=True)
    schemas = [schema.model_dump() for schema in load_default_schemas().values()] + [IDLINK_SCHEMA]
    resource_types = [rt.model_dump() for rt in load_default_resource_types().values()]
    for resource_type in resource_types:
        if resource_type["id"] == "User":
            resource_type["schemaExtensions"].append({"schema": SCIM_IDLINK_USER, "required": False})
    config = load_default_service_provider_config().model_dump()
    config["filter"]["supported"] = filtering
    for name, document in (("schemas", schemas), ("resource_types", resource_types), ("config", config)):
        (workdir / f"{name}.json").write_text(json.dumps(document))
    port = free_port()
    executable = shutil.which("scim2-server", path=str(Path(sys.executable).parent)) or "scim2-server"
    process = subprocess.Popen(
        [executable, "--port", str(port), "--bearer-token", TOKEN, "--schema", str(workdir / "schemas.json"),
         "--resource-type", str(workdir / "resource_types.json"),
         "--service-provider-config", str(workdir / "config.json")],
        stdout=subprocess.DEVNULL, stderr=(workdir / "server.log").open("wb"))
    url = f"http://127.0.0.1:{port}/v2"
    deadline = time.monotonic() + 30
    while True:
        try:
            if requests.get(f"{url}/ServiceProviderConfig", headers={"Authorization": f"Bearer {TOKEN}"},
                            timeout=1).ok:
                return process, url
        except requests.ConnectionError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"scim2-server did not start:\n{(workdir / 'server.log').read_text()}")
        time.sleep(0.1)


@pytest.fixture(params=[True, False], ids=["filtering", "no-filtering"])
def directory(request, tmp_path) -> Iterator[Directory]:
    process, url = start_server(tmp_path / "scim2-server", filtering=request.param)
    try:
        yield Directory(url, tmp_path / "scim2-server" / "server.log", request.param)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # a loaded machine: the server's exit is not what is tested here
            process.kill()
            process.wait()


def loaded(warehouse: str) -> dict[str, dict]:
    with duckdb.connect(warehouse, read_only=True) as con:
        cursor = con.execute("select * from raw_scim.users")
        names = [d[0] for d in cursor.description]
        return {row[0]: dict(zip(names, row)) for row in cursor.fetchall()}


@pytest.mark.slow
def test_users_of_a_scim2_server_directory_are_loaded_changed_and_removed(directory, tmp_path):
    users = generate(30, seed=9, scim_share=1.0).scim_users
    ids = [directory.create(user) for user in users]
    settings = ScimSettings(base_url=directory.url, token=TOKEN, page_size=7, timeout_s=5, retry_max_s=5)
    warehouse = str(tmp_path / "warehouse.duckdb")

    run_scim(settings, warehouse)
    first = loaded(warehouse)
    assert set(first) == set(ids)
    with_consent = next(i for i, u in zip(ids, users) if u.get(SCIM_IDLINK_USER, {}).get("crmSyncConsent"))
    assert json.loads(first[with_consent]["custom_attributes"])["CrmSyncConsent"] is True
    assert all(row["email_valid"] for row in first.values() if row["sign_in_email"])

    time.sleep(1.1)  # meta.lastModified has a resolution the server decides; let the change be later
    directory.replace(ids[3], {"displayName": "Renamed In The Directory"})
    directory.delete(ids[4])
    run_scim(settings, warehouse)

    second = loaded(warehouse)
    assert second[ids[3]]["display_name"] == "Renamed In The Directory"
    assert second[ids[4]]["is_deleted"] is True
    rewritten = {k for k in second if second[k]["_dlt_load_id"] != first[k]["_dlt_load_id"]}
    assert rewritten == {ids[3], ids[4]}  # unchanged users are not written again, whichever way they were read
    second_run = directory.log.read_text().split("\n")
    filtered = [line for line in second_run if "GET /v2/Users?" in line and "filter=meta.lastModified" in line]
    assert bool(filtered) == directory.filtering  # the incremental path where the server can filter
