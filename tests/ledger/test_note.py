"""Signed notes and checkpoints: byte for byte the Go reference's example, and refusals with reasons."""

from __future__ import annotations

import pytest

from suanli.ledger.merkle import EMPTY_ROOT
from suanli.ledger.note import Checkpoint, NoteError, Signer, Verifier, open_note, sign

# golang.org/x/mod/sumdb/note's documented example key and note.
VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
SIGNATURE = "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
NOTE = TEXT + "\n\u2014 PeterNeumann " + SIGNATURE + "\n"


def test_the_reference_note_byte_for_byte():
    signer, verifier = Signer.parse(SKEY), Verifier.parse(VKEY)
    assert str(signer) == SKEY and str(verifier) == VKEY and signer.verifier() == verifier
    assert sign(TEXT, signer) == NOTE  # Ed25519 is deterministic
    assert open_note(NOTE, [verifier]) == (TEXT, ["PeterNeumann"])


def test_tampering_and_unknown_keys_are_refused_with_the_reason():
    verifier = Verifier.parse(VKEY)
    with pytest.raises(NoteError, match="does not verify"):
        open_note(NOTE.replace("cryptography", "cryptographY"), [verifier])
    other = Signer.generate("PeterNeumann")  # same name, another key: ignored, so nothing verifies
    with pytest.raises(NoteError, match="no signature from a known key"):
        open_note(NOTE, [other.verifier()])
    for bad in (
        VKEY.replace("c74f20a3", "c74f20a4"),
        VKEY[:-4],
        "PeterNeumann+c74f20a3",
        "a b+00000000+AA==",
    ):
        with pytest.raises(NoteError):
            Verifier.parse(bad)
    with pytest.raises(NoteError, match="newline"):
        sign("no newline", Signer.parse(SKEY))


def test_a_checkpoint_signed_by_the_log_and_cosigned():
    log, witness = Signer.generate("ledger.example/log"), Signer.generate("witness.example/w1")
    cp = Checkpoint("ledger.example/log", 0, EMPTY_ROOT)
    assert cp.text() == "ledger.example/log\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"
    note = sign(cp.text(), log, witness)
    text, names = open_note(note, [log.verifier(), witness.verifier()])
    assert Checkpoint.parse(text) == cp and names == ["ledger.example/log", "witness.example/w1"]
    for bad in ("o\n01\nAA==\n", "o\n1\nAA==\n", "\n1\n" + cp.text().split("\n")[2] + "\n", "o\n1\n"):
        with pytest.raises(NoteError):
            Checkpoint.parse(bad)
