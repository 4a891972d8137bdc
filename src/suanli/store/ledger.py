"""The provenance ledger's log in the store: entries at consecutive indices, the hashes of the perfect
subtrees (written once, never changed), and one head row (size, root, the log's key) that every append
locks, so appends are integrated in order, in batches, with no gap and no duplicate. Each append signs
its entries (DSSE envelopes) and a checkpoint of the new tree with the pool's key, indexes what the
entries name, and skips entries whose `source` is already in the log. Proofs read the nodes they need
in one query (ledger/merkle.py says which)."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import delete, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from suanli.core.errors import BadInput, NotFound
from suanli.core.files import write_private
from suanli.ledger import merkle, provenance, spool
from suanli.ledger.digest import Hashed
from suanli.ledger.note import Checkpoint, NoteError, Signer, Verifier, sign
from suanli.ledger.statement import envelope
from suanli.ledger.witness import (
    CosignatureVerifier,
    WitnessConflict,
    WitnessError,
    add_checkpoint,
    parse_cosigner_vkey,
)
from suanli.store import models as m
from suanli.store.paths import home
from suanli.store.store import Store

MAX_BODY_BYTES = 1 << 20
CACHED_LEVEL = 8
MAX_CACHED = 1 << 16
KEY_FILE = "ledger.key"


def pool_signer(path: Path | None = None) -> Signer:
    """The pool's ledger key (SUANLI_HOME/ledger.key, 0600), made on first use. Its name is the log's
    origin: this host's name and a random suffix, so two pools' logs are never confused."""
    path = path or home() / KEY_FILE
    if path.exists():
        try:
            return Signer.parse(path.read_text())
        except NoteError as e:
            raise BadInput("ledger key", str(path), f"is not a signer key ({e})") from None
    host = "".join(c for c in socket.gethostname() if c.isalnum() or c in "-.") or "localhost"
    signer = Signer.generate(f"{host}/suanli-ledger-{os.urandom(4).hex()}")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}")
    write_private(tmp, str(signer) + "\n")
    try:
        os.link(tmp, path)  # the first process to make the key wins; the others read its key
    except FileExistsError:
        return pool_signer(path)
    finally:
        tmp.unlink(missing_ok=True)
    return signer


@dataclass(frozen=True)
class Item:
    """One statement to append: its kind, the statement, and a `source` that makes it appended once."""

    kind: str
    doc: dict
    source: str | None = None


class LedgerLog:
    def __init__(self, store: Store, signer: Signer | None = None) -> None:
        self.store = store
        self._signer = signer
        self._upper: dict[tuple[int, int], bytes] = {}

    @property
    def signer(self) -> Signer:
        if self._signer is None:
            self._signer = pool_signer()
        return self._signer

    def append_statements(self, items: Sequence[Item]) -> list[int]:
        """Sign and append statements in one transaction; the indices they got (an item whose source
        is already in the log gets that entry's index and is not appended again)."""
        signer = self.signer
        bodies = []
        for item in items:
            body = json.dumps(envelope(item.doc, signer), sort_keys=True, separators=(",", ":")).encode()
            bodies.append((item.kind, body))
        return self._retrying(lambda: self._append(bodies, items))

    def append(self, entries: Sequence[tuple[str, bytes]]) -> tuple[int, int, bytes]:
        """Append raw (kind, body) entries in one transaction; (first index, new size, new root)."""
        first = self._retrying(lambda: self._append(entries, None))
        size, root = self.head()
        return (first[0] if first else size), size, root

    def _retrying(self, fn: Callable[[], list[int]]) -> list[int]:
        try:
            return fn()
        except IntegrityError:  # two first appends made the head row at once (PostgreSQL): once more
            return fn()

    def _append(self, entries: Sequence[tuple[str, bytes]], items: Sequence[Item] | None) -> list[int]:
        for kind, body in entries:
            if not kind or len(kind) > 32:
                raise BadInput("kind", kind, "must be 1-32 characters")
            if len(body) > MAX_BODY_BYTES:
                raise BadInput("entry", f"{len(body)} bytes", f"must be at most {MAX_BODY_BYTES} bytes")
        now = time.time()
        signer = self.signer
        key = str(signer.verifier())
        with self.store._tx() as s:
            head = s.get(m.LedgerHead, 1, with_for_update=True)
            if head is None:
                head = m.LedgerHead(id=1, size=0, root=merkle.EMPTY_ROOT, updated_at=now, key=key)
                s.add(head)
                s.flush()
            if head.key is None:
                head.key = key
            elif head.key != key:
                owner = head.key.split("+")[0]
                raise BadInput(
                    "ledger key", key.split("+")[0], f"this log is signed by {owner}; use its SUANLI_HOME"
                )
            done: dict[str, int] = {}
            if items is not None:  # entries already appended under the same source keep their index
                sources = [i.source for i in items if i.source]
                if sources:
                    done = dict(s.execute(select(m.LedgerRef.value, m.LedgerRef.entry).where(
                        m.LedgerRef.field == "source", m.LedgerRef.value.in_(sources))).all())  # fmt: skip
                keep = [j for j, i in enumerate(items) if not (i.source and i.source in done)]
                order = [done.get(i.source or "", -1) for i in items]
                entries = [entries[j] for j in keep]
                items = [items[j] for j in keep]
            else:
                order = [-1] * len(entries)
            first = head.size
            # The right border of the tree: the perfect subtrees of size's binary form, largest first.
            border = merkle.blocks(0, first)
            known = self._nodes(s, border)
            tree = merkle.TreeBuilder(first, [known[k] for k in border])
            new_nodes = []
            rows = []
            for kind, body in entries:
                leaf = merkle.leaf_hash(body)
                rows.append(
                    {"index": tree.size, "kind": kind, "body": body, "leaf_hash": leaf, "created_at": now}
                )
                new_nodes += [{"level": lv, "index": ix, "hash": h} for lv, ix, h in tree.add(leaf)]
            fresh = iter(range(first, first + len(rows)))
            indices = [i if i >= 0 else next(fresh) for i in order]
            if not rows:
                return indices
            s.execute(m.LedgerEntry.__table__.insert(), rows)
            s.execute(m.LedgerNode.__table__.insert(), new_nodes)
            if items is not None:
                refs = [{"entry": first + j, "field": f, "value": v, "role": r}
                        for j, item in enumerate(items) for f, v, r in refs_of(item)]  # fmt: skip
                if refs:
                    s.execute(m.LedgerRef.__table__.insert(), refs)
            head.size = tree.size
            head.root = tree.root()
            head.updated_at = now
            note = sign(Checkpoint(signer.name, head.size, head.root).text(), signer)
            s.add(m.LedgerCheckpoint(size=head.size, note=note, created_at=now))
            return indices

    def _nodes(
        self, s: Session | Connection, keys: Collection[tuple[int, int]]
    ) -> dict[tuple[int, int], bytes]:
        """The stored nodes `keys`, in one read. Nodes of CACHED_LEVEL and above (one per 256 leaves or
        more) are kept once read: a node is written once and never changed."""
        found = {k: self._upper[k] for k in keys if k in self._upper}
        keys = [k for k in keys if k not in found]
        if not keys:
            return found
        by_level: dict[int, list[int]] = {}
        for level, index in keys:
            by_level.setdefault(level, []).append(index)
        # One IN list per level, so both databases answer each from the primary key (a row-value IN
        # scans in SQLite); written as text because building the expression cost more than the read.
        # Only integers we computed go into it.
        where = " OR ".join(
            f'(level = {int(lv)} AND "index" IN ({", ".join(str(int(i)) for i in ix)}))'
            for lv, ix in by_level.items()
        )
        rows = s.execute(text(f'SELECT level, "index", hash FROM ledger_nodes WHERE {where}'))
        for level, index, h in rows:
            found[(level, index)] = bytes(h)
            if level >= CACHED_LEVEL and len(self._upper) < MAX_CACHED:
                self._upper[(level, index)] = bytes(h)
        missing = set(keys) - set(found)
        if missing:
            raise RuntimeError(f"the ledger's tree is missing nodes {sorted(missing)[:5]}")
        return found

    def head(self) -> tuple[int, bytes]:
        """(size, root) of the log as it is now."""
        with self.store._read() as s:
            head = s.get(m.LedgerHead, 1)
            return (0, merkle.EMPTY_ROOT) if head is None else (head.size, head.root)

    def _prove(self, size: int, proof: Callable[[merkle.Subtree], list[bytes]]) -> list[bytes]:
        """Run a proof over the stored nodes: one read for every node it needs."""
        needed = merkle.ranges_needed(proof)
        # A plain connection, not an ORM session: a proof is two small reads, and the session's own
        # work was most of its time.
        with self.store._read_engine.connect() as c:
            current = c.execute(text("SELECT size FROM ledger_head WHERE id = 1")).scalar() or 0
            if size > current:
                raise BadInput("size", size, f"must be at most the log's size, {current}")
            nodes = self._nodes(c, needed)
        return proof(lambda a, b: merkle.fold([nodes[k] for k in merkle.blocks(a, b)]))

    def root(self, size: int) -> bytes:
        """The root of the log's first `size` entries."""
        if size == 0:
            return merkle.EMPTY_ROOT
        current, root = self.head()
        if size == current:
            return root
        if not 0 < size < current:
            raise BadInput("size", size, f"must be 0 to the log's size, {current}")
        keys = merkle.blocks(0, size)
        with self.store._read() as s:
            nodes = self._nodes(s, keys)
        return merkle.fold([nodes[k] for k in keys])

    def inclusion(self, index: int, size: int) -> list[bytes]:
        if not 0 <= index < size:
            raise NotFound("entry", index, f"is not in the log's first {size} entries")
        return self._prove(size, lambda sub: merkle.inclusion_proof(index, size, sub))

    def consistency(self, old: int, new: int) -> list[bytes]:
        if not 0 < old <= new:
            raise BadInput("size", old, f"must be 1 to {new} for a proof to size {new}")
        return self._prove(new, lambda sub: merkle.consistency_proof(old, new, sub))

    def entry(self, index: int) -> dict:
        with self.store._read() as s:
            row = s.get(m.LedgerEntry, index)
            if row is None:
                raise NotFound("entry", index, "no such entry in the ledger")
            return {"index": row.index, "kind": row.kind, "body": row.body, "leaf_hash": row.leaf_hash,
                    "created_at": row.created_at}  # fmt: skip

    def entries(self, start: int = 0, end: int | None = None, chunk: int = 4000) -> Iterator[list[tuple]]:
        """(index, kind, body, leaf_hash, level-0 node hash) in index order, in chunks."""
        end = self.head()[0] if end is None else end
        q = text('SELECT e."index", e.kind, e.body, e.leaf_hash, n.hash FROM ledger_entries e '
                 'LEFT JOIN ledger_nodes n ON n.level = 0 AND n."index" = e."index" '
                 'WHERE e."index" >= :a AND e."index" < :b ORDER BY e."index"')  # fmt: skip
        for a in range(start, end, chunk):
            with self.store._read() as s:
                rows = s.execute(q, {"a": a, "b": min(a + chunk, end)}).all()
            yield [
                (i, k, bytes(b), bytes(lh), bytes(n) if n is not None else None) for i, k, b, lh, n in rows
            ]

    def key(self) -> Verifier | None:
        """The log's verifier key, as its first append fixed it (None for an empty log)."""
        with self.store._read() as s:
            head = s.get(m.LedgerHead, 1)
        return Verifier.parse(head.key) if head is not None and head.key else None

    def checkpoint(self, size: int | None = None) -> str:
        """The signed checkpoint at `size` (default: the latest)."""
        with self.store._read() as s:
            q = select(m.LedgerCheckpoint)
            q = q.where(m.LedgerCheckpoint.size == size) if size is not None else q
            row = s.scalars(q.order_by(m.LedgerCheckpoint.size.desc()).limit(1)).first()
        if row is None:
            raise NotFound(
                "checkpoint", "" if size is None else size, "the ledger has no such checkpoint yet"
            )
        return row.note

    def checkpoints(self) -> list[tuple[int, str]]:
        with self.store._read() as s:
            return [tuple(r) for r in s.execute(select(m.LedgerCheckpoint.size, m.LedgerCheckpoint.note)
                                                .order_by(m.LedgerCheckpoint.size))]  # fmt: skip

    def cosignatures(self, size: int | None = None) -> list[dict]:
        with self.store._read() as s:
            q = select(m.LedgerCosignature).order_by(m.LedgerCosignature.size, m.LedgerCosignature.id)
            if size is not None:
                q = q.where(m.LedgerCosignature.size == size)
            return [{"size": r.size, "witness": r.witness, "line": r.line, "created_at": r.created_at}
                    for r in s.scalars(q)]  # fmt: skip

    def add_cosignatures(self, size: int, witness: str, lines: Sequence[str]) -> None:
        now = time.time()
        with self.store._tx() as s:
            s.add_all(m.LedgerCosignature(size=size, witness=witness, line=line.rstrip("\n"), created_at=now)
                      for line in lines)  # fmt: skip

    def find(self, field: str, value: str, role: str | None = None, limit: int = 1000) -> list[int]:
        """Indices of the entries the index lists for field=value (newest last)."""
        with self.store._read() as s:
            q = select(m.LedgerRef.entry).where(m.LedgerRef.field == field, m.LedgerRef.value == value[:255])
            if role:
                q = q.where(m.LedgerRef.role == role)
            return sorted(set(s.scalars(q.limit(limit))))

    def manifest(self, path: Path) -> dict[str, dict] | None:
        """The manifest last hashed for the folder `path`, for an incremental re-hash."""
        key = hashlib.sha256(str(path).encode()).hexdigest()
        with self.store._read() as s:
            row = s.get(m.LedgerManifest, key)
        return json.loads(row.manifest) if row is not None else None

    def save_manifest(self, path: Path, manifest: dict[str, dict]) -> None:
        key = hashlib.sha256(str(path).encode()).hexdigest()
        with self.store._tx() as s:
            s.execute(delete(m.LedgerManifest).where(m.LedgerManifest.path_sha256 == key))
            s.add(m.LedgerManifest(path_sha256=key, path=str(path), manifest=json.dumps(manifest),
                                   updated_at=time.time()))  # fmt: skip

    def hash_artifact(
        self, path: Path, name: str | None = None, progress: Callable[[int], None] | None = None
    ) -> tuple[dict[str, str], Hashed]:
        """provenance.artifact for `path`, re-hashing a folder incrementally from its last manifest."""
        path = path.resolve()
        if not (path.is_dir() or path.is_file()):
            raise BadInput("path", str(path), "must be a regular file or a folder")
        if path in self.private_paths():
            raise BadInput("path", str(path), "is suanli's own state, not an artifact")
        previous = self.manifest(path) if path.is_dir() else None
        try:
            subjects, hashed = provenance.artifact(path, previous, name, progress, self.private_under(path))
        except OSError as e:
            raise BadInput("path", str(path), f"cannot be read ({e.strerror or e})") from None
        if path.is_dir():
            self.save_manifest(path, hashed.manifest)
        return subjects, hashed

    def private_paths(self) -> list[Path]:
        """SUANLI_HOME and the database's files. Never hashed: besides being no one's artifact, a process
        that opens and closes the SQLite file it uses drops its own locks on it (POSIX locks are per
        process), which corrupts the database."""
        paths = [home().resolve()]
        if self.store.path is not None:
            db = self.store.path.resolve()
            paths += [db, *(db.with_name(db.name + s) for s in ("-wal", "-shm", "-journal"))]
        return paths

    def private_under(self, root: Path) -> list[str]:
        """private_paths inside the folder `root`, relative to it (what hashing it must leave out)."""
        root = root.resolve()
        inside = [p for p in self.private_paths() if p != root and p.is_relative_to(root)]
        return [str(p.relative_to(root)) for p in inside]

    def ingest(self, directory: Path, *, job_id: int | None = None, user: str | None = None) -> list[int]:
        """Sign and append the statements spooled in `directory`, then remove their files. Statements
        from a job's spool are attributed to that job, whatever they say. A file that is not a spooled
        statement is left where it is and named in the error."""
        pending = spool.pending(directory)
        bad = [p.name for p, doc in pending if doc is None or doc["kind"] not in provenance.KINDS]
        items = []
        for path, doc in pending:
            if doc is None or doc["kind"] not in provenance.KINDS:
                continue
            statement = doc["statement"]
            params = statement.get("predicate", {}).get("buildDefinition", {}).get("externalParameters")
            if isinstance(params, dict) and job_id is not None:
                params["job_id"] = job_id
                if user is not None:
                    params["user"] = user
            items.append((path, Item(doc["kind"], statement, str(doc["source"])[:255])))
        indices = self.append_statements([i for _, i in items]) if items else []
        for path, _ in items:
            path.unlink(missing_ok=True)
        if bad:
            raise BadInput(
                "ledger spool", str(directory), f"holds files that are not statements: {', '.join(bad[:5])}"
            )
        return indices


def refs_of(item: Item) -> list[tuple[str, str, str]]:
    """What the search index lists for a statement: (field, value, role)."""
    doc = item.doc
    out = [("kind", item.kind, "")]
    if item.source:
        out.append(("source", item.source, ""))
    out += [("digest", sha, "subject") for _, sha in provenance.subjects_of(doc)]
    out += [("digest", sha, "input") for _, sha in provenance.inputs_of(doc)]
    build = doc.get("predicate", {}).get("buildDefinition", {})
    for dep in build.get("resolvedDependencies", []):
        commit = (
            isinstance(dep, dict) and isinstance(dep.get("digest"), dict) and dep["digest"].get("gitCommit")
        )
        if commit:
            out.append(("commit", str(commit), "input"))
    params = build.get("externalParameters", {})
    if isinstance(params, dict):
        for field, key in (("job", "job_id"), ("user", "user"), ("project", "project"), ("study", "study")):
            if params.get(key) is not None:
                out.append((field, str(params[key]), ""))
        for owner in params.get("flagged_owners") or ():  # a verdict by replication (run/verify.py)
            out.append(("flagged", str(owner), ""))
    return [(f, v[:255], r) for f, v, r in dict.fromkeys(out)]


def statement_of(body: bytes) -> dict:
    """The statement inside an entry's envelope, read without checking its signature (`verify` does)."""
    import base64

    try:
        doc = json.loads(base64.b64decode(json.loads(body)["payload"]))
    except (ValueError, KeyError, TypeError):
        return {}
    return doc if isinstance(doc, dict) else {}


def summary(index: int, kind: str, body: bytes, created_at: float | None = None) -> dict:
    """What `log`, `find` and `lineage` print of an entry."""
    doc = statement_of(body)
    pred = doc.get("predicate", {}) if isinstance(doc.get("predicate"), dict) else {}
    build = pred.get("buildDefinition", {})
    params = build.get("externalParameters", {}) if isinstance(build.get("externalParameters"), dict) else {}
    inputs = []
    for dep in build.get("resolvedDependencies", []):
        if isinstance(dep, dict) and isinstance(dep.get("digest"), dict):
            inputs.append({"name": dep.get("name", ""), **{k: v for k, v in dep["digest"].items()}})
    out = {
        "index": index,
        "kind": kind,
        "subjects": [{"name": n, "sha256": d} for n, d in provenance.subjects_of(doc)],
        "inputs": inputs,
        "job_id": params.get("job_id"),
        "user": params.get("user"),
        "invocation": pred.get("runDetails", {}).get("metadata", {}).get("invocationId"),
    }
    if created_at is not None:
        out["created_at"] = created_at
    return out


def lineage(log: LedgerLog, digest: str, max_entries: int = 10_000) -> dict:
    """The entries that led to `digest`: those whose subject it is, then, for each, the entries whose
    subjects are its inputs (datasets, code, a base model), and the attempts of the job a checkpoint
    or trial came from, back to entries with no recorded inputs."""
    entries: dict[int, dict] = {}
    edges: set[tuple[int, int, str]] = set()
    unresolved: list[str] = []
    frontier: list[tuple[str, int | None]] = [(digest, None)]
    seen: set[str] = set()

    def add(idx: int, e: dict) -> dict:
        """Keep an entry and follow its inputs."""
        entries[idx] = summary(idx, e["kind"], e["body"], e["created_at"])
        frontier.extend((i["sha256"], idx) for i in entries[idx]["inputs"] if i.get("sha256"))
        return entries[idx]

    while frontier and len(entries) < max_entries:
        d, consumer = frontier.pop()
        if d in seen:
            producers = [i for i in entries if any(s["sha256"] == d for s in entries[i]["subjects"])]
        else:
            seen.add(d)
            producers = log.find("digest", d, role="subject")
            if not producers and consumer is not None:
                unresolved.append(d)
        for idx in producers:
            if consumer is not None and idx != consumer:
                edges.add((idx, consumer, d))
            if idx in entries:
                continue
            e = log.entry(idx)
            job = add(idx, e)["job_id"]
            if job is not None and e["kind"] != "run":  # a checkpoint or trial: the job's attempts made it
                for run in log.find("job", str(job)):
                    r = entries.get(run) or log.entry(run)
                    if r["kind"] != "run":
                        continue
                    if run not in entries:
                        add(run, r)
                    edges.add((run, idx, f"job {job}"))
    return {
        "target": digest,
        "found": bool(entries),
        "entries": [entries[i] for i in sorted(entries)],
        "edges": [{"from": a, "to": b, "via": via} for a, b, via in sorted(edges)],
        "unresolved_inputs": sorted(set(unresolved)),
    }


# ---- witnesses ---------------------------------------------------------------------------------------

CONFIG_FILE = "ledger.yaml"


def witness_config(path: Path | None = None) -> tuple[list[tuple[str, CosignatureVerifier]], int]:
    """The witnesses the log asks to cosign (SUANLI_HOME/ledger.yaml: `witnesses:` a list of {url,
    key}, `quorum:` how many cosignatures a checkpoint needs, default all), as (url, key) and quorum."""
    import yaml

    path = path or home() / CONFIG_FILE
    if not path.exists():
        return [], 0
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise BadInput(CONFIG_FILE, str(path), f"is not readable YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(doc, dict) or set(doc) - {"witnesses", "quorum"}:
        raise BadInput(CONFIG_FILE, str(path), "must be a mapping with `witnesses` and optionally `quorum`")
    out = []
    for n, w in enumerate(doc.get("witnesses") or []):
        if not isinstance(w, dict) or not isinstance(w.get("url"), str) or not isinstance(w.get("key"), str):
            raise BadInput(
                f"witnesses[{n}]", str(w)[:80], "needs `url` and `key` (the witness's cosigner key)"
            )
        if not w["url"].startswith(("http://", "https://")):
            raise BadInput(f"witnesses[{n}].url", w["url"], "must be an http:// or https:// URL")
        try:
            out.append((w["url"], parse_cosigner_vkey(w["key"])))
        except NoteError as e:
            raise BadInput(f"witnesses[{n}].key", w["key"][:80], str(e)) from None
    quorum = doc.get("quorum", len(out))
    if not isinstance(quorum, int) or not 0 <= quorum <= len(out):
        raise BadInput(
            "quorum", quorum, f"must be a whole number from 0 to the number of witnesses ({len(out)})"
        )
    return out, quorum


def cosignature_problem(witness: str, note: str, line: str) -> str | None:
    """Why `line` is not a valid cosignature of `note` by the witness key `witness`; None if it is."""
    try:
        key = parse_cosigner_vkey(witness)
        ts = key.verify_note(note + line.rstrip("\n") + "\n")
    except NoteError as e:
        return str(e)
    if str(key) != witness:
        return "the witness key is not written in its canonical form"
    return None if ts is not None else "the line is not this witness's cosignature"


def cosign(log: LedgerLog, witnesses: Sequence[tuple[str, CosignatureVerifier]], timeout: float = 10) -> dict:
    """Ask each witness to cosign the latest checkpoint, proving consistency from the size it last
    cosigned; keep the cosignatures that verify. {witness name: "cosigned" or why not}."""
    if not witnesses:
        return {}
    note = log.checkpoint()
    size = int(note.split("\n")[1])
    have = {c["witness"]: c["size"] for c in log.cosignatures()}
    answers: dict[str, str] = {}
    for url, key in witnesses:
        vkey = str(key)
        if have.get(vkey) == size:
            answers[key.name] = "cosigned"
            continue
        old = have.get(vkey, 0)
        lines: list[str] = []
        for _ in range(2):  # once more from the size a 409 says the witness holds
            try:
                proof = log.consistency(old, size) if 0 < old < size else []
                lines = add_checkpoint(url, old, proof, note, timeout=timeout)
                break
            except WitnessConflict as c:
                if c.size > size:
                    answers[key.name] = (
                        f"the witness holds size {c.size}, more than this log's {size}: cut back or forked"
                    )
                    break
                old = c.size
            except (WitnessError, BadInput) as e:
                answers[key.name] = str(e)
                break
        if key.name in answers:
            continue
        good = [ln for ln in lines if cosignature_problem(vkey, note, ln) is None]
        if not good:
            answers[key.name] = "the witness answered without a valid cosignature"
            continue
        log.add_cosignatures(size, vkey, good[:1])
        answers[key.name] = "cosigned"
    return answers
