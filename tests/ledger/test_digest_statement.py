"""Directory digests that re-read only what changed, and signed in-toto statements."""

from __future__ import annotations

import os

import pytest

from suanli.ledger.digest import file_sha256, hash_dir
from suanli.ledger.note import NoteError, Signer
from suanli.ledger.statement import envelope, open_envelope, pae, statement


def test_rehashing_reads_only_the_changed_file(tmp_path):
    model = tmp_path / "model"
    (model / "shards").mkdir(parents=True)
    for i in range(5):
        (model / "shards" / f"{i}.bin").write_bytes(os.urandom(200_000))
    (model / "config.json").write_text('{"layers": 2}')
    (model / "latest").symlink_to("shards/4.bin")
    first = hash_dir(model)
    assert first.files_read == 6 and first.bytes_read == 1_000_000 + 13
    assert first.manifest["latest"]["link"] == "shards/4.bin"
    assert hash_dir(model, first.manifest).files_read == 0  # nothing changed: nothing read
    (model / "config.json").write_text('{"layers": 3}')
    second = hash_dir(model, first.manifest)
    assert (second.files_read, second.bytes_read, second.files_reused) == (1, 13, 5)
    assert second.digest != first.digest
    assert second.manifest["config.json"]["sha256"] == file_sha256(model / "config.json")
    assert second.digest == hash_dir(model).digest  # the same as hashing from scratch
    copy = tmp_path / "copy"
    os.rename(model, copy)
    assert hash_dir(copy).digest == second.digest  # where it lies does not matter
    with pytest.raises(FileNotFoundError):
        hash_dir(tmp_path / "missing")


def test_a_signed_statement_opens_only_with_its_key_and_unchanged():
    # DSSE's own example of the pre-authentication encoding.
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )
    key = Signer.generate("ledger.example/pool")
    doc = statement({"model.pt": "ab" * 32}, "https://slsa.dev/provenance/v1", {"job": 7})
    env = envelope(doc, key)
    assert open_envelope(env, [key.verifier()]) == doc
    with pytest.raises(NoteError, match="no signature of a known key"):
        open_envelope(env, [Signer.generate("ledger.example/pool").verifier()])
    forged = dict(env, payload=envelope(statement({"model.pt": "cd" * 32}, "x", {}), key)["payload"])
    with pytest.raises(NoteError):
        open_envelope(forged, [key.verifier()])
    with pytest.raises(NoteError, match="not a DSSE envelope"):
        open_envelope({"payload": "%%"}, [key.verifier()])
