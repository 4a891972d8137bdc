"""Signed notes (C2SP signed-note) with Ed25519 keys, and checkpoints in them (C2SP tlog-checkpoint).

A note is text ending in a newline, a blank line, then signature lines "— NAME base64(key ID || sig)".
Key ID = the first 4 bytes of SHA-256(name || 0x0A || 0x01 || 32-byte public key). Keys are written as
the Go reference (golang.org/x/mod/sumdb/note) writes them: "NAME+KEYID+base64(0x01 || public key)" for
a verifier and "PRIVATE+KEY+NAME+KEYID+base64(0x01 || seed)" for a signer, so a log or witness of that
ecosystem reads ours. A checkpoint's text is its origin, its size in decimal and its root in base64,
one per line, then optional extension lines.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

ED25519 = 0x01
DASH = "\u2014 "
MAX_SIGNATURES = 100


class NoteError(ValueError):
    """A note, key or checkpoint that is malformed or does not verify; the message says which."""


def key_id(name: str, public_key: bytes, kind: int = ED25519) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([kind]) + public_key).digest()[:4]


def _check_name(name: str) -> str:
    if not name or any(c.isspace() or c == "+" for c in name) or not name.isprintable():
        raise NoteError(f"key name {name!r}: must be non-empty, without spaces or '+'")
    return name


def _b64(text: str, what: str) -> bytes:
    """Strict base64: a text that is not the canonical encoding of its bytes (unused bits set in the last
    character) is refused, so no byte of a signature line can change without the line failing."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise NoteError(f"{what} is not valid base64") from None
    if base64.b64encode(raw).decode() != text:
        raise NoteError(f"{what} is not canonical base64")
    return raw


@dataclass(frozen=True)
class Verifier:
    name: str
    public_key: bytes

    @property
    def id(self) -> bytes:
        return key_id(self.name, self.public_key)

    @classmethod
    def parse(cls, text: str) -> Verifier:
        """A verifier key "NAME+KEYID+BASE64"; NoteError unless its ID matches its name and key."""
        parts = text.strip().split("+", 2)  # base64 may hold '+'
        if len(parts) != 3:
            raise NoteError("a verifier key is NAME+KEYID+BASE64")
        name, hex_id, material = _check_name(parts[0]), parts[1], _b64(parts[2], "the verifier key")
        if len(material) != 33 or material[0] != ED25519:
            raise NoteError("the verifier key is not an Ed25519 key (0x01 and 32 bytes)")
        v = cls(name, material[1:])
        if hex_id.lower() != v.id.hex() or len(hex_id) != 8:
            raise NoteError(f"the verifier key's ID {hex_id} does not match its name and key")
        return v

    def __str__(self) -> str:
        return f"{self.name}+{self.id.hex()}+{base64.b64encode(bytes([ED25519]) + self.public_key).decode()}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True


@dataclass(frozen=True)
class Signer:
    name: str
    seed: bytes

    @classmethod
    def generate(cls, name: str) -> Signer:
        key = Ed25519PrivateKey.generate()
        return cls(_check_name(name), key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()))

    @classmethod
    def parse(cls, text: str) -> Signer:
        parts = text.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise NoteError("a signer key is PRIVATE+KEY+NAME+KEYID+BASE64")
        material = _b64(parts[4], "the signer key")
        if len(material) != 33 or material[0] != ED25519:
            raise NoteError("the signer key is not an Ed25519 key (0x01 and a 32-byte seed)")
        signer = cls(_check_name(parts[2]), material[1:])
        if parts[3].lower() != signer.verifier().id.hex():
            raise NoteError(f"the signer key's ID {parts[3]} does not match its name and key")
        return signer

    def __str__(self) -> str:
        material = base64.b64encode(bytes([ED25519]) + self.seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.verifier().id.hex()}+{material}"

    @functools.cached_property
    def _key(self) -> Ed25519PrivateKey:  # made once: loading the key cost a quarter of each signature
        return Ed25519PrivateKey.from_private_bytes(self.seed)

    @functools.cache  # noqa: B019 (a signer lives as long as its log; there are few)
    def verifier(self) -> Verifier:
        public = self._key.public_key()
        return Verifier(self.name, public.public_bytes(Encoding.Raw, PublicFormat.Raw))

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)

    def signature_line(self, text: str) -> str:
        sig = self.sign(text.encode())
        return f"{DASH}{self.name} {base64.b64encode(self.verifier().id + sig).decode()}\n"


def sign(text: str, *signers: Signer) -> str:
    """The note: `text` (which must end in a newline), a blank line, one signature line per signer."""
    _check_text(text)
    return text + "\n" + "".join(s.signature_line(text) for s in signers)


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise NoteError("a note's text must end with a newline")
    if any(ord(c) < 0x20 and c != "\n" for c in text):
        raise NoteError("a note must not hold control characters other than newline")


def open_note(note: str, verifiers: list[Verifier]) -> tuple[str, list[str]]:
    """(text, names of the known keys whose signatures verified). Signatures of unknown keys are
    ignored; one from a known key that fails, or none from a known key at all, is a NoteError."""
    split = note.rfind("\n\n")
    if split < 0 or not note.endswith("\n"):
        raise NoteError("not a signed note: no blank line before the signatures")
    text, lines = note[: split + 1], note[split + 2 :].splitlines()
    _check_text(text)
    if not lines or len(lines) > MAX_SIGNATURES:
        raise NoteError(f"a note needs 1 to {MAX_SIGNATURES} signature lines")
    known = {(v.name, v.id): v for v in verifiers}
    verified: list[str] = []
    for line in lines:
        if not line.startswith(DASH) or line.count(" ") != 2:
            raise NoteError(f"malformed signature line {line[:60]!r}")
        name, blob = line[len(DASH) :].split(" ")
        raw = _b64(blob, f"the signature of {name}")
        if len(raw) < 5:
            raise NoteError(f"the signature of {name} is too short")
        v = known.get((name, raw[:4]))
        if v is None:
            continue
        if not v.verify(text.encode(), raw[4:]):
            raise NoteError(f"the signature of {name} does not verify")
        verified.append(name)
    if not verified:
        raise NoteError("no signature from a known key")
    return text, verified


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode(), *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "":
            raise NoteError("a checkpoint is origin, size and root, one per line")
        origin, size, root = lines[0], lines[1], lines[2]
        if not origin:
            raise NoteError("the checkpoint's origin line is empty")
        if not size.isdigit() or (size != "0" and size.startswith("0")) or len(size) > 20:
            raise NoteError(f"the checkpoint's size {size[:30]!r} is not a decimal number")
        digest = _b64(root, "the checkpoint's root")
        if len(digest) != 32:
            raise NoteError(f"the checkpoint's root is {len(digest)} bytes, not 32")
        return cls(origin, int(size), digest, tuple(lines[3:-1]))
