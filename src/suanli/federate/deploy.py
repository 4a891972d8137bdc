"""A federation deployed the way Flower runs one in production, each part a suanli job:

    fed-<name>-superlink        flower-superlink; the ServerApp runs outside it (`--isolation process`)
    fed-<name>-<participant>    flower-supernode on the participant's node, told only its own data path
    fed-<name>                  the ServerApp: flower-superexec (which starts flwr-serverapp for the run)
                                and `flwr run --stream`, whose log carries the rounds' metrics

    python -m suanli.federate.deploy superlink | supernode | server

The app travels as a Flower App Bundle (FAB) that holds only a generated pyproject.toml, a two-line module
and the federation spec with every participant's data path removed; the user's code is imported from the
federation's folder, as any suanli job's workdir. Each part ends by itself when the federation is over:
the SuperLink once its run has finished, each SuperNode once the SuperLink has gone, the ServerApp job
when `flwr run` returns. Flower's state (its config, installed apps) lives in a private folder of the job.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from suanli.core.net import Peer, bind_host, free_port, reachable
from suanli.federate.spec import FedSpec

ADDRESS_ENV = "SUANLI_FED_ADDRESS"
WAIT_ENV = "SUANLI_FED_WAIT_S"
INDEX_ENV = "SUANLI_FED_INDEX"
DATA_ENV = "SUANLI_FED_DATA"
CONNECTION = "suanli"  # the SuperLink connection's name in each part's private Flower config
POLL_S = 2.0
LINGER_S = 20.0  # how long a SuperLink stays up after its run has finished
GONE_AFTER = 3  # failed probes in a row after which a SuperNode takes the SuperLink to be gone
BUNDLE_MODULE = "suanli_fab"


def _tool(name: str) -> str:
    """A Flower command of this Python's environment (Flower starts some of them by bare name)."""
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else shutil.which(name) or name


def _flower_home(address: str) -> tuple[Path, dict[str, str]]:
    """A private Flower folder whose only SuperLink connection is `address`, and the environment to use it."""
    home = Path(tempfile.mkdtemp(prefix="flwr-", dir=os.environ.get("SUANLI_RUN_DIR")))
    (home / "config.toml").write_text(
        f'[superlink]\ndefault = "{CONNECTION}"\n\n[superlink.{CONNECTION}]\n'
        f'address = "{address}"\ninsecure = true\n'
    )
    env = {**os.environ, "FLWR_HOME": str(home)}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.pop("SUANLI_FED_SPEC", None)
    return home, env


def _runs(env: dict[str, str]) -> list[dict]:
    """The SuperLink's runs as `flwr ls` reports them ([] while it cannot be reached)."""
    try:
        done = subprocess.run(
            [_tool("flwr"), "ls", CONNECTION, "--format", "json"], env=env, capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip
        return list(json.loads(done.stdout).get("runs") or [])
    except (ValueError, subprocess.TimeoutExpired, AttributeError):
        return []


def _stop(proc: subprocess.Popen) -> None:
    """The process and everything it started: SIGTERM, then SIGKILL after 10 s."""
    import psutil

    try:
        tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    except psutil.Error:
        tree = []
    for p in tree:
        with contextlib.suppress(psutil.Error):
            p.terminate()
    _, alive = psutil.wait_procs(tree, timeout=10)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


def _toml_string(value: str) -> str:
    return json.dumps(value)  # ASCII JSON escapes are valid TOML basic-string escapes


# ---------------------------------------------------------------------------------------------------------
# The three parts


def superlink(address: str, wait_s: float) -> int:
    """Flower's SuperLink at `address` until its run has finished (or none came within `wait_s`)."""
    home, env = _flower_home(address)
    port = address.rsplit(":", 1)[1]
    proc = subprocess.Popen(
        [_tool("flower-superlink"), "--insecure", "--isolation", "process", "--host", bind_host(address),
         "--port", port, "--disable-runtime-dependency-installation"],
        env=env, cwd=home,
    )  # fmt: skip
    started, status = time.monotonic(), None
    try:
        while proc.poll() is None:
            time.sleep(POLL_S)
            runs = _runs(env)
            if runs and all(str(r.get("status", "")).startswith("finished") for r in runs):
                status = str(runs[-1]["status"])
                time.sleep(LINGER_S)  # the ServerApp's log stream and its last question come after
                break
            if not runs and time.monotonic() - started > wait_s:
                status = f"no run was submitted within {wait_s:g} s"
                break
    finally:
        _stop(proc)
        shutil.rmtree(home, ignore_errors=True)
    if status is None:
        print(f"flower-superlink exited with code {proc.returncode}", file=sys.stderr)
        return proc.returncode or 1
    print(f"SuperLink: the run ended: {status}", flush=True)
    return 0 if status == "finished:completed" else 1


def supernode(address: str, index: int, data: str, wait_s: float) -> int:
    """Flower's SuperNode for participant `index`, whose ClientApps see only `data`; it ends once the
    SuperLink it served has gone."""
    home, env = _flower_home(address)
    node_config = home / "node.toml"
    node_config.write_text(f"data-path = {_toml_string(data)}\nparticipant-index = {index}\n")
    proc = subprocess.Popen(
        [_tool("flower-supernode"), "--insecure", "--superlink", address, "--port", str(free_port()),
         "--node-config", str(node_config)],
        env=env, cwd=home,
    )  # fmt: skip
    superlink, rc = Peer(address, wait_s, GONE_AFTER), 0
    try:
        while proc.poll() is None:
            time.sleep(POLL_S)
            found = superlink.step()
            if found == "gone":
                print("SuperNode: the SuperLink has gone; the federation is over", flush=True)
                break
            if found == "absent":
                print(f"SuperNode: no SuperLink at {address} within {wait_s:g} s", file=sys.stderr)
                rc = 1
                break
    finally:
        _stop(proc)
        shutil.rmtree(home, ignore_errors=True)
    return rc if proc.returncode in (None, 0, -signal.SIGTERM) else proc.returncode


def write_bundle(spec: FedSpec, folder: Path) -> Path:
    """The FAB project: the spec without any participant's data path, and a module naming the apps."""
    folder.mkdir(parents=True)
    blind = spec.model_copy(
        update={"participants": [p.model_copy(update={"data": ""}) for p in spec.participants]}
    )
    (folder / "fed.json").write_text(blind.model_dump_json())
    (folder / f"{BUNDLE_MODULE}.py").write_text(
        '"""The federation\'s apps (generated by suanli)."""\nfrom pathlib import Path\n\n'
        "from suanli.federate import deploy\n\n"
        'server = deploy.server_app(Path(__file__).with_name("fed.json"))\n'
        'client = deploy.client_app(Path(__file__).with_name("fed.json"))\n'
    )
    name = re.sub(r"[^a-z0-9-]+", "-", spec.name.lower()).strip("-") or "federation"
    (folder / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n\n'
        f'[project]\nname = "suanli-{name}"\nversion = "1.0.0"\ndescription = "A suanli federation"\n'
        'license = "Apache-2.0"\ndependencies = []\n\n'
        '[tool.hatch.build.targets.wheel]\npackages = ["."]\n\n'
        '[tool.flwr.app]\npublisher = "suanli"\n\n'
        f'[tool.flwr.app.components]\nserverapp = "{BUNDLE_MODULE}:server"\n'
        f'clientapp = "{BUNDLE_MODULE}:client"\n\n[tool.flwr.app.config]\n'
    )
    return folder


def server(spec: FedSpec, address: str) -> int:
    """The ServerApp's side: wait for the SuperLink, run the bundle on it, stream its log (the rounds'
    metrics) into this job's, and report Flower's own account of the run."""
    home, env = _flower_home(address)
    deadline = time.monotonic() + spec.deployment.wait_s
    while not reachable(address):
        if time.monotonic() > deadline:
            print(f"no SuperLink at {address} within {spec.deployment.wait_s:g} s", file=sys.stderr)
            return 1
        time.sleep(POLL_S)
    bundle = write_bundle(spec, home / "app")
    executor = subprocess.Popen(
        [_tool("flower-superexec"), "--insecure", "--runtime-api-address", address],
        env=env,
        cwd=spec.base_dir,
    )
    run_id, summary, status, listed = None, {}, "unknown", []
    try:
        run = subprocess.Popen(
            [_tool("flwr"), "run", str(bundle), CONNECTION, "--stream"], env=env, cwd=home,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
        )  # fmt: skip
        assert run.stdout is not None
        for line in run.stdout:
            if run_id is None and (found := re.search(r"started run (\d+)", line)):
                run_id = found[1]
            if line.startswith('{"federation"'):
                with contextlib.suppress(ValueError, KeyError):
                    summary = json.loads(line)["federation"]
                continue
            sys.stdout.write(line)
            sys.stdout.flush()
        run.wait()
        for _ in range(30):  # the SuperLink marks the run finished a moment after its log ends
            listed = [r for r in _runs(env) if str(r.get("run-id")) == run_id]
            status = str(listed[0].get("status")) if listed else "unknown"
            if status.startswith("finished") or run_id is None:
                break
            time.sleep(1.0)
        if listed:
            summary["traffic_bytes"] = (listed[0].get("network-traffic") or {}).get("total-bytes")
        summary.update(flower_run_id=run_id, flower_status=status)
        print(json.dumps({"federation": summary}), flush=True)
        # The built-in ServerApp reports its own end; a user's app has only Flower's word.
        completed = status == "finished:completed" or (status == "unknown" and "rounds" in summary)
    finally:
        if run_id is not None and not status.startswith("finished"):
            subprocess.run(
                [_tool("flwr"), "stop", run_id, CONNECTION], env=env, capture_output=True, timeout=60
            )
        _stop(executor)
        shutil.rmtree(home, ignore_errors=True)
    return 0 if completed else 1


# ---------------------------------------------------------------------------------------------------------
# The apps, as the bundle's module builds them


def _bundle_spec(path: Path) -> FedSpec:
    from suanli.federate import runner

    runner._deployed = FedSpec.model_validate_json(Path(path).read_text())
    return runner._deployed


def server_app(path: Path):  # type: ignore[no-untyped-def]
    """The ServerApp: the user's, or the built-in one, which saves the model and reports at the end."""
    from suanli.federate import runner

    spec = _bundle_spec(path)
    os.chdir(
        spec.base_dir
    )  # the user's relative paths (server data, output) start at the federation's folder
    return runner.resolve_apps(spec, report=True)[0]


def client_app(path: Path):  # type: ignore[no-untyped-def]
    from suanli.federate import runner

    return runner.resolve_apps(_bundle_spec(path))[1]


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that each part stops what it started
    address = os.environ[ADDRESS_ENV]
    wait_s = float(os.environ.get(WAIT_ENV, "600"))
    role = argv[0] if argv else ""
    if role == "superlink":
        return superlink(address, wait_s)
    if role == "supernode":
        return supernode(address, int(os.environ[INDEX_ENV]), os.environ[DATA_ENV], wait_s)
    if role == "server":
        from suanli.federate.runner import current_spec

        return server(current_spec(), address)
    print("usage: python -m suanli.federate.deploy superlink|supernode|server", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
