"""The server side of OData ``$batch`` (multipart/mixed): read the requests and change sets of a batch, write
the multipart answer. Each change set is answered as a nested multipart of its responses, or, when one of its
requests failed, as that single error response (with its ``Content-ID``)."""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from email.message import Message

_BLANK_LINE = re.compile(rb"\r?\n\r?\n")


@dataclass
class InnerRequest:
    method: str
    path: str  # the URL as written (absolute or relative)
    headers: dict[str, str]
    body: bytes
    content_id: str | None = None


@dataclass
class Part:
    requests: list[InnerRequest] = field(default_factory=list)
    changeset: bool = False


@dataclass
class InnerResponse:
    status: int
    reason: str
    headers: dict[str, str]
    body: bytes = b""
    content_id: str | None = None


class BatchSyntaxError(ValueError):
    pass


def boundary_of(content_type: str) -> str | None:
    message = Message()
    message["content-type"] = content_type
    boundary = message.get_param("boundary")
    return str(boundary) if boundary else None


def _split(body: bytes, boundary: str) -> list[bytes]:
    chunks = body.split(b"--" + boundary.encode())
    if len(chunks) < 2:
        raise BatchSyntaxError("the body holds no part of the declared boundary")
    parts = []
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break
        parts.append(chunk.strip(b"\r\n"))
    return parts


def _head(chunk: bytes) -> tuple[dict[str, str], bytes]:
    split = _BLANK_LINE.search(chunk)
    head, rest = (chunk[:split.start()], chunk[split.end():]) if split else (chunk, b"")
    headers = {}
    for line in head.decode("utf-8", "replace").splitlines():
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return headers, rest


def _request(chunk: bytes, content_id: str | None) -> InnerRequest:
    line, _, rest = chunk.partition(b"\n")
    words = line.decode("utf-8", "replace").strip().split()
    if len(words) < 2:
        raise BatchSyntaxError("a batch part does not start with a request line")
    headers, body = _head(rest)
    return InnerRequest(words[0].upper(), words[1], headers, body.strip(), content_id)


def parse(content_type: str, body: bytes) -> list[Part]:
    boundary = boundary_of(content_type)
    if not boundary:
        raise BatchSyntaxError("a $batch request must be multipart/mixed with a boundary")
    parts = []
    for chunk in _split(body, boundary):
        headers, payload = _head(chunk)
        inner = boundary_of(headers.get("content-type", "")) if "multipart" in headers.get("content-type", "") \
            else None
        if inner:
            part = Part(changeset=True)
            for sub in _split(payload, inner):
                sub_headers, sub_payload = _head(sub)
                part.requests.append(_request(sub_payload, sub_headers.get("content-id")))
            parts.append(part)
        else:
            parts.append(Part(requests=[_request(payload, headers.get("content-id"))]))
    return parts


def _http(response: InnerResponse) -> list[str]:
    lines = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if response.content_id:
        lines.append(f"Content-ID: {response.content_id}")
    lines += ["", f"HTTP/1.1 {response.status} {response.reason}"]
    lines += [f"{name}: {value}" for name, value in response.headers.items()]
    lines += ["", response.body.decode("utf-8")]
    return lines


def render(answers: list[tuple[bool, list[InnerResponse]]]) -> tuple[str, bytes]:
    """(content type, body) of a batch answer; each answer is (was a change set, its responses)."""
    boundary = f"batchresponse_{uuid.uuid4()}"
    lines: list[str] = []
    for changeset, responses in answers:
        lines.append(f"--{boundary}")
        if changeset and len(responses) > 0 and all(r.status < 400 for r in responses):
            inner = f"changesetresponse_{uuid.uuid4()}"
            lines += [f"Content-Type: multipart/mixed; boundary={inner}", ""]
            for response in responses:
                lines.append(f"--{inner}")
                lines += _http(response)
            lines.append(f"--{inner}--")
        else:
            lines += _http(responses[-1])
    lines += [f"--{boundary}--", ""]
    return f"multipart/mixed; boundary={boundary}", "\r\n".join(lines).encode()
