"""Fuzzing the agent's socket protocol: one real agent (started once for the module with `suanli agent
start` in its own SUANLI_HOME) gets generated raw payloads on its Unix socket: bytes, JSON values of
every type, requests with ops and fields of every type, submissions of missing, special and hostile job
files, oversized lines, requests without a newline, clients that close at once. Every answer is one
JSON line (an error: one line, exit code 1 or 2, never "could not handle") or the agent closes the
connection; afterwards the agent is the same live process, its log holds no traceback (but those of
KNOWN bugs), and a real job submitted through `suanli submit` succeeds. Requests go three at a time,
each on its own connection, all open at once.

Jobs the fuzzing stores run `true` on 0.01 CPU: a generated job file that would load is sent only if
that is all it runs (see `harmless`).

Seeded (derandomize=True) so CI is reproducible; benchmarks/bench_fuzz.py runs the same properties with
far more examples and a random seed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from test_fuzz_spec import (
    EXAMPLES,
    FUZZ,
    RANDOM_TEXT,
    TEXT,
    Known,
    hostile_yaml,
    regressions,
    spec_data,
    tolerating,
)

from jobhelpers import cli, wait_for
from suanli.core.errors import SuanliError
from suanli.jobs.spec import load_spec

ANSWER_TIMEOUT_S = 60.0  # the agent answers within its 10 s read deadline; this only catches a hang
MAX_REQUEST_BYTES = 1 << 20


@dataclass
class Agent:
    home: Path
    files: Path
    env: dict[str, str]
    pid: int
    socket: str


# ---- payloads ---------------------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(TEXT, children, max_size=3),
    max_leaves=6,
)
ODD = st.one_of(JSON_VALUES, st.sampled_from([0, -1, 2**64, 1e400, "", " ", "\x00", "\ud800", [], {}]))
OPS = st.one_of(
    st.just("submit"),
    st.just("submit"),
    st.just("submit"),
    st.sampled_from(["sync", "ping", "SUBMIT", "submit ", "stop", "", "cancel"]),
    ODD,
)
ENVS = st.one_of(
    st.dictionaries(st.sampled_from(["A", "B_1", "PATH", "1A", "", "A=B", "\x00", "\ud800"]) | TEXT,
                    st.sampled_from(["x", "", "a\nb", "\x00", "\ud800"]) | TEXT, max_size=3),
    ODD,
)  # fmt: skip
OVERRIDES = st.one_of(
    st.dictionaries(
        st.sampled_from(["backend", "ray_address", "user", "run", "resources", ""]),
        st.sampled_from(["local", "", "x" * 300, "\x00", "\ud800", "a\nb"]) | ODD,  # "ray": see request_doc
        max_size=3,
    ),
    ODD,
)
KEYS = st.sampled_from(["k1", "k-2", "a b", "", "x" * 101, "k\x00", "\ud800"]) | st.uuids().map(str) | ODD
# Paths the agent is asked to read; "@name" is a file in the module's folder (see bench_context), "@spec"
# the example's own generated job file.
PATHS = st.one_of(
    st.sampled_from([
        "@spec", "@spec", "@spec", "@dir", "@not-utf8", "@valid", "@empty", "@link-loop", "@no-access",
        "@bad\njob.yaml",
        "/nonexistent/job.yaml", "job.yaml", "", ".", "/", "/dev/null", "/dev/zero", "/dev/urandom",
        "/proc/self/status", "/proc/self/mem", "a\x00b", "\ud800", "\udcff.yaml", "x" * 5000, "/" * 3000,
    ]),
    TEXT,
    ODD,
)  # fmt: skip


ONE_IN_3, ONE_IN_4, ONE_IN_6 = st.integers(0, 2), st.integers(0, 3), st.integers(0, 5)


@st.composite
def request_doc(draw: st.DrawFn) -> dict:
    doc: dict = {"op": draw(OPS)}
    if doc["op"] == "submit" or draw(ONE_IN_4) == 0:
        doc["path"] = draw(PATHS)
    for field, values in (("env", ENVS), ("overrides", OVERRIDES), ("key", KEYS)):
        if draw(ONE_IN_3) == 0:
            doc[field] = draw(values)
    if isinstance(doc.get("overrides"), dict) and doc["overrides"].get("backend") == "ray":
        doc["overrides"]["backend"] = "local"  # a job on Ray would start a local Ray cluster
    if draw(ONE_IN_6) == 0:
        doc[draw(TEXT)] = draw(ODD)
    return doc


# Hostile files all run `true`; this one would run `xxx...` (a thousand x's), so it is left out here.
HOSTILE = hostile_yaml().filter(lambda text: not text.startswith("run: x"))
SMALL = 4096  # a generated job file this small is loaded before it is sent, to check it is harmless
SMALL_TEXT = RANDOM_TEXT.filter(lambda raw: len(raw) <= SMALL)  # larger ones are harmless by construction


@st.composite
def job_file(draw: st.DrawFn) -> bytes:
    """Contents for "@spec": random text, hostile YAML (on 0.01 CPU) or a structured spec forced to run
    `true` on 0.01 CPU (whatever else it holds; most also ask for more nodes than the pool has, so that
    few are stored and run). Random text that loads as a job is replaced when sent unless it is as
    harmless (see resolve_paths)."""
    kind = draw(KIND_OF_FILE)
    if kind <= 1:
        return draw(SMALL_TEXT)
    if kind == 2:
        return b"resources: {cpus: 0.01}\n" + draw(HOSTILE).encode("utf-8", errors="surrogatepass")
    data = draw(spec_data())
    data.update({"run": "true", "num_workers": 1, "retries": 0})
    data.pop("setup", None)
    if draw(KIND_OF_FILE):  # 9 in 10 span 2 nodes of the 1-node pool: checked whole, then refused, not run
        data["num_nodes"] = 2
    if data.get("backend") == "ray":
        data["backend"] = "local"
    if isinstance(data.get("resources"), dict):
        data["resources"] = {**data["resources"], "cpus": 0.01}
    else:
        data["resources"] = {"cpus": 0.01}
    text = yaml.safe_dump(data, allow_unicode=draw(st.booleans()), sort_keys=False)
    return text.encode("utf-8", errors="surrogatepass")


KIND_OF_FILE = st.integers(0, 9)


JOB_FILES = job_file()
REQUESTS = request_doc()
KIND_OF_PAYLOAD = st.integers(0, 19)
BYTES = st.binary(max_size=64)
OVERSIZED = st.sampled_from([MAX_REQUEST_BYTES - 20, MAX_REQUEST_BYTES, MAX_REQUEST_BYTES + 1])
ENDS = st.sampled_from(["shutdown", "shutdown", "shutdown", "keep", "keep", "close"])
NEWLINE = st.integers(0, 4)


def encode(doc: object, ascii_only: bool) -> bytes:
    return json.dumps(doc, ensure_ascii=ascii_only).encode("utf-8", errors="surrogatepass")


@st.composite
def payload(draw: st.DrawFn) -> tuple[bytes, bytes, str]:
    """(bytes sent, the "@spec" file's contents, how the client ends: "shutdown" its sending side and
    read the answer, "keep" sending open and read, or "close" at once)."""
    kind = draw(KIND_OF_PAYLOAD)
    spec = b""
    if kind <= 1:
        raw = draw(BYTES)
    elif kind <= 3:
        raw = encode(draw(JSON_VALUES), draw(st.booleans()))
    elif kind == 4:
        raw = b'{"op": "ping", "pad": "' + b"x" * draw(OVERSIZED) + b'"}'
    elif kind == 5:
        raw = b'{"op": "ping"}\n{"op": "sync"}' + draw(BYTES)
    else:
        doc = draw(REQUESTS)
        if kind >= 14:  # a submission of a generated job file
            doc.update(op="submit", path="@spec")
        raw = encode(doc, draw(st.booleans()))
        if doc.get("path") == "@spec":
            spec = draw(JOB_FILES)
    end = draw(ENDS)
    if end == "keep" or draw(NEWLINE):
        raw += b"\n"  # without it (and with the sending side open) the agent waits out its deadline
    return raw, spec, end


# ---- talking to the agent ---------------------------------------------------------------------------


def harmless(path: Path) -> bool:
    """True unless the job file loads as a job that does more than run `true` on 0.01 CPU locally."""
    try:
        spec = load_spec(path)
    except SuanliError:
        return True
    except Exception:
        return True  # a loader bug: the agent meets it too (and must answer one line)
    return (
        spec.run.strip() == "true" and not spec.setup and spec.resources.cpus <= 0.01
        and spec.backend == "local" and spec.world_size == 1 and spec.retries == 0
    )  # fmt: skip


def resolve_paths(agent: Agent, raw: bytes, spec: bytes, index: int = 0) -> bytes:
    """Write the "@spec" file and put the real paths of "@name" files in the request."""
    if b'"@' not in raw:
        return raw
    path = agent.files / f"spec{index}.yaml"
    path.write_bytes(spec)
    if len(spec) <= SMALL and not harmless(path):
        path.write_bytes(b"run: [\n")
    raw = raw.replace(b'"@spec"', f'"{path}"'.encode())
    return raw.replace(b'"@', f'"{agent.files}/'.encode())


def send(agent: Agent, raw: bytes, end: str) -> socket.socket | None:
    """A new connection with `raw` sent on it and ended as `end` says (None: closed at once)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(ANSWER_TIMEOUT_S)
    sock.connect(agent.socket)
    try:
        sock.sendall(raw)
        if end == "shutdown":
            sock.shutdown(socket.SHUT_WR)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the agent cut an oversized request off; it still answers
    if end == "close":
        sock.close()
        return None
    return sock


def receive(sock: socket.socket | None) -> bytes | None:
    """What came back on `sock` until the agent closed it (None for a connection the client closed)."""
    if sock is None:
        return None
    data = b""
    with sock:
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except ConnectionResetError:
            pass
        except TimeoutError:
            raise AssertionError(f"no answer within {ANSWER_TIMEOUT_S:.0f} s (got {data[:200]!r})") from None
    return data


def check_answer(agent: Agent, data: bytes | None) -> None:
    if not data:
        return  # the client closed first, or the agent closed the connection
    assert data.endswith(b"\n") and data.count(b"\n") == 1, f"not one line: {data[:300]!r}"
    answer = json.loads(data)
    assert isinstance(answer, dict), f"not a JSON object: {answer!r:.300}"
    if "error" in answer:
        error = answer["error"]
        assert isinstance(error, str) and error.strip(), f"error {error!r:.300}"
        assert "\n" not in error and "\r" not in error, f"multi-line error: {error!r:.300}"
        assert answer.get("exit_code") in (1, 2), f"exit code {answer.get('exit_code')!r}"
        if error.startswith("the agent could not handle"):
            kind = error.split(": ", 2)[1] if error.count(": ") >= 2 else "?"
            raise AssertionError(f"internal error ({kind}): {error:.300}")
    else:
        assert answer in ({"pid": agent.pid}, {"synced": True}) or set(answer) == {"id"}, f"{answer!r:.300}"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


def check_payload(agent: Agent, example: tuple[bytes, bytes, str]) -> None:
    check_batch(agent, (example,))


def check_batch(agent: Agent, batch: tuple[tuple[bytes, bytes, str], ...]) -> None:
    """Send every request of `batch` on its own connection, all open at once, then read the answers."""
    socks: list[socket.socket | None] = []
    try:
        for i, (raw, spec, end) in enumerate(batch):
            socks.append(send(agent, resolve_paths(agent, raw, spec, i), end))
        answers = [receive(sock) for sock in socks]
    finally:
        for sock in socks:
            if sock is not None:
                sock.close()
    assert alive(agent.pid), "the agent died"
    for data in answers:
        check_answer(agent, data)


# ---- the agent for the module -----------------------------------------------------------------------


@contextlib.contextmanager
def bench_context(base: Path) -> Iterator[Agent]:
    """An agent in its own SUANLI_HOME under `base`, and the files requests name; stopped afterwards
    with every job process it started."""
    home, files = base / "home", base / "files"
    files.mkdir(parents=True)
    env = {"SUANLI_HOME": str(home), "SUANLI_DB_URL": "", "SUANLI_POLICY": "fifo"}
    (files / "dir").mkdir()
    (files / "not-utf8").write_bytes(b"run: '\xff\xfe'\n")
    (files / "valid").write_text("run: 'true'\nresources: {cpus: 0.01}\n")
    (files / "empty").write_bytes(b"")
    (files / "bad\njob.yaml").write_bytes(b"run: [\n")
    (files / "no-access").write_text("run: 'true'\n")
    (files / "no-access").chmod(0)
    (files / "link-loop").symlink_to(files / "link-loop")
    cli("agent", "start", env=env, check=True)
    try:
        info = json.loads((home / "agent.json").read_text())
        yield Agent(home, files, env, info["pid"], info["socket"])
    finally:
        cli("agent", "stop", env=env)
        for pid_file in home.glob("logs/job-*/attempt-*/shim.pid"):
            with contextlib.suppress(ProcessLookupError, ValueError, PermissionError):
                os.killpg(int(pid_file.read_text()), signal.SIGKILL)


def bench_after(agent: Agent) -> str:
    """'' when the agent is the same live process with no traceback in its log and a real job submitted
    through `suanli submit` succeeds; else what is wrong."""
    from suanli.store import Store

    info = json.loads((agent.home / "agent.json").read_text())
    if info["pid"] != agent.pid or not alive(agent.pid):
        return f"the agent is not the one started (pid {agent.pid}, now {info['pid']})"
    unknown = [e for e in logged_errors(agent) if not any(re.search(p, e) for p in KNOWN_LOG_PATTERNS)]
    if unknown:
        return f"agent.log has {len(unknown)} traceback(s) of no known bug: {' | '.join(unknown[:5])[:1500]}"
    proc = cli("submit", str(agent.files / "valid"), "--json", env=agent.env)
    if proc.returncode != 0:
        return f"`suanli submit` failed: {proc.stderr.strip()[:500]}"
    job_id = json.loads(proc.stdout)["id"]
    store = Store(f"sqlite:///{agent.home / 'suanli.db'}")

    def ended() -> str | None:
        record = store.get(job_id)
        return record.state if record.is_terminal else None

    state = wait_for(ended, timeout=120)
    if state != "SUCCEEDED":
        return f"the job submitted after the fuzzing ended {state}"
    return ""


def logged_errors(agent: Agent) -> list[str]:
    """The exception line ending each traceback in agent.log."""
    lines = (agent.home / "agent.log").read_text(errors="replace").splitlines()
    out, inside = [], False
    for line in lines:
        if line.startswith("Traceback"):
            inside = True
        elif inside and line and not line.startswith(" "):
            out.append(line)
            inside = False
    return out


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Agent]:
    with bench_context(tmp_path_factory.mktemp("fuzz-agent")) as a:
        yield a


BATCH = 3  # requests per example, open at once: the agent answers them together, on a pass of its own
BATCHES = st.tuples(*[payload()] * BATCH)
INPUTS_PER_EXAMPLE = BATCH

# name -> (strategy, check, share of the entry point's examples); benchmarks/bench_fuzz.py runs these too
PROPERTIES = {"socket requests": (BATCHES, check_batch, 1.0)}

# Inputs that broke a property once (property, example); each runs as a test.
REGRESSIONS: dict[str, tuple[str, tuple[bytes, bytes, str]]] = {
    "NUL in a path": ("one request", (b'{"op": "submit", "path": "a\\u0000b"}\n', b"", "shutdown")),
    "lone surrogate in a path": ("one request", (b'{"op": "submit", "path": "\\ud800"}\n', b"", "shutdown")),
    "newline in a path": ("one request", (b'{"op": "submit", "path": "a\\rb"}\n', b"", "shutdown")),
    "newline in a bad file's name": (
        "one request",
        (b'{"op": "submit", "path": "@bad\\njob.yaml"}\n', b"", "shutdown"),
    ),
    "oversized": ("one request", (b'{"op": "ping", "x": "' + b"x" * MAX_REQUEST_BYTES + b'"}', b"", "keep")),
}
KNOWN: dict[str, Known] = {}  # open bugs found by fuzzing: none (each found one is a regression test)
# What agent.log may hold while those bugs are not fixed: the exception lines of their tracebacks.
KNOWN_LOG_PATTERNS = [
    p
    for name, p in (
        ("NUL in a path", "embedded null byte"),
        ("lone surrogate in a path", "surrogates not allowed"),
    )
    if name in KNOWN
]


@settings(FUZZ, max_examples=-(-EXAMPLES // BATCH))
@given(batch=BATCHES)
def test_every_request_gets_one_line_or_a_closed_connection(agent, batch):
    tolerating(KNOWN, check_batch)(agent, batch)


@pytest.mark.parametrize(("prop", "example"), regressions(REGRESSIONS, KNOWN))
def test_regression(agent, prop, example):
    check_payload(agent, example)


def test_the_agent_survived_the_fuzzing(agent):
    """Runs after the fuzzing (tests run in file order): same process, no traceback, a real job runs."""
    assert bench_after(agent) == ""


def test_a_job_printing_a_metric_that_cannot_be_stored_still_ends(agent):
    job = agent.files / "bad-metric.yaml"
    lines = ['{"metric": "\\ud800", "value": 1}', '{"metric": "ok", "value": 2}']  # as the job prints them
    (agent.files / "metrics.txt").write_text("\n".join(lines) + "\n")
    job.write_text(f"run: cat {agent.files / 'metrics.txt'}\nresources: {{cpus: 0.01}}\n")
    proc = cli("submit", str(job), "--json", env=agent.env, check=True)
    job_id = json.loads(proc.stdout)["id"]
    from suanli.store import Store

    store = Store(f"sqlite:///{agent.home / 'suanli.db'}")
    while not store.get(job_id).is_terminal:  # before the fix it stayed RUNNING for ever
        time.sleep(0.1)
    record = store.get(job_id)
    assert record.state == "SUCCEEDED"
    assert [p["name"] for p in store.metric_history(job_id)] == ["ok"]


def test_a_request_naming_a_fifo_is_answered(agent):
    """Opening a FIFO for reading blocks until a writer comes: a submission naming one must not hold its
    request thread (or, 64 of them, the whole agent) forever."""
    fifo = agent.files / "fifo"
    os.mkfifo(fifo)
    raw = json.dumps({"op": "submit", "path": str(fifo)}).encode() + b"\n"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(120)  # a safety net: before the fix no answer ever came
        sock.connect(agent.socket)
        sock.sendall(raw)
        try:
            data = sock.recv(65536)
        except TimeoutError:
            data = b""
    if not data:  # let the agent's thread go, so the module's agent stops cleanly
        with contextlib.suppress(OSError), open(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK), "wb"):
            pass
    assert data.endswith(b"\n"), "no answer"
    check_answer(agent, data)
