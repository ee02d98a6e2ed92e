"""Azure AD B2C REST API connector called during sign-up.

B2C posts the flat claims collected so far; we answer within a hard budget so a sign-up is never held up:
- consent given: find or create the CRM contact and return its id as ``extension_<ContactIdAttribute>``;
- no consent: Continue without the claim (the CRM is not contacted);
- CRM slow or down: Continue without the claim; the stored inbox event lets the asynchronous path finish;
- invalid input: 400 ValidationError with a message for the user (never echoing what they typed).
Every call stores one inbox event, idempotent by a request id derived from the claims (B2C retries).
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import orjson
from email_validator import EmailNotValidError, validate_email
from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.akamai_listener import BodyTooLarge, read_limited
from gateway.crm_contacts import ContactDirectory, SignUpIdentity
from gateway.identity_ids import canonical_uuid
from inbox import Inbox, InboxEvent, InboxUnavailable
from reverse_etl import MappingError
from settings import ConnectorSettings

log = logging.getLogger(__name__)

API_VERSION = "1.0.0"
MAX_NAME_LENGTH = 100
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class ClaimsInvalid(Exception):
    """Carries the message shown to the user."""


@dataclass(frozen=True)
class SignUpClaims:
    identity: SignUpIdentity | None  # None when B2C sent no email (e.g. some social sign-ups)
    consent: bool
    step: str
    client_id: str
    ui_locales: str

    def request_id(self) -> str:
        """Same claims -> same id, so B2C's retries of one call are stored once."""
        ident = self.identity
        material = "|".join([
            (ident.object_id or "") if ident else "", ident.email if ident else "",
            self.step, self.client_id, "1" if self.consent else "0",
        ])
        return hashlib.sha256(material.encode()).hexdigest()[:32]


def _optional_text(claims: dict, name: str, message: str) -> str | None:
    value = claims.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > MAX_NAME_LENGTH or _CONTROL.search(value):
        raise ClaimsInvalid(message)
    return value.strip() or None


def _consent(claims: dict, attribute: str) -> bool:
    pattern = re.compile(rf"^extension_(?:[0-9a-fA-F]{{32}}_)?{re.escape(attribute)}$")
    values = [v for k, v in claims.items() if pattern.match(k)]
    if not values:
        return False
    value = values[0]
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ClaimsInvalid("Please confirm or decline the data sharing option again.")


def parse_claims(claims: object, consent_attribute: str) -> SignUpClaims:
    """Validate B2C's claims; raises ClaimsInvalid with a user-facing message."""
    if not isinstance(claims, dict):
        raise ClaimsInvalid("We could not process your details. Please try again.")
    raw_email = claims.get("email")
    identity = None
    object_id = claims.get("objectId")
    if object_id not in (None, ""):
        object_id = canonical_uuid(object_id)  # a B2C objectId; only this form is used in requests
        if object_id is None:
            raise ClaimsInvalid("We could not process your details. Please try again.")
    else:
        object_id = None
    text = {k: claims.get(k) for k in ("step", "client_id", "ui_locales")}
    if any(v is not None and not isinstance(v, str) for v in text.values()):
        raise ClaimsInvalid("We could not process your details. Please try again.")
    # the application the person signs up through: its entry of the field mapping applies
    client_id = (text["client_id"] or "")[:64]
    if raw_email not in (None, ""):
        if not isinstance(raw_email, str) or len(raw_email) > 254:
            raise ClaimsInvalid("Please enter a valid email address.")
        try:
            email = validate_email(raw_email, check_deliverability=False).normalized
        except EmailNotValidError:
            raise ClaimsInvalid("Please enter a valid email address.") from None
        identity = SignUpIdentity(
            email=email,
            given_name=_optional_text(claims, "givenName", "Please check your first name."),
            surname=_optional_text(claims, "surname", "Please check your last name."),
            object_id=object_id,
            client_id=client_id or None,
        )
    return SignUpClaims(
        identity=identity,
        consent=_consent(claims, consent_attribute),
        step=(text["step"] or "")[:64],
        client_id=client_id,
        ui_locales=(text["ui_locales"] or "")[:35],
    )


def continue_response(contact_claim: str | None = None, contact_id: str | None = None,
                      client_claim: str | None = None, client_id: str | None = None) -> JSONResponse:
    """Continue, returning the contact id and the client id as claims B2C stores on the new user (the client id
    tells the batch sync later which mapping entry applies to the user)."""
    body = {"version": API_VERSION, "action": "Continue"}
    if contact_claim and contact_id:
        body[contact_claim] = contact_id
    if client_claim and client_id:
        body[client_claim] = client_id
    return JSONResponse(body)


def validation_error(message: str) -> JSONResponse:
    return JSONResponse({"version": API_VERSION, "status": 400, "action": "ValidationError",
                         "userMessage": message}, status_code=400)


def _unauthorized() -> JSONResponse:
    return JSONResponse({"error": "unauthorized"}, status_code=401,
                        headers={"WWW-Authenticate": 'Basic realm="idlink-connector"'})


class B2CConnectorEndpoint:
    def __init__(self, settings: ConnectorSettings, inbox: Inbox, directory: ContactDirectory | None,
                 *, max_crm_threads: int = 8) -> None:
        self.settings = settings
        self.inbox = inbox
        self.directory = directory
        self.contact_claim = f"extension_{settings.contact_id_attribute}"
        self.client_claim = f"extension_{settings.client_id_attribute}"
        self._expected = (settings.username.encode(), settings.password.encode())
        # A dedicated pool: CRM calls that outlive the budget must not starve other work of threads.
        self._crm_pool = ThreadPoolExecutor(max_workers=max_crm_threads, thread_name_prefix="connector-crm")

    def authorized(self, header: str | None) -> bool:
        if not header or not header.lower().startswith("basic "):
            return False
        try:
            username, _, password = base64.b64decode(header[6:].strip(), validate=True).partition(b":")
        except (binascii.Error, ValueError):
            return False
        # compare both parts every time so timing reveals neither
        user_ok = hmac.compare_digest(username, self._expected[0])
        password_ok = hmac.compare_digest(password, self._expected[1])
        return user_ok and password_ok

    async def handle(self, request: Request) -> JSONResponse:
        if not self.authorized(request.headers.get("authorization")):
            return _unauthorized()
        try:
            body = await read_limited(request, self.settings.max_body_bytes)
            claims = parse_claims(orjson.loads(body), self.settings.consent_attribute)
        except BodyTooLarge:
            return validation_error("We could not process your details. Please try again.")
        except orjson.JSONDecodeError:
            return validation_error("We could not process your details. Please try again.")
        except ClaimsInvalid as exc:
            return validation_error(str(exc))

        contact_id, outcome = await self._contact(claims)
        await self._store(claims, contact_id, outcome)
        return continue_response(self.contact_claim, contact_id, self.client_claim, claims.client_id)

    async def _contact(self, claims: SignUpClaims) -> tuple[str | None, str]:
        if not claims.consent:
            return None, "no_consent"
        if claims.identity is None:
            return None, "no_email"
        if self.directory is None:
            return None, "crm_unconfigured"
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._crm_pool, self.directory.find_or_create, claims.identity)
        try:
            contact_id = await asyncio.wait_for(future, self.settings.budget_s)
        except TimeoutError:
            log.warning("connector request %s: CRM exceeded %.1f s budget", claims.request_id(),
                        self.settings.budget_s)
            return None, "crm_timeout"
        except MappingError as exc:  # names fields, never values: the operator must fix the mapping
            log.error("connector request %s: %s", claims.request_id(), exc)
            return None, "mapping_invalid"
        except Exception as exc:  # noqa: BLE001 - CRM down or refusing: the asynchronous path retries
            log.warning("connector request %s: CRM failed: %s", claims.request_id(), type(exc).__name__)
            return None, "crm_error"
        return (contact_id, "linked") if contact_id else (None, "not_created")

    async def _store(self, claims: SignUpClaims, contact_id: str | None, outcome: str) -> None:
        request_id = claims.request_id()
        event = InboxEvent(
            id=f"b2c:{request_id}", source="b2c", kind="signUp",
            subject=claims.identity.object_id if claims.identity else None,
            payload={"request_id": request_id, "step": claims.step, "client_id": claims.client_id,
                     "consent": claims.consent, "contact_id": contact_id, "outcome": outcome},
        )
        try:
            await self.inbox.aput(event, timeout_s=min(1.0, self.settings.budget_s))
        except InboxUnavailable as exc:
            # The sign-up still continues; the scheduled sync picks the identity up from B2C.
            log.error("connector request %s not stored: %s", request_id, exc)

    def close(self) -> None:
        self._crm_pool.shutdown(wait=False, cancel_futures=True)
