"""The witness (C2SP tlog-witness add-checkpoint, tlog-cosignature cosignature/v1): every status code of
the spec, cosignatures that verify and tampered ones that do not, state that survives a restart and
concurrent requests, and two witness processes that cosign honest growth and refuse forks and
rollbacks of a log."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import random
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from suanli.core.errors import SuanliError
from suanli.ledger.merkle import EMPTY_ROOT, consistency_proof, leaf_hash, root_of, subtree_of
from suanli.ledger.note import Checkpoint, NoteError, Signer, open_note, sign
from suanli.ledger.witness import (
    SIZE_CONTENT_TYPE,
    CosignatureVerifier,
    Witness,
    WitnessConflict,
    WitnessRefused,
    WitnessServer,
    WitnessState,
    add_checkpoint,
    cosignature_line,
    cosigner_vkey,
    parse_cosigner_vkey,
    serve,
)

ORIGIN = "example.com/suanli-ledger"
T0 = 1_700_000_000


def leaves(n: int, seed: int = 0) -> list[bytes]:
    rng = random.Random(seed)
    return [leaf_hash(rng.randbytes(16)) for _ in range(n)]


def checkpoint_note(signer: Signer, tree: list[bytes], origin: str = ORIGIN) -> str:
    return sign(Checkpoint(origin, len(tree), root_of(tree)).text(), signer)


def proof(old: int, tree: list[bytes]) -> list[bytes]:
    return consistency_proof(old, len(tree), subtree_of(tree)) if old else []


def body(old: int, hashes: list[bytes], note: str) -> bytes:
    return (
        f"old {old}\n" + "".join(base64.b64encode(h).decode() + "\n" for h in hashes) + "\n" + note
    ).encode()


@pytest.fixture
def log() -> Signer:
    return Signer.generate(ORIGIN)


@pytest.fixture
def witness_signer() -> Signer:
    return Signer.generate("witness.example/w1")


@pytest.fixture
def make_witness(tmp_path: Path, log: Signer, witness_signer: Signer) -> Callable[..., Witness]:
    def make(clock: Callable[[], float] = lambda: T0, path: Path | None = None) -> Witness:
        state = WitnessState(path or tmp_path / "state" / "witness.json")
        return Witness(witness_signer, {ORIGIN: log.verifier()}, state, clock=clock)

    return make


def cosign(w: Witness, old: int, tree: list[bytes], note: str) -> str:
    status, _, answer = w.add_checkpoint(body(old, proof(old, tree), note))
    assert status == 200, answer
    return answer.decode()


# --- add-checkpoint, in process ---------------------------------------------------------------------------


def test_first_checkpoint_growth_and_the_same_checkpoint_again_are_cosigned(make_witness, log):
    clock = iter(range(T0, T0 + 100))
    w = make_witness(clock=lambda: next(clock))
    vkey = parse_cosigner_vkey(cosigner_vkey(w.signer))
    tree = leaves(21)
    first = checkpoint_note(log, tree[:5])
    status, content_type, answer = w.add_checkpoint(body(0, [], first))  # old 0: an empty proof
    assert status == 200 and content_type.startswith("text/plain")
    line = answer.decode()
    assert line.startswith("\u2014 witness.example/w1 ") and line.endswith("\n") and line.count("\n") == 1
    assert vkey.verify_note(first + line) == T0
    grown = checkpoint_note(log, tree)
    assert vkey.verify_note(grown + cosign(w, 5, tree, grown)) == T0 + 1
    assert vkey.verify_note(grown + cosign(w, 21, tree, grown)) == T0 + 2  # same size, same root
    assert w.state.get(ORIGIN) == (21, root_of(tree))
    # the monitoring endpoint: the latest checkpoint with the log's signature and the cosignature
    status, _, latest = w.latest(hashlib.sha256(ORIGIN.encode()).hexdigest())
    assert status == 200
    assert open_note(latest.decode(), [log.verifier()])[0] == Checkpoint(ORIGIN, 21, root_of(tree)).text()
    assert vkey.verify_note(latest.decode()) == T0 + 2
    assert w.latest("00" * 32)[0] == 404


def test_every_refusal_has_the_status_of_the_spec(make_witness, log, witness_signer):
    w = make_witness()
    tree = leaves(40, seed=1)
    eight = checkpoint_note(log, tree[:8])
    cosign(w, 0, tree[:8], eight)
    grown = tree[:13]
    good = checkpoint_note(log, grown)
    good_proof = proof(8, grown)
    forked = list(tree[:8])
    forked[3] = leaf_hash(b"rewritten")
    stranger = Signer.generate(ORIGIN)  # the log's name, another key
    sig_line = good.splitlines()[-1]
    raw_sig = bytearray(base64.b64decode(sig_line.split(" ")[2]))
    raw_sig[10] ^= 1
    bad_sig = good.replace(sig_line, f"\u2014 {ORIGIN} {base64.b64encode(bytes(raw_sig)).decode()}")
    malformed_text = sign(f"{ORIGIN}\n013\n{base64.b64encode(root_of(grown)).decode()}\n", log)
    zero_bad_root = sign(Checkpoint(ORIGIN, 0, leaf_hash(b"x")).text(), log)
    cases = [
        # 400: malformed requests
        (b"", 400),
        (b"old 8\n", 400),
        (b"old 08\n\n" + good.encode(), 400),
        (b"old -1\n\n" + good.encode(), 400),
        (b"old 8 \n\n" + good.encode(), 400),
        (b"new 8\n\n" + good.encode(), 400),
        (b"old 8\nnot base64!\n\n" + good.encode(), 400),
        (b"old 8\n" + base64.b64encode(b"x" * 31) + b"\n\n" + good.encode(), 400),
        (body(8, [b"x" * 32] * 64, good), 400),  # more than 63 proof lines
        (b"old 8\n\n" + good.encode() + b"\xff", 400),
        (body(8, good_proof, good.replace("\n\n", "\n")), 400),  # no blank line before the signatures
        (body(8, good_proof, malformed_text), 400),  # signed, but not a checkpoint
        (body(8, good_proof, sign(Checkpoint(ORIGIN, 13, root_of(grown), ("",)).text(), log)), 400),
        (body(13, [], checkpoint_note(log, tree[:8])), 400),  # old size above the checkpoint's
        # 404: not a log this witness knows
        (body(8, good_proof, checkpoint_note(log, grown, origin="example.com/other")), 404),
        # 403: not signed by the log's key, or its line does not verify
        (body(8, good_proof, checkpoint_note(stranger, grown)), 403),
        (body(8, good_proof, sign(Checkpoint(ORIGIN, 13, root_of(grown)).text(), witness_signer)), 403),
        (body(8, good_proof, bad_sig), 403),
        # 422: the empty tree has one root; a proof from 0 is empty; proofs must verify; forks
        (body(0, [], zero_bad_root), 422),
        (body(8, [good_proof[0], *good_proof], good), 422),
        (body(8, [EMPTY_ROOT] * len(good_proof), good), 422),
        (body(8, [], checkpoint_note(log, forked)), 422),  # another root at the same size: a fork
        (body(8, proof(8, forked + tree[8:13]), checkpoint_note(log, forked + tree[8:13])), 422),
    ]
    for request, expected in cases:
        status, content_type, answer = w.add_checkpoint(request)
        assert (status, content_type) == (expected, "text/plain; charset=utf-8"), (request[:60], answer)
        assert answer.endswith(b"\n") and answer.count(b"\n") == 1
    # 409: the old size is not the witness's, and the answer says which size it has
    for old in (0, 5, 12):
        assert w.add_checkpoint(body(old, proof(old, grown), good)) == (409, SIZE_CONTENT_TYPE, b"8\n")
    assert w.state.get(ORIGIN) == (8, root_of(tree[:8]))  # nothing refused changed the state
    cosign(w, 8, grown, good)
    assert w.state.get(ORIGIN) == (13, root_of(grown))


def test_the_empty_tree_and_a_proof_from_it(make_witness, log):
    w = make_witness()
    tree = leaves(3)
    assert w.add_checkpoint(body(0, [tree[0]], checkpoint_note(log, tree)))[0] == 422  # must be empty
    cosign(w, 0, [], checkpoint_note(log, []))
    assert w.state.get(ORIGIN) == (0, EMPTY_ROOT)
    cosign(w, 0, tree, checkpoint_note(log, tree))


def test_state_survives_a_new_witness_on_the_same_file(tmp_path, make_witness, log):
    tree = leaves(30, seed=2)
    cosign(make_witness(), 0, tree[:9], checkpoint_note(log, tree[:9]))
    later = make_witness()  # a restart: a new Witness and WitnessState on the same file
    assert later.add_checkpoint(body(0, [], checkpoint_note(log, tree[:4]))) == (
        409,
        SIZE_CONTENT_TYPE,
        b"9\n",
    )
    cosign(later, 9, tree, checkpoint_note(log, tree))
    path = tmp_path / "state" / "witness.json"
    saved = json.loads(path.read_text())["logs"][ORIGIN]
    assert saved["size"] == 30 and base64.b64decode(saved["root"]) == root_of(tree)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    path.write_text("{not json")
    with pytest.raises(SuanliError, match="corrupt"):  # never silently start over from size 0
        make_witness().add_checkpoint(body(0, [], checkpoint_note(log, tree)))


def test_concurrent_requests_in_threads_one_cosignature(tmp_path, make_witness, log):
    tree = leaves(16, seed=3)
    cosign(make_witness(), 0, tree[:8], checkpoint_note(log, tree[:8]))
    request = body(8, proof(8, tree), checkpoint_note(log, tree))
    witnesses = [make_witness() for _ in range(8)]  # separate states: only the flock serializes them
    barrier = threading.Barrier(len(witnesses))
    results: list[tuple[int, str, bytes]] = []

    def submit(w: Witness) -> None:
        barrier.wait()
        results.append(w.add_checkpoint(request))

    threads = [threading.Thread(target=submit, args=(w,)) for w in witnesses]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r[0] for r in results) == [200] + [409] * 7
    assert all(r[2] == b"16\n" for r in results if r[0] == 409)


RACER = """
import sys
from suanli.ledger.note import Signer, Verifier
from suanli.ledger.witness import Witness, WitnessState
signer, log, path = Signer.parse(sys.argv[1]), Verifier.parse(sys.argv[2]), sys.argv[3]
request = sys.stdin.buffer.read()
print(Witness(signer, {log.name: log}, WitnessState(path)).add_checkpoint(request)[0], flush=True)
"""


def test_concurrent_requests_in_processes_one_cosignature(tmp_path, make_witness, log, witness_signer):
    tree = leaves(16, seed=4)
    cosign(make_witness(), 0, tree[:8], checkpoint_note(log, tree[:8]))
    request = body(8, proof(8, tree), checkpoint_note(log, tree))
    state = str(tmp_path / "state" / "witness.json")
    args = [sys.executable, "-c", RACER, str(witness_signer), str(log.verifier()), state]
    racers = [subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE) for _ in range(4)]
    for p in racers:  # each starts, then waits on its stdin: closing them all releases them together
        assert p.stdin is not None
        p.stdin.write(request)
    for p in racers:
        assert p.stdin is not None
        p.stdin.close()
    statuses = []
    for p in racers:
        assert p.stdout is not None
        statuses.append(int(p.stdout.read()))
        p.stdout.close()
        assert p.wait() == 0
    statuses.sort()
    assert statuses == [200, 409, 409, 409]
    assert make_witness().state.get(ORIGIN) == (16, root_of(tree))


# --- cosignatures ---------------------------------------------------------------------------------------


def test_cosignature_key_id_vkey_and_signed_message_follow_the_spec(witness_signer, log):
    public = witness_signer.verifier().public_key
    key_id = hashlib.sha256(b"witness.example/w1\n\x04" + public).digest()[:4]
    vkey = cosigner_vkey(witness_signer)
    material = base64.b64encode(b"\x04" + public).decode()
    assert vkey == f"witness.example/w1+{key_id.hex()}+{material}"
    assert key_id != witness_signer.verifier().id  # the type byte 0x04 is in the ID: never a log key
    v = parse_cosigner_vkey(vkey)
    assert v == CosignatureVerifier("witness.example/w1", public) and str(v) == vkey
    text = Checkpoint(ORIGIN, 7, root_of(leaves(7)), ("ext line",)).text()
    line = cosignature_line(witness_signer, text, 1679315147)
    name, blob = line.removeprefix("\u2014 ").removesuffix("\n").split(" ")
    raw = base64.b64decode(blob)
    assert name == "witness.example/w1" and len(raw) == 4 + 8 + 64 and raw[:4] == key_id
    assert raw[4:12] == (1679315147).to_bytes(8, "big")
    message = b"cosignature/v1\ntime 1679315147\n" + text.encode()  # extension lines included
    assert witness_signer.verifier().verify(message, raw[12:])
    for bad in (
        str(witness_signer.verifier()),  # a note key (type 0x01) is not a cosigner key
        vkey.replace(key_id.hex(), "00000000"),
        vkey.split("+", 1)[1],
        vkey[:-4],
    ):
        with pytest.raises(NoteError):
            parse_cosigner_vkey(bad)
    with pytest.raises(NoteError):
        cosignature_line(witness_signer, text, -1)
    with pytest.raises(NoteError):
        cosignature_line(witness_signer, text, 1 << 63)


def test_tampered_cosignatures_are_refused(witness_signer, log):
    v = parse_cosigner_vkey(cosigner_vkey(witness_signer))
    text = Checkpoint(ORIGIN, 5, root_of(leaves(5))).text()
    note = sign(text, log)
    line = cosignature_line(witness_signer, text, T0)
    assert v.verify_note(note + line) == T0
    assert v.verify_note(note) is None  # no line of this witness
    other = Signer.generate("witness.example/w1")  # same name, another key: not this witness's line
    assert v.verify_note(note + cosignature_line(other, text, T0)) is None
    raw = bytearray(base64.b64decode(line.split(" ")[2]))
    for i in (11, 20, 75):  # the timestamp, the signature
        bad = bytearray(raw)
        bad[i] ^= 1
        with pytest.raises(NoteError, match="does not verify"):
            v.verify_note(note + f"\u2014 witness.example/w1 {base64.b64encode(bytes(bad)).decode()}\n")
    with pytest.raises(NoteError, match="does not verify"):  # the checkpoint changed under it
        v.verify_note(sign(Checkpoint(ORIGIN, 6, root_of(leaves(6))).text(), log) + line)
    with pytest.raises(NoteError, match="bytes"):
        v.verify_note(note + f"\u2014 witness.example/w1 {base64.b64encode(bytes(raw[:-1])).decode()}\n")
    # a cosignature is not a log signature, and a log signature is not a cosignature
    with pytest.raises(NoteError, match="no signature from a known key"):
        open_note(text + "\n" + line, [witness_signer.verifier()])
    assert v.verify_note(sign(text, witness_signer)) is None


# --- HTTP: the server in a thread, the client ---------------------------------------------------------------


@pytest.fixture
def server(make_witness) -> Iterator[WitnessServer]:
    ready = threading.Event()
    holder: list[WitnessServer] = []

    def on_ready(s: WitnessServer) -> None:
        holder.append(s)
        ready.set()

    thread = threading.Thread(target=serve, args=("127.0.0.1:0", make_witness(), on_ready), daemon=True)
    thread.start()
    assert ready.wait(30)
    yield holder[0]
    holder[0].shutdown()
    thread.join()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_http_endpoint_and_client(capsys, server, log):
    assert capsys.readouterr().out == f"witness listening on {server.url}\n"
    tree = leaves(10, seed=5)
    note = checkpoint_note(log, tree[:4])
    lines = add_checkpoint(server.url, 0, [], note)
    v = parse_cosigner_vkey(cosigner_vkey(server.witness.signer))
    assert len(lines) == 1 and v.verify_note(note + "".join(lines)) == T0
    with pytest.raises(WitnessConflict) as conflict:
        add_checkpoint(server.url + "/add-checkpoint", 0, [], checkpoint_note(log, tree))
    assert conflict.value.size == 4
    lines = add_checkpoint(server.url, conflict.value.size, proof(4, tree), checkpoint_note(log, tree))
    assert v.verify_note(checkpoint_note(log, tree) + "".join(lines)) == T0
    with pytest.raises(WitnessRefused) as refused:
        add_checkpoint(server.url, 10, [], checkpoint_note(log, tree, origin="example.com/nope"))
    assert refused.value.status == 404 and "\n" not in refused.value.message
    with pytest.raises(WitnessRefused) as refused:
        add_checkpoint(f"http://127.0.0.1:{_free_port()}", 0, [], note)
    assert refused.value.status == 0
    origin_hash = hashlib.sha256(ORIGIN.encode()).hexdigest()

    def request(method: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection(server.url.removeprefix("http://"), timeout=30)
        try:
            conn.request(method, path, headers=headers or {})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    status, latest = request("GET", f"/{origin_hash}/checkpoint")
    assert status == 200 and v.verify_note(latest.decode()) == T0
    assert request("GET", "/nothing")[0] == 404
    assert request("POST", "/elsewhere", {"Content-Length": "0"})[0] == 404
    assert request("POST", "/add-checkpoint", {"Content-Length": str(2 << 20)})[0] == 413  # body unsent
    assert request("POST", "/add-checkpoint", {"Content-Length": "0"})[0] == 400


def test_a_failing_request_is_answered_500_and_the_server_goes_on(server, log, monkeypatch):
    def broken(body: bytes) -> tuple[int, str, bytes]:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(server.witness, "add_checkpoint", broken)
    with pytest.raises(WitnessRefused) as refused:
        add_checkpoint(server.url, 0, [], checkpoint_note(log, leaves(2)))
    assert refused.value.status == 500 and "disk on fire" not in refused.value.message
    monkeypatch.undo()
    assert len(add_checkpoint(server.url, 0, [], checkpoint_note(log, leaves(2)))) == 1


# --- two witness processes and a log that misbehaves --------------------------------------------------------


class Processes:
    """Witness processes started by `run_witness`; each is waited for by its ready line on stdout."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.procs: dict[str, subprocess.Popen[str]] = {}

    def start(self, name: str, state: Path, key: Path, log_vkeys: list[str]) -> str:
        code = (
            "from suanli.ledger.witness import run_witness; "
            f"run_witness('127.0.0.1:0', {str(state)!r}, {str(key)!r}, {log_vkeys!r})"
        )
        err = self.folder / f"{name}.{len(self.procs)}.stderr"
        with err.open("wb") as stderr:
            p = subprocess.Popen(
                [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=stderr, text=True
            )
        assert p.stdout is not None
        line = p.stdout.readline()  # the ready line, or "" if the process ended
        url = line.split()[-1] if line else ""
        self.procs[url or f"failed-{len(self.procs)}"] = p
        assert line.startswith("witness listening on http://127.0.0.1:"), (line, err.read_text())
        return url

    def stop(self, url: str) -> None:
        p = self.procs.pop(url)
        p.terminate()
        p.wait(timeout=30)
        assert p.stdout is not None
        p.stdout.close()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    procs = Processes(tmp_path)
    try:
        yield procs
    finally:
        for url in list(procs.procs):
            procs.stop(url)


def test_two_witnesses_cosign_growth_and_refuse_forks_and_rollbacks(tmp_path, processes, log):
    w1 = Signer.generate("witness.example/w1")
    (tmp_path / "keys").mkdir(mode=0o700)
    (tmp_path / "keys" / "w1.key").write_text(str(w1) + "\n")
    urls = {
        "w1": processes.start(
            "w1", tmp_path / "w1" / "state.json", tmp_path / "keys" / "w1.key", [str(log.verifier())]
        ),
        "w2": processes.start(
            "w2", tmp_path / "w2" / "state.json", tmp_path / "keys" / "w2.key", [str(log.verifier())]
        ),
    }
    w2_key = tmp_path / "keys" / "w2.key"  # made by the witness at its first start, named after the file
    assert stat.S_IMODE(w2_key.stat().st_mode) == 0o600
    w2 = Signer.parse(w2_key.read_text())
    assert w2.name == "w2"
    verifiers = {"w1": parse_cosigner_vkey(cosigner_vkey(w1)), "w2": parse_cosigner_vkey(cosigner_vkey(w2))}
    seen = dict.fromkeys(urls, 0)  # the size each witness last cosigned, as the log knows it
    tree: list[bytes] = []
    refusals = 0

    def publish(new_tree: list[bytes]) -> None:
        """The honest log: every witness cosigns the new checkpoint, and each cosignature verifies."""
        note = checkpoint_note(log, new_tree)
        for name, url in urls.items():
            lines = add_checkpoint(url, seen[name], proof(seen[name], new_tree), note)
            assert verifiers[name].verify_note(note + "".join(lines)) is not None
            seen[name] = len(new_tree)

    for round_ in range(12):
        rng = random.Random(round_)
        tree = tree + [leaf_hash(rng.randbytes(16)) for _ in range(rng.randint(1, 40))]
        publish(tree)
        # a fork: the log signs another tree in which one old entry changed, at the same size or grown
        size = len(tree)
        forked = list(tree)
        forked[rng.randrange(size)] = leaf_hash(rng.randbytes(16))
        forked += [leaf_hash(rng.randbytes(16)) for _ in range(rng.choice([0, 0, rng.randint(1, 20)]))]
        fork_note = checkpoint_note(log, forked)
        for url in urls.values():
            with pytest.raises(WitnessRefused) as refused:
                add_checkpoint(url, size, proof(size, forked), fork_note)
            assert refused.value.status == 422, refused.value.message
            with pytest.raises(WitnessConflict) as conflict:  # nor as a first checkpoint
                add_checkpoint(url, 0, [], fork_note)
            assert conflict.value.size == size
            refusals += 1
    assert refusals == 12 * len(urls)  # every fork caught by every witness

    # a rollback: the log deletes its last entries and signs the smaller tree
    size = len(tree)
    truncated = tree[: size - 7]
    rollback = checkpoint_note(log, truncated)
    for url in urls.values():
        with pytest.raises(WitnessRefused) as refused:  # from the witness's size: old > new
            add_checkpoint(url, size, [], rollback)
        assert refused.value.status == 400
        for old in (0, len(truncated) - 3, len(truncated)):  # from any older size: not the witness's
            with pytest.raises(WitnessConflict) as conflict:
                add_checkpoint(url, old, proof(old, truncated), rollback)
            assert conflict.value.size == size

    # w1 restarted on the same state and key still holds the size and refuses the rollback
    processes.stop(urls["w1"])
    urls["w1"] = processes.start(
        "w1", tmp_path / "w1" / "state.json", tmp_path / "keys" / "w1.key", [str(log.verifier())]
    )
    with pytest.raises(WitnessConflict) as conflict:
        add_checkpoint(urls["w1"], len(truncated), [], rollback)
    assert conflict.value.size == size
    publish(tree + leaves(5, seed=99))  # and the honest log goes on
