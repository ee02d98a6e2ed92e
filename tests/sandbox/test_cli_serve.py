"""``python -m sandbox serve|generate``: arguments, env file (the readiness signal) and seeding from JSONL."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from sandbox.__main__ import build_parser
from sandbox.server import write_env_file
from tests.fixtures_sandbox import REPO_ROOT, launch_sandbox

APP_ID = "11111111-2222-3333-4444-555555555555"
REQUIRED_KEYS = {
    "IDLINK_CA_BUNDLE",
    "SANDBOX_CA_BUNDLE",
    "SANDBOX_URL",
    "IDLINK_HTTP_TIMEOUT_S",
    "IDLINK_RETRY_MAX_S",
    "B2C_TENANT_ID",
    "B2C_CLIENT_ID",
    "B2C_CLIENT_SECRET",
    "B2C_AUTHORITY_HOST",
    "GRAPH_BASE_URL",
    "B2C_EXTENSIONS_APP_ID",
    "B2C_CUSTOM_ATTRIBUTES",
}
USERS = [
    {
        "id": "b2c-1",
        "displayName": "First",
        "identities": [
            {"signInType": "emailAddress", "issuer": "t", "issuerAssignedId": "first@example.test"}
        ],
    },
    {"id": "b2c-2", "displayName": "Second", f"extension_{APP_ID.replace('-', '')}_CrmSyncConsent": True},
]
CONTACTS = [
    {"Id": "003000000000001AAA", "FirstName": "First", "LastName": "Contact", "Email": "c1@example.test"}
]
AKAMAI_USERS = [
    {
        "uuid": "6f1c2f4e-0000-4000-8000-000000000001",
        "email": "a1@example.test",
        "givenName": "Ak",
        "familyName": "Amai",
    }
]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory):
    running = launch_sandbox(
        tmp_path_factory.mktemp("cli"),
        users=USERS,
        contacts=CONTACTS,
        akamai_users=AKAMAI_USERS,
        extra_args=("--extensions-app-id", APP_ID),
    )
    yield running
    running.stop()


def test_env_file_points_every_client_at_the_running_sandbox(seeded) -> None:
    env = seeded.env
    assert REQUIRED_KEYS <= set(env)
    assert env["SANDBOX_URL"].startswith("https://127.0.0.1:")
    assert env["GRAPH_BASE_URL"] == env["B2C_AUTHORITY_HOST"] == env["SANDBOX_URL"]
    assert env["IDLINK_CA_BUNDLE"] == env["SANDBOX_CA_BUNDLE"] and Path(env["IDLINK_CA_BUNDLE"]).is_file()
    assert env["IDLINK_HTTP_TIMEOUT_S"] == "3" and env["IDLINK_RETRY_MAX_S"] == "60"
    assert env["B2C_EXTENSIONS_APP_ID"] == APP_ID
    assert env["B2C_CUSTOM_ATTRIBUTES"].split(",")[0] == "CrmSyncConsent"
    assert env["B2C_CUSTOM_ATTRIBUTES"].split(",")[-1] == "CrmContactId"
    # the other systems contribute their own variables
    assert env["SALESFORCE_LOGIN_URL"] == env["SANDBOX_URL"]
    assert env["AKAMAI_BASE_URL"].startswith(env["SANDBOX_URL"])


def test_env_file_is_private_because_it_holds_secrets(seeded) -> None:
    mode = stat.S_IMODE((seeded.workdir / "sandbox.env").stat().st_mode)
    assert mode == 0o600


def test_sandbox_is_reachable_over_https_with_the_written_ca_bundle(seeded) -> None:
    assert seeded.client.get(f"{seeded.url}/__sandbox/health").json() == {"status": "ok"}


def test_jsonl_seed_files_load_records_in_native_shape(seeded) -> None:
    state = seeded.state()
    assert state["b2c"]["users"] == USERS
    assert [c["Id"] for c in state["salesforce"]["Contact"]] == ["003000000000001AAA"]
    assert [u["uuid"] for u in state["akamai"]["users"]] == [AKAMAI_USERS[0]["uuid"]]


def test_state_can_be_limited_to_one_system(seeded) -> None:
    assert list(seeded.state("b2c")) == ["b2c"]


def test_admin_calls_are_not_counted_as_api_requests(seeded) -> None:
    seeded.reset_stats()
    seeded.state()
    seeded.stats()
    assert seeded.stats()["total_requests"] == 0


def test_size_generates_synthetic_records_for_every_system(sandbox) -> None:
    state = sandbox.state()
    assert len(state["b2c"]["users"]) > 50
    assert len(state["salesforce"]["Contact"]) > 50


def test_malformed_seed_line_stops_startup_naming_file_and_line_but_not_content(tmp_path: Path) -> None:
    users = tmp_path / "users.jsonl"
    users.write_text('{"id": "ok"}\n{"id": "secret.person@example.test", broken\n')
    env_file = tmp_path / "sandbox.env"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sandbox",
            "serve",
            "--users",
            str(users),
            "--env-file",
            str(env_file),
            "--state-dir",
            str(tmp_path / "state"),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert f"{users}:2" in result.stderr
    assert "secret.person" not in result.stderr
    assert not env_file.exists()


def test_second_sandbox_on_the_same_state_dir_is_refused(seeded, tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sandbox",
            "serve",
            "--state-dir",
            str(seeded.workdir / "state"),
            "--env-file",
            str(tmp_path / "second.env"),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2 and "in use" in result.stderr
    assert seeded.client.get(f"{seeded.url}/__sandbox/health").status_code == 200  # first one unharmed


def test_seed_line_that_is_not_an_object_is_refused(tmp_path: Path) -> None:
    users = tmp_path / "users.jsonl"
    users.write_text('["not", "a", "user"]\n')
    with pytest.raises(Exception, match=r"users.jsonl:1: expected a JSON object"):
        launch_sandbox(tmp_path / "box", extra_args=("--users", str(users)))


@pytest.mark.parametrize(
    "argv",
    [
        ["serve", "--fault-rate", "1.5"],
        ["serve", "--latency-ms", "-1"],
        ["serve", "--port", "-1"],
        ["serve", "--size", "many"],
        ["generate", "--size", "10"],
        ["unknown"],
    ],
    ids=[
        "rate-above-1",
        "negative-latency",
        "negative-port",
        "non-numeric-size",
        "generate-without-out",
        "unknown-command",
    ],
)
def test_invalid_arguments_exit_with_usage_error(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(argv)
    assert exited.value.code == 2


def test_parser_accepts_the_full_serve_interface() -> None:
    args = build_parser().parse_args(
        [
            "serve",
            "--users",
            "u.jsonl",
            "--contacts",
            "c.jsonl",
            "--akamai-users",
            "a.jsonl",
            "--size",
            "10",
            "--seed",
            "3",
            "--fault-rate",
            "0.1",
            "--latency-ms",
            "5",
            "--env-file",
            "e",
            "--port",
            "0",
            "--extensions-app-id",
            APP_ID,
            "--daily-api-limit",
            "1000",
            "--state-dir",
            "s",
            "--webhook-url",
            "https://127.0.0.1:9/hook",
        ]
    )
    assert (args.size, args.seed, args.fault_rate, args.daily_api_limit) == (10, 3, 0.1, 1000)
    assert args.akamai_users == Path("a.jsonl") and args.webhook_url == "https://127.0.0.1:9/hook"


def test_env_file_is_replaced_whole_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    target = tmp_path / "sandbox.env"
    target.write_text("OLD=1\n")
    write_env_file(target, {"A": "1", "B": "two words"})
    assert target.read_text() == "A=1\nB=two words\n"
    assert os.listdir(tmp_path) == ["sandbox.env"]


def test_env_value_spanning_lines_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="BAD"):
        write_env_file(tmp_path / "e", {"BAD": "a\nb"})
    assert not (tmp_path / "e").exists()


@pytest.mark.slow
def test_generate_writes_a_dataset_of_jsonl_files(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sandbox",
            "generate",
            "--size",
            "20",
            "--out",
            str(tmp_path / "data"),
            "--seed",
            "1",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    users = [orjson.loads(line) for line in (tmp_path / "data" / "users.jsonl").read_bytes().splitlines()]
    contacts = (tmp_path / "data" / "contacts.jsonl").read_bytes().splitlines()
    assert users and contacts and all("id" in u for u in users)
