"""`suanli ledger`: the provenance ledger (add, log, show, find, prove, verify, lineage, export,
cosign, key, witness). A thin layer over suanli.store.ledger; every command first signs and appends
the statements spooled on this machine (compressions, checkpoints of runs outside the pool)."""

from __future__ import annotations

import base64
import getpass
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from suanli.cli.output import clock, emit_json, err, out, safe
from suanli.cli.state import db_url
from suanli.core.errors import BadInput, NotFound

app = typer.Typer(help="The provenance ledger: which data and code produced which model, verifiably.",
                  no_args_is_help=True)  # fmt: skip
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout, nothing else.")]
HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


def _log() -> Any:
    from suanli.ledger import spool
    from suanli.store.ledger import LedgerLog
    from suanli.store.store import Store

    log = LedgerLog(Store(db_url()))
    try:
        log.ingest(spool.spool_dir())
    except BadInput as e:  # a stray file in the spool must not stop the ledger's other commands
        err.print(f"warning: {safe(e)}")
    return log


def _ask_witnesses(log: Any) -> None:
    """The log asks its witnesses (SUANLI_HOME/ledger.yaml) to cosign the new checkpoint; one that
    does not is a warning here (`suanli ledger log` flags the checkpoint, `cosign` asks again)."""
    from suanli.store.ledger import cosign, witness_config

    witnesses, _ = witness_config()
    for name, answer in cosign(log, witnesses, timeout=5).items():
        if answer != "cosigned":
            err.print(f"warning: witness {safe(name)} did not cosign: {safe(answer)}")


@contextmanager
def _hashing(what: str) -> Iterator[Callable[[int], None] | None]:
    """Bytes hashed so far, on stderr while a large file or folder is read (only on a terminal)."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.progress import DownloadColumn, Progress, SpinnerColumn, TextColumn, TransferSpeedColumn

    columns = (SpinnerColumn(), TextColumn(f"hashing {safe(what)}"), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task("hash", total=None)
        yield lambda n: bar.advance(task, n)


def _entry_arg(log: Any, text: str) -> int:
    if not text.isdigit() or len(text) > 18:
        raise BadInput("entry", text, "must be an entry's index (a whole number; see `suanli ledger log`)")
    index = int(text)
    size = log.head()[0]
    if index >= size:
        raise NotFound(
            "entry",
            text,
            f"the ledger has {size} entries (0 to {size - 1})" if size else "the ledger is empty",
        )
    return index


def _digest_of(log: Any, target: str, what: str) -> str:
    """A SHA-256 (hex), an entry index (its first subject) or a path (hashed now)."""
    if not target.strip():
        raise BadInput(what, target, "must be a SHA-256 digest (64 hex digits), an entry index or a path")
    if HEX64.match(target):
        return target.lower()
    if target.isdigit():
        from suanli.store.ledger import summary

        e = log.entry(_entry_arg(log, target))
        subjects = summary(e["index"], e["kind"], e["body"])["subjects"]
        if not subjects:
            raise BadInput(what, target, "names an entry without subjects")
        return subjects[0]["sha256"]
    path = Path(target)
    if not path.exists():
        raise BadInput(
            what, target, "must be a SHA-256 digest (64 hex digits), an entry index or an existing path"
        )
    subjects, hashed = log.hash_artifact(path)
    return hashed.digest


@app.command()
def add(
    path: Annotated[
        str, typer.Argument(help="A file or folder to record (folders per file, with a manifest).")
    ],
    kind: Annotated[str, typer.Option("--kind", help="dataset or model.")] = "dataset",
    inputs: Annotated[
        list[str] | None,
        typer.Option("--input", help="What it was made from: a path, digest or entry (repeatable)."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Record a dataset or model made outside suanli (jobs, checkpoints, compressions and trials are
    recorded without this)."""
    from suanli.ledger import provenance as P
    from suanli.store.ledger import Item

    if kind not in ("dataset", "model"):
        raise BadInput("kind", kind, "must be dataset or model")
    target = Path(path)
    if not target.exists():
        raise BadInput("path", path, "does not exist")
    log = _log()
    deps = [P.dependency(f"input:{i}"[:200], _digest_of(log, i, "input")) for i in inputs or []]
    with _hashing(str(target)) as progress:
        subjects, hashed = log.hash_artifact(target, progress=progress)
    user = os.environ.get("SUANLI_USER") or getpass.getuser()
    doc = P.provenance(
        kind,
        subjects,
        external={"path": P.path_uri(target), "user": user, "files": len(hashed.manifest) or 1},
        dependencies=deps,
        builder="suanli ledger add",
        finished=__import__("time").time(),
    )
    index = log.append_statements([Item(kind, doc)])[0]
    _ask_witnesses(log)
    doc = {
        "index": index,
        "kind": kind,
        "sha256": hashed.digest,
        "subjects": len(subjects),
        "files_read": hashed.files_read,
        "files_reused": hashed.files_reused,
        "bytes_read": hashed.bytes_read,
    }
    if json_out:
        emit_json(doc)
        return
    out.print(f"entry {index}: {kind} {safe(path)} sha256:{hashed.digest} "
              f"({hashed.files_read} files read, {hashed.files_reused} unchanged)")  # fmt: skip


@app.command("log")
def log_(
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=10000, help="Newest entries shown.")] = 20,
    json_out: JsonOpt = False,
) -> None:
    """The latest checkpoint (with its cosignatures) and the newest entries."""
    from suanli.store.ledger import summary

    log = _log()
    size, root = log.head()
    entries = [summary(e["index"], e["kind"], e["body"], e["created_at"])
               for e in (log.entry(i) for i in range(size - 1, max(-1, size - 1 - limit), -1))]  # fmt: skip
    cosigned, quorum = _cosigned(log, size)
    doc = {
        "size": size,
        "root": base64.b64encode(root).decode(),
        "checkpoint": log.checkpoint() if size else None,
        "cosigned_by": cosigned,
        "quorum": quorum,
        "witnessed": len(cosigned) >= quorum,
        "entries": entries,
    }
    if json_out:
        emit_json(doc)
        return
    out.print(f"{size} entries, root {doc['root']}")
    if quorum:
        flag = "" if doc["witnessed"] else "  [bold red]NOT WITNESSED[/]"
        names = safe(", ".join(cosigned) or "-")
        out.print(f"cosigned by {len(cosigned)} of {quorum} required witnesses: {names}{flag}")
    for e in entries:
        subj = e["subjects"][0]["name"] if e["subjects"] else "-"
        more = f" (+{len(e['subjects']) - 1})" if len(e["subjects"]) > 1 else ""
        who = f"job {e['job_id']}" if e["job_id"] is not None else (e["user"] or "")
        out.print(
            f"{e['index']:>8}  {clock(e.get('created_at'))}  {e['kind']:<10} {safe(subj)}{more}  {safe(who)}"
        )


@app.command()
def show(entry: Annotated[str, typer.Argument(help="The entry's index.")], json_out: JsonOpt = False) -> None:
    """One entry: its statement, envelope and leaf hash."""
    import json

    from suanli.store.ledger import statement_of

    log = _log()
    e = log.entry(_entry_arg(log, entry))
    doc = {
        "index": e["index"],
        "kind": e["kind"],
        "created_at": e["created_at"],
        "leaf_hash": e["leaf_hash"].hex(),
        "statement": statement_of(e["body"]),
        "envelope": json.loads(e["body"]),
    }
    if json_out:
        emit_json(doc)
        return
    out.print(f"entry {doc['index']} ({doc['kind']}), leaf hash {doc['leaf_hash']}")
    out.print(safe(json.dumps(doc["statement"], indent=2)))


@app.command()
def find(
    digest: Annotated[
        str | None, typer.Argument(help="A SHA-256 (hex) the entries name, or a path to hash.")
    ] = None,
    job: Annotated[int | None, typer.Option("--job", help="Entries of this job.")] = None,
    user: Annotated[str | None, typer.Option("--user", help="Entries of this user.")] = None,
    kind: Annotated[str | None, typer.Option("--kind", help="Entries of this kind.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Entries that name a digest (as what they made or what they used), or of a job, user or kind."""
    from suanli.store.ledger import summary

    log = _log()
    queries = []
    if digest is not None:
        queries.append(("digest", _digest_of(log, digest, "digest")))
    if job is not None:
        queries.append(("job", str(job)))
    if user is not None:
        queries.append(("user", user))
    if kind is not None:
        queries.append(("kind", kind))
    if not queries:
        raise BadInput("find", "", "needs a DIGEST, --job, --user or --kind")
    found: set[int] | None = None
    for field, value in queries:
        hits = set(log.find(field, value))
        found = hits if found is None else found & hits
    entries = []
    for i in sorted(found or ()):
        e = log.entry(i)
        entries.append(summary(i, e["kind"], e["body"], e["created_at"]))
    if json_out:
        emit_json({"query": dict(queries), "entries": entries})
        return
    if not entries:
        out.print("no entries")
    for e in entries:
        subj = ", ".join(safe(s["name"]) for s in e["subjects"][:3])
        out.print(f"{e['index']:>8}  {e['kind']:<10} {subj}")


@app.command()
def prove(
    entry: Annotated[str, typer.Argument(help="The entry's index.")],
    json_out: JsonOpt = False,
) -> None:
    """An inclusion proof of the entry against the latest checkpoint, checked before it is printed."""
    from suanli.ledger import merkle
    from suanli.ledger.note import Checkpoint, open_note

    log = _log()
    index = _entry_arg(log, entry)
    note = log.checkpoint()
    cp = Checkpoint.parse(open_note(note, [log.key()])[0])
    e = log.entry(index)
    proof = log.inclusion(index, cp.size)
    merkle.verify_inclusion(index, cp.size, e["leaf_hash"], proof, cp.root)
    doc = {
        "index": index,
        "size": cp.size,
        "leaf_hash": e["leaf_hash"].hex(),
        "proof": [base64.b64encode(h).decode() for h in proof],
        "checkpoint": note,
        "verified": True,
    }
    if json_out:
        emit_json(doc)
        return
    out.print(f"entry {index} is in the log of size {cp.size} (proof of {len(proof)} hashes, verified)")
    for h in doc["proof"]:
        out.print(f"  {h}")
    out.print(safe(note.rstrip("\n")))


@app.command()
def verify(
    bundle: Annotated[
        Path | None, typer.Option("--bundle", help="Check an exported bundle, not the database.")
    ] = None,
    key: Annotated[
        str | None, typer.Option("--key", help="The log's verifier key to trust (NAME+ID+KEY).")
    ] = None,
    checkpoint: Annotated[
        Path | None, typer.Option("--checkpoint", help="A checkpoint you kept: the log must still extend it.")
    ] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", min=1, max=256, help="Processes checking signatures.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Recompute the whole tree, every signature and proof. Exit 1 when something was tampered with
    (the first bad entry is named), 2 when the input itself is wrong."""
    from suanli.ledger.note import NoteError, Verifier

    trusted = None
    if key is not None:
        try:
            trusted = Verifier.parse(key)
        except NoteError as e:
            raise BadInput("key", key, str(e)) from None
    if bundle is not None:
        report = _verify_bundle(bundle, trusted, workers)
    else:
        report = _verify_store(trusted, workers, checkpoint)
    if json_out:
        emit_json(report)
    elif report["ok"]:
        out.print(f"ok: {report['entries_checked']} entries, {report['signatures_checked']} signatures"
                  + (f", {report.get('checkpoints_checked', 1)} checkpoints" if bundle is None else "")
                  + f" checked; log {safe(report['origin'])} at size {report['size']}")  # fmt: skip
        if report.get("witnessed") is False:
            err.print(
                "warning: the latest checkpoint lacks the cosignatures ledger.yaml requires (NOT WITNESSED)"
            )
        if not report.get("key_trusted", True):
            err.print("note: checked against the key the bundle carries; pass --key to pin the log's key")
    if not report["ok"]:
        bad = report["first_bad"] or {}
        where = (
            f"entry {bad['entry']}"
            if "entry" in bad
            else ", ".join(f"{k} {v}" for k, v in bad.items() if k != "reason")
        )
        err.print(f"TAMPERED: {safe(where)}: {safe(bad.get('reason', ''))}")
        raise typer.Exit(1)


def _verify_bundle(path: Path, trusted: Any, workers: int | None) -> dict:
    from suanli.ledger.bundle import BundleError, verify_bundle
    from suanli.store.ledger import cosignature_problem

    try:
        return verify_bundle(path, trusted, workers, check_cosignature=cosignature_problem)
    except BundleError as e:
        raise BadInput("bundle", str(path), str(e)) from None


def _verify_store(trusted: Any, workers: int | None, checkpoint: Path | None) -> dict:
    from suanli.store.ledger import KEY_FILE, cosignature_problem, pool_signer
    from suanli.store.ledger_audit import verify_log
    from suanli.store.paths import home

    log = _log()
    if trusted is None and (home() / KEY_FILE).exists():
        trusted = pool_signer().verifier()
    held = _held_checkpoint(checkpoint, log.key()) if checkpoint else None
    with _progress("verifying") as progress:
        report = verify_log(log, trusted, workers, progress, check_cosignature=cosignature_problem)
    report["key_trusted"] = trusted is not None
    report["witnessed"] = _witnessed(log)
    if held is not None and report["ok"]:
        report["held_checkpoint"] = _extends(log, held, report)
    return report


def _cosigned(log: Any, size: int) -> tuple[list[str], int]:
    """The witnesses that cosigned the checkpoint at `size`, and how many ledger.yaml requires."""
    from suanli.store.ledger import witness_config

    _, quorum = witness_config()
    return ([c["witness"].split("+")[0] for c in log.cosignatures(size)] if size else []), quorum


def _witnessed(log: Any) -> bool | None:
    """Whether the latest checkpoint has the cosignatures ledger.yaml requires (None: none required)."""
    size = log.head()[0]
    cosigned, quorum = _cosigned(log, size)
    return None if not quorum or not size else len(cosigned) >= quorum


def _held_checkpoint(path: Path, key: Any) -> Any:
    from suanli.ledger.note import Checkpoint, NoteError, open_note

    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise BadInput("checkpoint", str(path), f"cannot be read ({e})") from None
    if key is None:
        raise BadInput("checkpoint", str(path), "the ledger is empty; there is nothing to check it against")
    try:
        return Checkpoint.parse(open_note(text, [key])[0])
    except NoteError as e:
        raise BadInput(
            "checkpoint", str(path), f"is not a checkpoint signed by this log's key ({e})"
        ) from None


def _extends(log: Any, held: Any, report: dict) -> dict:
    """Whether the log still extends a checkpoint someone kept (else it was cut back or forked)."""
    from suanli.ledger import merkle

    size, root = log.head()
    if held.size > size:
        problem = f"the log has {size} entries, fewer than the {held.size} of the checkpoint you hold"
    elif log.root(held.size) != held.root:
        problem = f"the log's root at size {held.size} is not the one in the checkpoint you hold"
    else:
        proof = log.consistency(held.size, size) if held.size else []
        try:
            if held.size:
                merkle.verify_consistency(held.size, size, held.root, root, proof)
            problem = None
        except merkle.ProofError as e:
            problem = str(e)
    if problem:
        report["ok"] = False
        report["first_bad"] = {"checkpoint": held.size, "reason": problem}
    return {"size": held.size, "consistent": problem is None}


class _progress:
    """A Rich progress bar on stderr for a long check (none for a small log or without a terminal)."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.bar: Any = None

    def __enter__(self) -> Any:
        def update(done: int, total: int) -> None:
            if self.bar is None and total >= 50_000 and sys.stderr.isatty():
                from rich.progress import Progress

                self.bar = Progress(console=err, transient=True)
                self.bar.start()
                self.task = self.bar.add_task(self.what, total=total)
            if self.bar is not None:
                self.bar.update(self.task, completed=done)

        return update

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


@app.command()
def lineage(
    model: Annotated[str, typer.Argument(help="A model: its path, SHA-256 or entry index.")],
    json_out: JsonOpt = False,
) -> None:
    """The chain of entries from datasets and code to the model."""
    from suanli.store.ledger import lineage as trace

    log = _log()
    doc = trace(log, _digest_of(log, model, "model"))
    if json_out:
        emit_json(doc)
        return
    if not doc["found"]:
        out.print(f"no entry made {doc['target']}")
        return
    for e in doc["entries"]:
        subj = e["subjects"][0]["name"] if e["subjects"] else "-"
        made_from = [f"{edge['from']}" for edge in doc["edges"] if edge["to"] == e["index"]]
        src = f" <- {', '.join(made_from)}" if made_from else ""
        ins = ", ".join(f"{safe(i['name'])}" + (f"@{i['gitCommit'][:10]}" if i.get("gitCommit") else "")
                        for i in e["inputs"])  # fmt: skip
        out.print(
            f"{e['index']:>8}  {e['kind']:<10} {safe(subj)}{src}" + (f"  [inputs: {ins}]" if ins else "")
        )
    if doc["unresolved_inputs"]:
        out.print(f"inputs with no entry of their own: {len(doc['unresolved_inputs'])}")


@app.command()
def export(
    entries: Annotated[
        list[str] | None, typer.Argument(help="Entries to export with proofs (default: all).")
    ] = None,
    out_file: Annotated[Path, typer.Option("--out", "-o", help="The bundle file to write.")] = Path(
        "ledger-bundle.jsonl"
    ),
    json_out: JsonOpt = False,
) -> None:
    """A bundle another machine checks with `suanli ledger verify --bundle`, without this database."""
    from suanli.store.ledger_audit import export as write_bundle

    log = _log()
    indices = [_entry_arg(log, e) for e in entries] if entries else None
    if log.head()[0] == 0:
        raise BadInput("ledger", "", "is empty; there is nothing to export")
    if out_file.is_dir():
        raise BadInput("out", str(out_file), "is a folder; name a file")
    doc = write_bundle(log, out_file, indices)
    if json_out:
        emit_json(doc)
        return
    what = f"{doc['entries']} entries with proofs" if doc["partial"] else f"all {doc['entries']} entries"
    out.print(f"wrote {safe(doc['path'])}: {what} at size {doc['size']}")


@app.command()
def cosign(json_out: JsonOpt = False) -> None:
    """Ask the witnesses in SUANLI_HOME/ledger.yaml to cosign the latest checkpoint now."""
    from suanli.store.ledger import cosign as ask
    from suanli.store.ledger import witness_config

    witnesses, quorum = witness_config()
    log = _log()
    if log.head()[0] == 0:
        raise BadInput("ledger", "", "is empty; there is no checkpoint to cosign")
    answers = ask(log, witnesses)
    got = sum(1 for a in answers.values() if a == "cosigned")
    doc = {
        "size": log.head()[0],
        "witnesses": answers,
        "cosignatures": got,
        "quorum": quorum,
        "witnessed": got >= quorum,
    }
    if json_out:
        emit_json(doc)
    else:
        for name, answer in answers.items():
            out.print(f"{safe(name)}: {safe(answer)}")
        out.print(
            f"{got} of {quorum} required cosignatures"
            + ("" if doc["witnessed"] else " [bold red]NOT WITNESSED[/]")
        )
    if not doc["witnessed"]:
        raise typer.Exit(1)


@app.command()
def key(json_out: JsonOpt = False) -> None:
    """The pool's verifier key: give it to witnesses (`suanli ledger witness --log`) and auditors."""
    from suanli.store.ledger import pool_signer

    v = pool_signer().verifier()
    if json_out:
        emit_json({"origin": v.name, "key": str(v)})
    else:
        out.print(str(v))


@app.command()
def witness(
    listen: Annotated[
        str, typer.Option("--listen", help="HOST:PORT to serve add-checkpoint on.")
    ] = "127.0.0.1:7380",
    logs: Annotated[
        list[str] | None, typer.Option("--log", help="A log's verifier key to witness (repeatable).")
    ] = None,
    state: Annotated[Path | None, typer.Option("--state", help="The witness's state file.")] = None,
    key_file: Annotated[
        Path | None, typer.Option("--key", help="The witness's signer key file (made if absent).")
    ] = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Once listening, print {url, cosigner_key, logs} as one JSON line.")
    ] = False,
) -> None:
    """Run a witness (C2SP tlog-witness): cosign checkpoints that extend what it saw, refuse forks."""
    from suanli.ledger.note import NoteError, Verifier
    from suanli.ledger.witness import run_witness
    from suanli.store.paths import home

    if not logs:
        raise BadInput("log", "", "name at least one log key to witness (`suanli ledger key` prints it)")
    for vkey in logs:
        try:
            Verifier.parse(vkey)
        except NoteError as e:
            raise BadInput("log", vkey, str(e)) from None
    folder = home() / "witness"
    state_path, key_path = str(state or folder / "state.json"), str(key_file or folder / "witness.key")
    run_witness(listen, state_path, key_path, list(logs), json_out=json_out)
