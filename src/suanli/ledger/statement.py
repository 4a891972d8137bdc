"""in-toto Statements (v1) in DSSE envelopes, signed with the ledger's Ed25519 keys.

DSSE signs PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body (lengths in decimal
bytes), never the JSON itself, so nothing about the encoding can be confused for another payload. A
Statement names its subjects by digest and says what is claimed of them in a typed predicate.
"""

from __future__ import annotations

import base64
import json

from suanli.ledger.note import NoteError, Signer, Verifier

PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"


def pae(payload_type: str, body: bytes) -> bytes:
    """DSSE's pre-authentication encoding."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(body), body)


def statement(subjects: dict[str, str], predicate_type: str, predicate: dict) -> dict:
    """A Statement v1 about `subjects` ({name: sha256 hex})."""
    return {
        "_type": STATEMENT_TYPE,
        "subject": [
            {"name": name, "digest": {"sha256": digest}} for name, digest in sorted(subjects.items())
        ],
        "predicateType": predicate_type,
        "predicate": predicate,
    }


def envelope(doc: dict, *signers: Signer) -> dict:
    """The statement in a DSSE envelope signed by each signer (keyid: its signed-note verifier key)."""
    body = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    message = pae(PAYLOAD_TYPE, body)
    return {
        "payloadType": PAYLOAD_TYPE,
        "payload": base64.b64encode(body).decode(),
        "signatures": [
            {"keyid": str(s.verifier()), "sig": base64.b64encode(s.sign(message)).decode()} for s in signers
        ],
    }


def open_envelope(env: dict, verifiers: list[Verifier]) -> dict:
    """The statement, once a signature of one of `verifiers` verifies; NoteError otherwise."""
    try:
        body = base64.b64decode(env["payload"], validate=True)
        sigs = [(s["keyid"], base64.b64decode(s["sig"], validate=True)) for s in env["signatures"]]
        kind = env["payloadType"]
    except (KeyError, TypeError, ValueError):
        raise NoteError("not a DSSE envelope: payloadType, payload and signatures are needed") from None
    if kind != PAYLOAD_TYPE:
        raise NoteError(f"payloadType {kind!r} is not an in-toto statement")
    known = {str(v): v for v in verifiers}
    message = pae(kind, body)
    if not any(keyid in known and known[keyid].verify(message, sig) for keyid, sig in sigs):
        raise NoteError("no signature of a known key verifies the envelope")
    doc = json.loads(body)
    if not isinstance(doc, dict) or doc.get("_type") != STATEMENT_TYPE:
        raise NoteError("the payload is not an in-toto Statement v1")
    return doc
