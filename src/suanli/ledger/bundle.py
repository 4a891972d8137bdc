"""A ledger bundle: what another machine needs to check the log, or some of its entries, without our
database. JSON lines: a header (format, the log's key, the signed checkpoint, witnesses'
cosignatures, which entries follow), then one line per entry (index, kind, body in base64, and for a
partial bundle the entry's inclusion proof against the checkpoint).

A full bundle is checked by rebuilding the tree from every entry; a partial one by each entry's proof.
Either way every entry's DSSE signature and the checkpoint's signature are checked. A bundle that
cannot be read, or whose checkpoint is signed by another key than the one trusted, is refused
(BundleError); one whose contents do not match its checkpoint is tampered, and the report names the
first entry that does not match.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO

from suanli.ledger import merkle
from suanli.ledger.note import Checkpoint, NoteError, Verifier, open_note
from suanli.ledger.verify import CHUNK, SignatureCheck

FORMAT = "suanli-ledger-bundle/v1"
MAX_LINE = 4 << 20


class BundleError(ValueError):
    """The bundle cannot be read or is not signed by the trusted key (not a finding of tampering)."""


def write(path: Path, header: dict, entries: Iterable[dict]) -> int:
    """Write the bundle to a temporary name and rename it; returns the number of entries."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    count = 0
    try:
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(json.dumps({"format": FORMAT, **header}, sort_keys=True) + "\n")
            for e in entries:
                f.write(json.dumps(e, sort_keys=True, separators=(",", ":")) + "\n")
                count += 1
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return count


def entry_line(index: int, kind: str, body: bytes, proof: list[bytes] | None = None) -> dict:
    line = {"index": index, "kind": kind, "body": base64.b64encode(body).decode()}
    if proof is not None:
        line["proof"] = [base64.b64encode(h).decode() for h in proof]
    return line


def _lines(f: IO[str]) -> Iterable[tuple[int, dict]]:
    for number, raw in enumerate(iter(lambda: f.readline(MAX_LINE), ""), 1):
        if not raw.endswith("\n") and len(raw) >= MAX_LINE:
            raise BundleError(f"line {number} is longer than {MAX_LINE} bytes")
        try:
            doc = json.loads(raw)
        except ValueError:
            raise BundleError(f"line {number} is not JSON") from None
        if not isinstance(doc, dict):
            raise BundleError(f"line {number} is not a JSON object")
        yield number, doc


def _b64(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise BundleError(f"{what} is not a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BundleError(f"{what} is not valid base64") from None


def verify_bundle(
    path: Path,
    trusted: Verifier | None = None,
    workers: int | None = None,
    check_cosignature: Callable[[str, str, str], str | None] | None = None,
) -> dict:
    """Check a bundle; the report's `ok` is False with `first_bad` when its contents were tampered
    with. `trusted` pins the log's key (else the bundle's own key is used, and the report says so).
    `check_cosignature(witness key, checkpoint note, line)` says why a cosignature is bad, or None."""
    try:
        f = open(path, encoding="utf-8")  # noqa: SIM115 (closed below)
    except OSError as e:
        raise BundleError(f"{path}: {e.strerror or e}") from None
    with f:
        lines = _lines(f)
        try:
            _, header = next(lines)
        except StopIteration:
            raise BundleError("the bundle is empty") from None
        except UnicodeDecodeError:
            raise BundleError("the bundle is not UTF-8 text") from None
        if header.get("format") != FORMAT:
            raise BundleError(f"the first line is not a {FORMAT} header")
        try:
            key = Verifier.parse(str(header.get("log_key", "")))
        except NoteError as e:
            raise BundleError(f"log_key: {e}") from None
        if trusted is not None and (trusted.name, trusted.public_key) != (key.name, key.public_key):
            raise BundleError(f"the bundle's log key {key.name} is not the trusted key {trusted.name}")
        note = header.get("checkpoint")
        if not isinstance(note, str):
            raise BundleError("the header has no checkpoint")
        try:
            cp = Checkpoint.parse(open_note(note, [key])[0])
        except NoteError as e:
            if "does not verify" in str(e):
                return _report(False, header, 0, 0, {"checkpoint": True, "reason": str(e)}, key, trusted)
            raise BundleError(f"checkpoint: {e}") from None
        partial = bool(header.get("partial"))
        count = header.get("count")
        if not isinstance(count, int) or count < 0 or (not partial and count != cp.size):
            raise BundleError("count: must be the number of entries (all of them unless partial)")
        first_bad: dict | None = None
        tree = merkle.TreeBuilder()
        sigs = SignatureCheck([key], count, workers)
        chunk: list[tuple[int, str, bytes]] = []
        seen = 0
        try:
            for number, e in lines:
                index, kind = e.get("index"), e.get("kind")
                if not isinstance(index, int) or not isinstance(kind, str):
                    raise BundleError(f"line {number}: an entry needs an integer index and a kind")
                body = _b64(e.get("body"), f"line {number}: body")
                leaf = merkle.leaf_hash(body)
                if partial:
                    proof = [_b64(h, f"line {number}: proof") for h in e.get("proof") or []]
                    try:
                        merkle.verify_inclusion(index, cp.size, leaf, proof, cp.root)
                    except merkle.ProofError as err:
                        first_bad = first_bad or {"entry": index, "reason": f"inclusion proof: {err}"}
                else:
                    if index != tree.size:
                        raise BundleError(
                            f"line {number}: entry {index} where entry {tree.size} was expected"
                        )
                    tree.add(leaf)
                chunk.append((index, kind, body))
                seen += 1
                if len(chunk) >= CHUNK:
                    sigs.submit(chunk)
                    chunk = []
            if chunk:
                sigs.submit(chunk)
            if seen != count:
                raise BundleError(f"the bundle holds {seen} entries, its header says {count}")
            bad_sig = sigs.first_bad()
        finally:
            sigs.close()
        if bad_sig and (first_bad is None or bad_sig[0] < first_bad.get("entry", 1 << 62)):
            first_bad = {"entry": bad_sig[0], "reason": bad_sig[1]}
        if not partial and first_bad is None and tree.root() != cp.root:
            first_bad = {
                "checkpoint": True,
                "reason": f"the entries' root is not the checkpoint's at size {cp.size}",
            }
        cosigned = []
        for c in header.get("cosignatures") or []:
            if not isinstance(c, dict) or not check_cosignature:
                continue
            problem = check_cosignature(str(c.get("witness", "")), note, str(c.get("line", "")))
            if problem:
                first_bad = first_bad or {"cosignature": str(c.get("witness", ""))[:80], "reason": problem}
            else:
                cosigned.append(str(c.get("witness", "")).split("+")[0])
        report = _report(first_bad is None, header, cp.size, seen, first_bad, key, trusted)
        report["cosigned_by"] = cosigned
        return report


def _report(ok: bool, header: dict, size: int, entries: int, first_bad: dict | None, key: Verifier,
            trusted: Verifier | None) -> dict:  # fmt: skip
    return {
        "ok": ok,
        "origin": key.name,
        "size": size,
        "partial": bool(header.get("partial")),
        "entries_checked": entries,
        "signatures_checked": entries,
        "first_bad": first_bad,
        "key": str(key),
        "key_trusted": trusted is not None,
    }
