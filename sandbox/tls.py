"""TLS material for the sandbox: a throw-away CA and a server certificate for 127.0.0.1 / localhost.

Clients trust the sandbox through the CA bundle path written to the env file, exactly as they would trust
a corporate CA in production; nothing disables certificate verification.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True)
class TlsFiles:
    ca_bundle: Path  # PEM of the CA that signed the server certificate
    cert_file: Path  # server certificate chain (PEM)
    key_file: Path  # server private key (PEM)


def make_tls_files(state_dir: Path) -> TlsFiles:
    """Create a fresh CA and a server certificate for the loopback names and write them into ``state_dir``."""
    state_dir.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="idlink sandbox")
    server_cert = ca.issue_cert("127.0.0.1", "localhost", "::1")
    files = TlsFiles(
        ca_bundle=state_dir / "sandbox-ca.pem",
        cert_file=state_dir / "sandbox-server-cert.pem",
        key_file=state_dir / "sandbox-server-key.pem",
    )
    ca.cert_pem.write_to_path(str(files.ca_bundle))
    server_cert.cert_chain_pems[0].write_to_path(str(files.cert_file))
    for extra in server_cert.cert_chain_pems[1:]:
        extra.write_to_path(str(files.cert_file), append=True)
    server_cert.private_key_pem.write_to_path(str(files.key_file))
    files.key_file.chmod(0o600)
    return files
