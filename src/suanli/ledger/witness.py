"""A transparency-log witness (C2SP tlog-witness) that returns Ed25519 cosignatures (C2SP
tlog-cosignature, cosignature/v1), and a client for it.

Cosignature. A note signature line "— NAME base64(key ID || timestamp || signature)" where the key ID is
SHA-256(NAME || 0x0A || 0x04 || 32-byte public key)[:4] (signature type 0x04, so a cosigner key never
matches a log key of type 0x01), the timestamp is 8 bytes big-endian POSIX seconds (below 2^63; never 0
from the witness), and the Ed25519 signature is over "cosignature/v1\\ntime <t>\\n" followed by the
whole checkpoint text (extension lines included, signature lines not). The cosigner's verifier key is
written as the vkey "NAME+hex(key ID)+base64(0x04 || public key)", as Go's torchwood / sunlight write
cosigner keys.

add-checkpoint. `POST <prefix>/add-checkpoint` with the body "old N\\n", 0 to 63 lines of one base64
hash each (an RFC 6962 consistency proof from size N), a blank line, then the signed checkpoint note.
The witness answers, in this order:
  400  the body is malformed (not UTF-8, no "old" line or one with leading zeros, a proof line that is
       not a 32-byte base64 hash, more than 63 of them, no blank line);
  404  the checkpoint's origin (its first line) is not a log this witness knows;
  400  the note or the checkpoint in it is malformed (an empty extension line included);
  403  no signature line of the log's key, or one that does not verify;
  400  the old size is larger than the checkpoint's size;
  422  a checkpoint of size 0 whose root is not SHA-256("");
  409  the old size is not the size of the latest checkpoint this witness cosigned for the log (0 if
       none), with Content-Type text/x.tlog.size and that size in decimal and a newline as the body;
  422  old size 0 with a non-empty proof, a proof that does not verify, or the same size as the last
       cosigned checkpoint with another root (a fork);
  200  the new size and root are on disk (fsynced), then the body is the cosignature line.
A checkpoint equal to the one last cosigned is cosigned again. The check of the old size and the update
are one step under a lock held across threads and processes (fcntl.flock), so two requests can never
roll the recorded size back. The witness also serves the latest checkpoint it cosigned, with the log's
verified signature and its cosignature, at `GET <prefix>/<hex SHA-256 of the origin>/checkpoint` (404
before the first one), the spec's monitoring endpoint.

The spec recommends ML-DSA-44 cosignatures (type 0x06) for new deployments; this witness signs with
Ed25519 (type 0x04), which the spec also defines, because the ledger's keys are Ed25519.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import hashlib
import json
import os
import re
import socket
import sys
import threading
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from suanli.core.errors import BadInput, SuanliError, printable
from suanli.core.files import private_dir
from suanli.ledger.merkle import EMPTY_ROOT, HASH_SIZE, ProofError, verify_consistency
from suanli.ledger.note import (
    DASH,
    MAX_SIGNATURES,
    Checkpoint,
    NoteError,
    Signer,
    Verifier,
    key_id,
    open_note,
)
from suanli.ledger.note import _b64 as note_b64

COSIGNATURE_V1 = 0x04
SIZE_CONTENT_TYPE = "text/x.tlog.size"
TEXT_CONTENT_TYPE = "text/plain; charset=utf-8"
MAX_BODY = 1 << 20
MAX_PROOF_LINES = 63
MAX_INT64 = (1 << 63) - 1
_ED25519_SIGNATURE = 64
_DECIMAL = re.compile(r"0|[1-9][0-9]*")


# --- cosignatures (c2sp.org/tlog-cosignature, Ed25519 cosignature/v1) ---------------------------------


def _cosigned_message(timestamp: int, checkpoint_text: str) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n".encode() + checkpoint_text.encode()


def _check_timestamp(timestamp: int) -> int:
    if not isinstance(timestamp, int) or not 0 <= timestamp <= MAX_INT64:
        raise NoteError(f"a cosignature's timestamp must be 0 to 2^63-1, not {timestamp!r}")
    return timestamp


def _parse_checkpoint(text: str) -> Checkpoint:
    """Checkpoint.parse, and extension lines must be non-empty (c2sp.org/tlog-checkpoint)."""
    cp = Checkpoint.parse(text)
    if "" in cp.extensions:
        raise NoteError("a checkpoint's extension lines must be non-empty")
    return cp


def _b64(text: str, what: str) -> bytes:
    return note_b64(text, what)  # strict: only the canonical encoding of the bytes


@dataclass(frozen=True)
class CosignatureVerifier:
    """A witness's cosigner key: its name and 32-byte Ed25519 public key, with key ID over type 0x04."""

    name: str
    public_key: bytes

    @property
    def id(self) -> bytes:
        return key_id(self.name, self.public_key, COSIGNATURE_V1)

    def __str__(self) -> str:
        material = base64.b64encode(bytes([COSIGNATURE_V1]) + self.public_key).decode()
        return f"{self.name}+{self.id.hex()}+{material}"

    def verify_note(self, note: str) -> int | None:
        """The timestamp of this cosigner's cosignature on the note's checkpoint text; None when the note
        has no signature line of this key (name and key ID); NoteError when it has one that does not
        verify, or the note or its text is malformed. With several lines of this key, all must verify
        and the latest timestamp is returned."""
        text, lines = _split_note(note)
        _parse_checkpoint(text)
        found: int | None = None
        for name, raw in lines:
            if name != self.name or raw[:4] != self.id:
                continue
            if len(raw) != 4 + 8 + _ED25519_SIGNATURE:
                raise NoteError(f"the cosignature of {name} is {len(raw)} bytes, not {4 + 8 + 64}")
            timestamp = int.from_bytes(raw[4:12], "big")
            if timestamp > MAX_INT64:
                raise NoteError(f"the cosignature of {name} has a timestamp above 2^63-1")
            if not Verifier(self.name, self.public_key).verify(_cosigned_message(timestamp, text), raw[12:]):
                raise NoteError(f"the cosignature of {name} does not verify")
            found = timestamp if found is None else max(found, timestamp)
        return found


def _split_note(note: str) -> tuple[str, list[tuple[str, bytes]]]:
    """A signed note's text and its signature lines as (key name, decoded base64); NoteError when the
    note is malformed (the checks of note.open_note, before any signature is verified)."""
    split = note.rfind("\n\n")
    if split < 0 or not note.endswith("\n"):
        raise NoteError("not a signed note: no blank line before the signatures")
    text, lines = note[: split + 1], note[split + 2 :].splitlines()
    if any(ord(c) < 0x20 and c != "\n" for c in text):
        raise NoteError("a note must not hold control characters other than newline")
    if not lines or len(lines) > MAX_SIGNATURES:
        raise NoteError(f"a note needs 1 to {MAX_SIGNATURES} signature lines")
    parsed = []
    for line in lines:
        if not line.startswith(DASH) or line.count(" ") != 2:
            raise NoteError(f"malformed signature line {line[:60]!r}")
        name, blob = line[len(DASH) :].split(" ")
        raw = _b64(blob, f"the signature of {name}")
        if not name or len(raw) < 5:
            raise NoteError(f"the signature line of {name!r} is too short")
        parsed.append((name, raw))
    return text, parsed


def cosigner_verifier(signer: Signer) -> CosignatureVerifier:
    v = signer.verifier()
    return CosignatureVerifier(v.name, v.public_key)


def cosignature_line(signer: Signer, checkpoint_text: str, timestamp: int) -> str:
    """One note signature line "— NAME base64(key ID || timestamp (8 bytes, big-endian) || Ed25519
    signature)" over "cosignature/v1\\ntime <timestamp>\\n" + checkpoint_text, ending in a newline."""
    _parse_checkpoint(checkpoint_text)
    _check_timestamp(timestamp)
    sig = signer.sign(_cosigned_message(timestamp, checkpoint_text))
    blob = cosigner_verifier(signer).id + timestamp.to_bytes(8, "big") + sig
    return f"{DASH}{signer.name} {base64.b64encode(blob).decode()}\n"


def cosigner_vkey(signer: Signer) -> str:
    """The witness's verifier key: "NAME+hex(key ID over type 0x04)+base64(0x04 || public key)"."""
    return str(cosigner_verifier(signer))


def parse_cosigner_vkey(text: str) -> CosignatureVerifier:
    """A cosigner vkey; NoteError unless it is type 0x04 with a 32-byte key and its ID matches."""
    parts = text.strip().split("+", 2)  # base64 may hold '+'
    if len(parts) != 3:
        raise NoteError("a cosigner key is NAME+KEYID+BASE64")
    name, hex_id, material = parts[0], parts[1], _b64(parts[2], "the cosigner key")
    if not name or any(c.isspace() for c in name) or not name.isprintable():
        raise NoteError(f"key name {name!r}: must be non-empty, without spaces or '+'")
    if len(material) != 33 or material[0] != COSIGNATURE_V1:
        raise NoteError("the cosigner key is not an Ed25519 cosignature/v1 key (0x04 and 32 bytes)")
    v = CosignatureVerifier(name, material[1:])
    if len(hex_id) != 8 or hex_id.lower() != v.id.hex():
        raise NoteError(f"the cosigner key's ID {hex_id} does not match its name and key")
    return v


# --- the witness's state ------------------------------------------------------------------------------


class _Locked:
    """The state file read under the lock; `put` writes it durably before returning."""

    def __init__(self, path: Path, logs: dict[str, dict[str, Any]]) -> None:
        self._path = path
        self._logs = logs

    def get(self, origin: str) -> tuple[int, bytes]:
        """(size, root) of the latest checkpoint cosigned for `origin`; (0, SHA-256("")) if none."""
        entry = self._logs.get(origin)
        if entry is None:
            return 0, EMPTY_ROOT
        return entry["size"], base64.b64decode(entry["root"])

    def checkpoint(self, origin: str) -> str | None:
        """The latest cosigned checkpoint note (log signature and cosignature), None if none."""
        entry = self._logs.get(origin)
        return None if entry is None else entry.get("checkpoint") or None

    def put(self, origin: str, size: int, root: bytes, checkpoint: str) -> None:
        self._logs[origin] = {"size": size, "root": base64.b64encode(root).decode(), "checkpoint": checkpoint}
        data = json.dumps({"version": 1, "logs": self._logs}, indent=1, sort_keys=True).encode() + b"\n"
        tmp = self._path.with_name(f".{self._path.name}.tmp")  # one writer at a time: we hold the lock
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._path)
        dir_fd = os.open(self._path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


class WitnessState:
    """Per log origin, the size and root of the latest checkpoint cosigned (and that note), in a JSON
    file (0600, in a 0700 folder). `locked()` holds a thread lock and an fcntl.flock on "<path>.lock"
    while the caller reads, checks and updates, so a check and its update are atomic across threads
    and processes. A missing file is the empty state; an unreadable one is an error, never reset."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock_path = self.path.with_name(self.path.name + ".lock")
        self._thread_lock = threading.Lock()

    @contextmanager
    def locked(self) -> Iterator[_Locked]:
        private_dir(self.path.parent, "witness state folder")
        with self._thread_lock:
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield _Locked(self.path, self._read())
            finally:
                os.close(fd)  # releases the flock

    def get(self, origin: str) -> tuple[int, bytes]:
        with self.locked() as state:
            return state.get(origin)

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        try:
            data = json.loads(raw)
            logs = data["logs"]
            for entry in logs.values():
                if not isinstance(entry["size"], int) or len(base64.b64decode(entry["root"])) != HASH_SIZE:
                    raise ValueError("bad entry")
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise SuanliError(f"witness state {self.path} is corrupt ({e}); refusing to start over") from e
        return logs


# --- the witness ----------------------------------------------------------------------------------------


class _Refuse(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _parse_decimal(text: str, what: str) -> int:
    if not _DECIMAL.fullmatch(text) or len(text) > 19 or int(text) > MAX_INT64:
        raise _Refuse(400, f"{what} {printable(text[:30])!s} is not a decimal number below 2^63")
    return int(text)


def _parse_request(body: bytes) -> tuple[int, list[bytes], str]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise _Refuse(400, "the request body is not UTF-8") from None
    head, sep, note = text.partition("\n\n")
    if not sep:
        raise _Refuse(400, "the request has no blank line before the checkpoint")
    lines = head.split("\n")
    if not lines[0].startswith("old "):
        raise _Refuse(400, "the request does not start with an 'old <size>' line")
    old = _parse_decimal(lines[0][4:], "the old size")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise _Refuse(400, f"{len(lines) - 1} consistency proof lines, at most {MAX_PROOF_LINES}")
    proof = []
    for i, line in enumerate(lines[1:]):
        try:
            digest = base64.b64decode(line, validate=True)
        except (binascii.Error, ValueError):
            digest = b""
        if len(digest) != HASH_SIZE or base64.b64encode(digest).decode() != line:
            raise _Refuse(400, f"consistency proof line {i + 1} is not a base64 32-byte hash")
        proof.append(digest)
    return old, proof, note


class Witness:
    """Cosigns checkpoints of the logs in `logs` (origin -> the log's note verifier) that are consistent
    with the latest one it cosigned for that log (c2sp.org/tlog-witness add-checkpoint)."""

    def __init__(
        self,
        signer: Signer,
        logs: dict[str, Verifier],
        state: WitnessState,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.signer = signer
        self.logs = dict(logs)
        self.state = state
        self.clock = clock
        self.verifier = cosigner_verifier(signer)

    def add_checkpoint(self, body: bytes) -> tuple[int, str, bytes]:
        """(HTTP status, content type, response body) for an add-checkpoint request body."""
        try:
            return 200, TEXT_CONTENT_TYPE, self._add(body).encode()
        except _Conflict as c:
            return 409, SIZE_CONTENT_TYPE, f"{c.size}\n".encode()
        except _Refuse as r:
            return r.status, TEXT_CONTENT_TYPE, (str(r) + "\n").encode()

    def _add(self, body: bytes) -> str:
        old, proof, note = _parse_request(body)
        origin = note.split("\n", 1)[0]
        log = self.logs.get(origin)
        if log is None:
            raise _Refuse(404, f"unknown log origin {printable(origin[:100])!s}")
        try:
            text, sigs = _split_note(note)
        except NoteError as e:
            raise _Refuse(400, f"malformed checkpoint note: {e}") from None
        try:
            open_note(note, [log])  # ignores unknown keys; a known key's line must verify
        except NoteError as e:
            raise _Refuse(403, f"the checkpoint is not signed by the log's key: {e}") from None
        try:
            cp = _parse_checkpoint(text)
        except NoteError as e:
            raise _Refuse(400, f"malformed checkpoint: {e}") from None
        if cp.text() != text or cp.origin != origin:
            raise _Refuse(400, "malformed checkpoint: not in canonical form")
        if cp.size > MAX_INT64:
            raise _Refuse(400, "the checkpoint's size is not below 2^63")
        if old > cp.size:
            raise _Refuse(400, f"the old size {old} is larger than the checkpoint's size {cp.size}")
        if cp.size == 0 and cp.root != EMPTY_ROOT:
            raise _Refuse(422, "a checkpoint of size 0 must have the empty tree's root")
        log_lines = "".join(
            f"{DASH}{name} {base64.b64encode(raw).decode()}\n"
            for name, raw in sigs
            if name == log.name and raw[:4] == log.id
        )
        with self.state.locked() as state:
            known_size, known_root = state.get(origin)
            if old != known_size:
                raise _Conflict(known_size)
            if old == 0:
                if proof:
                    raise _Refuse(422, "the consistency proof from size 0 must be empty")
            else:
                try:
                    verify_consistency(old, cp.size, known_root, cp.root, proof)
                except ProofError as e:
                    raise _Refuse(422, f"the checkpoint is not consistent with size {old}: {e}") from None
            timestamp = int(self.clock())
            if not 0 < timestamp <= MAX_INT64:
                raise SuanliError(f"the witness's clock reads {timestamp}, not a POSIX time after 1970")
            line = cosignature_line(self.signer, text, timestamp)
            state.put(origin, cp.size, cp.root, text + "\n" + log_lines + line)
        return line

    def latest(self, origin_hash: str) -> tuple[int, str, bytes]:
        """(status, content type, body) for `GET <prefix>/<origin hash>/checkpoint`: the latest
        checkpoint cosigned for the log whose origin's SHA-256 is `origin_hash` (lowercase hex)."""
        for origin in self.logs:
            if hashlib.sha256(origin.encode()).hexdigest() == origin_hash:
                with self.state.locked() as state:
                    note = state.checkpoint(origin)
                if note is not None:
                    return 200, TEXT_CONTENT_TYPE, note.encode()
                break
        return 404, TEXT_CONTENT_TYPE, b"no checkpoint cosigned for this log\n"


class _Conflict(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(f"the witness's latest size is {size}")
        self.size = size


# --- serving ------------------------------------------------------------------------------------------


class WitnessServer(ThreadingHTTPServer):
    daemon_threads = True
    witness: Witness
    url: str


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the spec recommends
    server_version = "suanli-witness"
    timeout = 60  # a client that stops sending mid-request is dropped
    server: WitnessServer

    def _answer(self, status: int, content_type: str, body: bytes, close: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, message: str, close: bool = False) -> None:
        self._answer(status, TEXT_CONTENT_TYPE, (message + "\n").encode(), close)

    def _guarded(self, fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception as e:  # one request's failure must not stop the witness
            traceback.print_exc(file=sys.stderr)
            try:
                self._error(500, f"internal error: {type(e).__name__}", close=True)
            except OSError:
                self.close_connection = True

    def do_POST(self) -> None:
        self._guarded(self._post)

    def do_GET(self) -> None:
        self._guarded(self._get)

    def _post(self) -> None:
        path = self.path.split("?", 1)[0]
        if path != "/add-checkpoint":
            self._error(404, "not found", close=True)
            return
        if self.headers.get("Transfer-Encoding"):
            self._error(411, "send the body with a Content-Length", close=True)
            return
        length_text = self.headers.get("Content-Length", "")
        if not length_text.isdigit():
            self._error(411 if not length_text else 400, "a Content-Length is required", close=True)
            return
        length = int(length_text)
        if length > MAX_BODY:
            self._error(413, f"the body is larger than {MAX_BODY} bytes", close=True)
            return
        body = self.rfile.read(length)
        if len(body) != length:
            self.close_connection = True
            return
        self._answer(*self.server.witness.add_checkpoint(body))

    def _get(self) -> None:
        path = self.path.split("?", 1)[0]
        m = re.fullmatch(r"/([0-9a-f]{64})/checkpoint", path)
        if m is None:
            self._error(404, "not found")
            return
        self._answer(*self.server.witness.latest(m.group(1)))

    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write(f"witness: {self.address_string()} {format % args}\n")


def _parse_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise BadInput("listen", listen, "must be HOST:PORT (port 0 picks a free one)")
    return host.removeprefix("[").removesuffix("]"), int(port)


def serve(
    listen: str, witness: Witness, ready: Callable[[WitnessServer], None] | None = None, announce: bool = True
) -> None:
    """Serve `witness` over HTTP on "HOST:PORT" until the process ends or `server.shutdown()` is called
    from another thread. Once bound it prints "witness listening on http://HOST:PORT" to stdout (unless
    not `announce`) and calls `ready(server)` (the server's `url` is that address, so port 0 works)."""
    host, port = _parse_listen(listen)

    class Server(WitnessServer):
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

    server = Server((host, port), _Handler)
    try:
        server.witness = witness
        bound_host, bound_port = server.server_address[:2]
        shown = f"[{bound_host}]" if ":" in str(bound_host) else str(bound_host)
        server.url = f"http://{shown}:{bound_port}"
        if announce:
            print(f"witness listening on {server.url}", flush=True)
        if ready is not None:
            ready(server)
        server.serve_forever(poll_interval=0.1)  # shutdown() returns within 0.1 s
    finally:
        server.server_close()


def load_or_create_signer(key_path: str | os.PathLike[str], name: str | None = None) -> Signer:
    """The signer key in `key_path` (signed-note "PRIVATE+KEY+NAME+KEYID+BASE64"); if the file does not
    exist, a new Ed25519 key named `name` (default: the file's stem, e.g. "w1" for w1.key) is written
    there, mode 0600, in a 0700 folder."""
    path = Path(key_path)
    try:
        return Signer.parse(path.read_text())
    except FileNotFoundError:
        pass
    except (OSError, UnicodeDecodeError, NoteError) as e:
        raise BadInput("witness key", str(path), f"cannot be read as a signer key ({e})") from None
    private_dir(path.parent, "witness key folder")
    signer = Signer.generate(name or path.stem)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return load_or_create_signer(path, name)
    with os.fdopen(fd, "w") as f:
        f.write(str(signer) + "\n")
        f.flush()
        os.fsync(f.fileno())
    return signer


def run_witness(
    listen: str,
    state_path: str,
    key_path: str,
    log_vkeys: list[str],
    name: str | None = None,
    json_out: bool = False,
) -> None:
    """Run a witness: its key from `key_path` (created if absent, see load_or_create_signer), its state
    in `state_path`, cosigning the logs whose note verifier keys are `log_vkeys` (each key's name is
    the log's origin). Prints its cosigner vkey to stderr, then serves until killed; with `json_out`,
    one JSON document on stdout instead ({"url", "cosigner_key", "logs"}) once it listens."""
    logs: dict[str, Verifier] = {}
    for text in log_vkeys:
        try:
            v = Verifier.parse(text)
        except NoteError as e:
            raise BadInput("log key", text, str(e)) from None
        if v.name in logs:
            raise BadInput("log key", text, f"a second key for origin {v.name}; give one key per log")
        logs[v.name] = v
    signer = load_or_create_signer(key_path, name)
    state = WitnessState(state_path)
    with state.locked():  # a state folder we cannot use, or a corrupt state file, stops us here
        pass
    vkey = cosigner_vkey(signer)
    if not json_out:
        print(f"witness cosigner key {vkey}", file=sys.stderr, flush=True)

    def ready(server: WitnessServer) -> None:
        if json_out:
            print(json.dumps({"url": server.url, "cosigner_key": vkey, "logs": sorted(logs)}), flush=True)

    serve(listen, Witness(signer, logs, state), ready, announce=not json_out)


# --- the client -----------------------------------------------------------------------------------------


class WitnessError(SuanliError):
    """A witness did not cosign."""


class WitnessConflict(WitnessError):
    """409: the old size sent is not the witness's latest cosigned size, which is `size`."""

    def __init__(self, size: int) -> None:
        super().__init__(f"the witness's latest cosigned size is {size}")
        self.size = size


class WitnessRefused(WitnessError):
    """Any other answer than 200 or 409 (`status` 0: no answer at all); `message` is one line."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = str(printable(" ".join(message.split()))) or "(no reason given)"
        super().__init__(f"witness refused ({status}): {self.message}" if status else self.message)


def add_checkpoint(url: str, old_size: int, proof: list[bytes], note: str, timeout: float = 10) -> list[str]:
    """Ask the witness at `url` (its submission prefix, or the full .../add-checkpoint URL) to cosign
    the signed checkpoint `note`, given a consistency proof from `old_size`. Returns the signature lines
    of its answer, each ending in a newline (append them to the note to verify them with the witness's
    CosignatureVerifier; they are not verified here)."""
    endpoint = url if url.rstrip("/").endswith("/add-checkpoint") else url.rstrip("/") + "/add-checkpoint"
    body = f"old {old_size}\n" + "".join(base64.b64encode(h).decode() + "\n" for h in proof) + "\n" + note
    request = urllib.request.Request(
        endpoint, data=body.encode(), method="POST", headers={"Content-Type": TEXT_CONTENT_TYPE}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = response.read(MAX_BODY + 1)
    except urllib.error.HTTPError as e:
        with e:
            detail = e.read(4096).decode("utf-8", "replace")
            content_type = (e.headers.get("Content-Type") or "").split(";")[0].strip()
        if e.code == 409:
            size = detail.removesuffix("\n")
            if content_type == SIZE_CONTENT_TYPE and _DECIMAL.fullmatch(size):
                raise WitnessConflict(int(size)) from None
        raise WitnessRefused(e.code, detail or str(e.reason)) from None
    except (urllib.error.URLError, OSError) as e:
        reason = e.reason if isinstance(e, urllib.error.URLError) else e
        raise WitnessRefused(0, f"cannot reach the witness at {endpoint}: {reason}") from None
    try:
        text = answer.decode("utf-8")
    except UnicodeDecodeError:
        raise WitnessRefused(200, "the witness's answer is not UTF-8") from None
    lines = text.splitlines(keepends=True)
    if (
        len(answer) > MAX_BODY
        or not lines
        or any(not (s.startswith(DASH) and s.endswith("\n")) for s in lines)
    ):
        raise WitnessRefused(200, "the witness's answer is not note signature lines")
    return lines
