"""Commands for a team: `server`, `login`/`logout`, and `user`, `project`, `token`, `quota`, `audit`.

After `suanli login URL` these talk to the server; without it (or with --db) they act on the database
directly, as its owner: that is how the first admin is made on the server machine.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from suanli.cli.output import emit_json, err, out, safe
from suanli.cli.state import db_url, remote
from suanli.core.errors import BadInput
from suanli.core.units import parse_duration

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout, nothing else.")]
TtlOpt = Annotated[
    str | None, typer.Option("--ttl", help="How long the token lives (7d by default; e.g. 12h).")
]

user_app = typer.Typer(help="Users of the team server (admins).", no_args_is_help=True)
project_app = typer.Typer(help="Projects (teams) and their members.", no_args_is_help=True)
token_app = typer.Typer(
    help="API tokens: scoped to a project and a role, expiring, revocable.", no_args_is_help=True
)
quota_app = typer.Typer(
    help="Quotas per user and project: GPUs at once, GPU-hours and dollars per period.", no_args_is_help=True
)


def _call(
    method: str,
    path: str,
    body: Any = None,
    *,
    local: Callable[[Any, Any], Any],
    action: str | None = None,
    target: str = "",
    **query: Any,
) -> Any:
    """The request to the server after `suanli login`; else `local(identity, principal)` on the database
    itself, as its owner (who may do everything), with a change written to the audit log as the server
    would."""
    r = remote()
    if r is not None:
        return r.http.call(method, path, body, **query)
    from suanli.store.identity import Identity, Principal
    from suanli.store.store import Store

    ident, me = Identity(Store(db_url())), Principal.local()
    result = local(ident, me)
    if action:
        ident.audit(me.user, action, target, address="local")
    return result


def _ttl(text: str | None) -> float | None:
    return None if text is None else parse_duration(text, "--ttl")


def _password(stdin: bool, prompt: str = "password") -> str:
    if stdin:
        return sys.stdin.readline().rstrip("\n")
    if not sys.stdin.isatty():
        raise BadInput("password", "", "give it with --password-stdin when input is not a terminal")
    return typer.prompt(prompt, hide_input=True, confirmation_prompt=prompt != "password ")


def _table(rows: list[dict], columns: list[str]) -> None:
    table = Table(*columns)
    for r in rows:
        table.add_row(*(safe("" if r.get(c) is None else r.get(c)) for c in columns))
    out.print(table)


# ---- server, login ----------------------------------------------------------------------------------


def server(
    host: Annotated[
        str, typer.Option(help="Address to listen on (127.0.0.1: this machine only).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8080,
    tls_cert: Annotated[Path | None, typer.Option("--tls-cert", help="PEM certificate: serve HTTPS.")] = None,
    tls_key: Annotated[Path | None, typer.Option("--tls-key", help="PEM private key of --tls-cert.")] = None,
    no_agent: Annotated[bool, typer.Option("--no-agent", help="Do not start the scheduler agent.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON document (where it listens) once it serves.")
    ] = False,
) -> None:
    """Serve the REST API and the dashboard for a team, over the same store and scheduler."""
    from suanli.server.serve import serve

    def ready(url: str) -> None:
        if as_json:
            emit_json({"url": url, "pid": os.getpid(), "db_url": db_url()})
        else:
            err.print(
                f"suanli server: {url} (API at {url}/api, schema at {url}/openapi.json); Ctrl-C stops it"
            )

    serve(
        db_url(),
        host=host,
        port=port,
        tls_cert=tls_cert,
        tls_key=tls_key,
        start_agent=not no_agent,
        on_ready=ready,
    )


def login(
    url: Annotated[str, typer.Argument(help="The server, e.g. https://suanli.example:8080")],
    user: Annotated[
        str | None, typer.Option("--user", "-u", help="Your user name (asked if not given).")
    ] = None,
    project: Annotated[
        str | None, typer.Option(help="The project to act in (needed if you are in several).")
    ] = None,
    ttl: TtlOpt = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
    token: Annotated[
        str | None, typer.Option("--token", help="Use this token instead of a password.")
    ] = None,
    ca_file: Annotated[
        Path | None, typer.Option("--ca-file", help="CA certificate for a self-signed server.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Log in to a team server; every command then goes to it (the token is kept in a 0600 file)."""
    from suanli.remote import Credentials, Http, check_url, save_credentials
    from suanli.remote import login as remote_login

    ca = str(ca_file.resolve()) if ca_file else None
    if token is not None:
        creds = Credentials(check_url(url), token, ca)
        doc = Http(creds).call("GET", "/api/whoami")
    else:
        name = user or typer.prompt("user")
        creds, doc = remote_login(
            url, name, _password(password_stdin, "password "), project=project, ttl_s=_ttl(ttl), ca_file=ca
        )
    path = save_credentials(creds)
    if as_json:
        emit_json({"url": creds.url, "credentials_path": str(path), **doc})
        return
    scope = doc.get("project") or "all projects"
    until = f" until {doc['expires_at']}" if doc.get("expires_at") else ""
    out.print(f"logged in to {safe(creds.url)} as {safe(doc['user'])} ({doc['role']}, {safe(scope)}){until}")


def logout(as_json: JsonOpt = False) -> None:
    """Forget the server's token; commands act on the local state again."""
    from suanli.remote import forget_credentials

    had = forget_credentials()
    if as_json:
        emit_json({"logged_out": had})
    else:
        out.print("logged out" if had else "not logged in")


# ---- users --------------------------------------------------------------------------------------


@user_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="The user name.")],
    admin: Annotated[bool, typer.Option("--admin", help="Make the user an admin.")] = False,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
    no_password: Annotated[
        bool, typer.Option("--no-password", help="Tokens only (a service account).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Add a user. On the server machine (no login) this makes the first admin."""
    password = None if no_password else _password(password_stdin)
    _call(
        "POST",
        "/api/users",
        {"name": name, "password": password, "admin": admin},
        local=lambda ident, _: ident.add_user(name, password, admin=admin),
        action="user.add",
        target=name,
    )
    emit_json({"name": name, "admin": admin}) if as_json else out.print(f"user {safe(name)} added")


@user_app.command("list")
def user_list(as_json: JsonOpt = False) -> None:
    """List users, whether each is an admin, and their projects."""
    rows = _call("GET", "/api/users", local=lambda ident, _: {"users": ident.users()})["users"]
    if as_json:
        emit_json({"users": rows})
        return
    for row in rows:
        row["projects"] = ", ".join(f"{p} ({role})" for p, role in row["projects"].items())
    _table(rows, ["name", "admin", "disabled", "has_password", "projects"])


@user_app.command("passwd")
def user_passwd(
    name: Annotated[str, typer.Argument(help="The user name.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Set a user's password (your own, or anyone's as an admin)."""
    password = _password(password_stdin)
    _call(
        "POST",
        f"/api/users/{name}/password",
        {"password": password},
        local=lambda ident, _: ident.set_password(name, password),
        action="user.password",
        target=name,
    )
    emit_json({"name": name}) if as_json else out.print(f"password of {safe(name)} set")


@user_app.command("disable")
def user_disable(
    name: Annotated[str, typer.Argument(help="The user name.")],
    enable: Annotated[bool, typer.Option("--enable", help="Enable the user again.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Disable a user (admins): their tokens and password stop working at once."""
    _call(
        "POST",
        f"/api/users/{name}/disabled",
        {"disabled": not enable},
        local=lambda ident, _: ident.set_disabled(name, not enable),
        action="user.enable" if enable else "user.disable",
        target=name,
    )
    if as_json:
        emit_json({"name": name, "disabled": not enable})
    else:
        out.print(f"user {safe(name)} {'enabled' if enable else 'disabled'}")


# ---- projects -----------------------------------------------------------------------------------


@project_app.command("add")
def project_add(
    name: Annotated[str, typer.Argument(help="The project name.")], as_json: JsonOpt = False
) -> None:
    """Add a project (a team whose jobs, quotas and usage are counted together)."""
    _call(
        "POST",
        "/api/projects",
        {"name": name},
        local=lambda ident, _: ident.add_project(name),
        action="project.add",
        target=name,
    )
    emit_json({"name": name}) if as_json else out.print(f"project {safe(name)} added")


@project_app.command("list")
def project_list(as_json: JsonOpt = False) -> None:
    """List projects and their members."""
    rows = _call("GET", "/api/projects", local=lambda ident, _: {"projects": ident.projects()})["projects"]
    if as_json:
        emit_json({"projects": rows})
        return
    for row in rows:
        row["members"] = ", ".join(f"{u} ({role})" for u, role in row["members"].items())
    _table(rows, ["name", "members"])


@project_app.command("member")
def project_member(
    project: Annotated[str, typer.Argument(help="The project.")],
    user: Annotated[str, typer.Argument(help="The user.")],
    role: Annotated[str | None, typer.Option(help="project_admin, member or viewer.")] = None,
    remove: Annotated[bool, typer.Option("--remove", help="Take the user out of the project.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Give a user a role in a project, or remove them."""
    if (role is None) == (not remove):
        raise BadInput("--role", role, "give a role (project_admin, member, viewer) or --remove")
    new_role = None if remove else role
    body = None if remove else {"role": role}
    _call(
        "DELETE" if remove else "PUT",
        f"/api/projects/{project}/members/{user}",
        body,
        local=lambda ident, _: ident.set_member(project, user, new_role),
        action="project.member",
        target=f"{project}/{user}",
    )
    if as_json:
        emit_json({"project": project, "user": user, "role": None if remove else role})
    else:
        out.print(
            f"{safe(user)} removed from {safe(project)}"
            if remove
            else f"{safe(user)} is {role} in {safe(project)}"
        )


# ---- tokens -------------------------------------------------------------------------------------


@token_app.command("create")
def token_create(
    user: Annotated[str | None, typer.Option(help="For this user (admins; default: you).")] = None,
    project: Annotated[
        str | None, typer.Option(help="Scoped to this project (default: your token's).")
    ] = None,
    role: Annotated[str | None, typer.Option(help="At most your role there (default: your role).")] = None,
    ttl: TtlOpt = None,
    label: Annotated[str, typer.Option(help="A note to tell tokens apart.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Make a token; it is printed once and stored only as a hash."""
    body = {"user": user, "project": project, "role": role, "ttl_s": _ttl(ttl), "label": label}

    def local(ident, me):  # type: ignore[no-untyped-def]
        if user is None:
            raise BadInput("--user", None, "is required on the server machine (whose token is it?)")
        token, info = ident.create_token(me, **body)
        return {"token": token, **info}

    doc = _call("POST", "/api/tokens", body, local=local, action="token.create", target=str(user))
    if as_json:
        emit_json(doc)
    else:
        err.print(
            f"token {doc['id']} for {safe(doc['user'])} ({doc['role']}, {safe(doc['project'] or 'all')}), "
            f"expires {doc['expires_at']}; it is shown only now:"
        )
        out.print(doc["token"])


@token_app.command("list")
def token_list(
    user: Annotated[str | None, typer.Option(help="This user's tokens (admins).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List tokens (never their values)."""
    rows = _call(
        "GET", "/api/tokens", local=lambda ident, me: {"tokens": ident.tokens(me, user=user)}, user=user
    )["tokens"]
    if as_json:
        emit_json({"tokens": rows})
        return
    _table(rows, ["id", "user", "project", "role", "state", "expires_at", "last_used_at", "label"])


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[int, typer.Argument(help="The token's id.")], as_json: JsonOpt = False
) -> None:
    """Revoke a token: it stops working at once."""
    doc = _call(
        "DELETE",
        f"/api/tokens/{token_id}",
        local=lambda ident, me: ident.revoke_token(me, token_id),
        action="token.revoke",
        target=str(token_id),
    )
    emit_json(doc) if as_json else out.print(f"token {token_id} revoked")


# ---- quotas and audit ---------------------------------------------------------------------------


@quota_app.command("set")
def quota_set(
    user: Annotated[str | None, typer.Option(help="A user's quota.")] = None,
    project: Annotated[str | None, typer.Option(help="A project's quota.")] = None,
    gpus: Annotated[int | None, typer.Option(help="GPUs held at once.")] = None,
    gpu_hours: Annotated[float | None, typer.Option("--gpu-hours", help="GPU-hours per period.")] = None,
    cost_usd: Annotated[float | None, typer.Option("--cost-usd", help="Dollars per period.")] = None,
    period: Annotated[str | None, typer.Option(help="day, week or month (default month).")] = None,
    clear: Annotated[
        bool, typer.Option("--clear", help="Remove every limit of this user or project.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Set limits of a user or a project (admins). A job over a limit waits and says why."""
    if (user is None) == (project is None):
        raise BadInput("--user/--project", None, "give exactly one of --user or --project")
    scope, name = ("user", user) if user is not None else ("project", project)
    body: dict[str, Any] = {
        "gpus": gpus,
        "gpu_hours": gpu_hours,
        "cost_usd": cost_usd,
        "period": period,
        "clear": clear,
    }
    doc = _call(
        "PUT",
        f"/api/quotas/{scope}/{name}",
        body,
        local=lambda ident, _: ident.set_quota(scope, str(name), **body).to_json(),
        action="quota.set",
        target=f"{scope}/{name}",
    )
    emit_json(doc) if as_json else out.print(f"quota of {scope} {safe(name)}: {_limits(doc)}")


def _limits(q: dict) -> str:
    parts = [
        f"{q['gpus']} GPUs at once" if q.get("gpus") is not None else "",
        f"{q['gpu_hours']:g} GPU-hours" if q.get("gpu_hours") is not None else "",
        f"${q['cost_usd']:,.2f}" if q.get("cost_usd") is not None else "",
    ]
    text = ", ".join(p for p in parts if p)
    return f"{text} per {q['period']}" if text else "none"


@quota_app.command("list")
def quota_list(as_json: JsonOpt = False) -> None:
    """Quotas with what each user or project has used in the current period."""

    def local(ident, _):  # type: ignore[no-untyped-def]
        from suanli.run.quotas import QuotaGate

        return {"quotas": QuotaGate.load(ident.store).to_json()}

    rows = _call("GET", "/api/quotas", local=local)["quotas"]
    if as_json:
        emit_json({"quotas": rows})
        return
    table = Table("scope", "name", "limits", "period", "GPUs now", "GPU-hours used", "cost used")
    for q in rows:
        u = q["used"]
        table.add_row(
            q["scope"],
            safe(q["name"]),
            _limits(q),
            q["period"],
            str(u["gpus"]),
            f"{u['gpu_hours']:.4g}",
            f"${u['cost_usd']:,.2f}",
        )
    out.print(table)


def audit(
    limit: Annotated[int, typer.Option(help="How many entries, newest first.", min=1, max=1000)] = 50,
    as_json: JsonOpt = False,
) -> None:
    """The audit log: every change made through the server and every failed login (admins)."""
    rows = _call(
        "GET", "/api/audit", local=lambda ident, _: {"entries": ident.audit_log(limit=limit)}, limit=limit
    )["entries"]
    if as_json:
        emit_json({"entries": rows})
        return
    _table(rows, ["id", "at", "actor", "action", "target", "ok", "address", "detail"])
