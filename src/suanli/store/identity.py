"""Who may do what: users, projects (teams), roles, API tokens, quotas and the audit log.

The rules live here, not in the server's routes, so every caller (server, CLI, library) enforces the
same ones:

- roles, from least to most: `viewer` (reads its project), `member` (submits, and manages its own
  jobs), `project_admin` (manages every job and the members of its project), `admin` (everything);
- a token is scoped to one project (an admin's may cover all) with a role at most its user's role
  there, expires (7 days by default), can be revoked, and only its SHA-256 is stored;
- passwords are stored as scrypt hashes; there is no default password and no sign-up: the first admin
  is made on the server machine, by whoever can write the database;
- failed logins are counted in the audit log, which throttles guessing across restarts and processes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from suanli.core.errors import BadInput, Forbidden, NotFound, TooManyAttempts, Unauthorized
from suanli.store import models as m
from suanli.store.store import Store

ROLES = ("viewer", "member", "project_admin", "admin")
PROJECT_ROLES = ROLES[:3]
RANK = {r: i for i, r in enumerate(ROLES)}
DEFAULT_TOKEN_TTL_S = 7 * 86400.0
MAX_TOKEN_TTL_S = 366 * 86400.0
MIN_PASSWORD_CHARS = 8
LOGIN_WINDOW_S = 60.0
MAX_FAILURES_PER_USER = 5  # per LOGIN_WINDOW_S; then every login of that user waits out the window
MAX_FAILURES_PER_ADDRESS = 20
PERIODS = ("day", "week", "month")
TOKEN_PREFIX = "sl_"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
_TOUCH_EVERY_S = 60.0  # a token's last use is written at most this often (a write per request is costly)


@dataclass(frozen=True)
class Principal:
    """Who makes a request, as its token allows: a user, the project it acts in, and the role there."""

    user: str
    role: str
    project: str | None  # None only for an admin token: every project
    token_id: int | None = None
    expires_at: float | None = None

    @classmethod
    def local(cls) -> Principal:
        """The owner of the database itself (the CLI on the server machine): may do everything."""
        import getpass

        return cls(user=getpass.getuser(), role="admin", project=None)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def can_read(self, project: str | None) -> bool:
        return self.is_admin or (project is not None and project == self.project)

    def can_submit(self, project: str | None) -> bool:
        return self.is_admin or (self.can_read(project) and RANK[self.role] >= RANK["member"])

    def can_manage(self, project: str | None, owner: str) -> bool:
        """Cancel, resubmit, read env values: an admin, the project's admin, or the job's own member."""
        if self.is_admin:
            return True
        if not self.can_read(project):
            return False
        return self.role == "project_admin" or (self.role == "member" and owner == self.user)

    def require(self, allowed: bool, action: str) -> None:
        if not allowed:
            where = f"project {self.project}" if self.project else "no project"
            raise Forbidden(f"{self.user} ({self.role} in {where}) may not {action}")

    def to_json(self) -> dict:
        from suanli.store.records import iso

        return {
            "user": self.user,
            "role": self.role,
            "project": self.project,
            "token_id": self.token_id,
            "expires_at": iso(self.expires_at),
        }


def check_name(field: str, value: object) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise BadInput(
            field,
            value,
            "must be 1-64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit",
        )
    return value


def check_role(value: object, allowed: tuple[str, ...] = ROLES, field: str = "role") -> str:
    if value not in allowed:
        raise BadInput(field, value, "must be one of " + ", ".join(allowed))
    return str(value)


def _storable(text: str) -> str:
    """`text` with what no database stores (a NUL, a lone surrogate) replaced."""
    return text.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")


def hash_password(password: str) -> str:
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    salt = secrets.token_bytes(16)
    key = Scrypt(salt=salt, length=32, n=2**14, r=8, p=1).derive(password.encode("utf-8", "surrogatepass"))
    b64 = base64.b64encode
    return f"scrypt$14$8$1${b64(salt).decode()}${b64(key).decode()}"


def password_matches(password: str, stored: str | None) -> bool:
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    if not stored:
        return False
    _, log_n, r, p, salt, key = stored.split("$")
    derived = Scrypt(salt=base64.b64decode(salt), length=32, n=2 ** int(log_n), r=int(r), p=int(p)).derive(
        password.encode("utf-8", "surrogatepass")
    )
    return hmac.compare_digest(derived, base64.b64decode(key))


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def period_start(period: str, now: float) -> float:
    """Start of the current calendar day, ISO week (Monday) or month, in UTC."""
    from datetime import UTC, datetime, timedelta

    t = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "week":
        t -= timedelta(days=t.weekday())
    elif period == "month":
        t = t.replace(day=1)
    return t.timestamp()


@dataclass(frozen=True)
class QuotaRecord:
    scope: str  # user | project
    name: str
    gpus: int | None
    gpu_hours: float | None
    cost_usd: float | None
    period: str

    def to_json(self) -> dict:
        return {
            "scope": self.scope,
            "name": self.name,
            "gpus": self.gpus,
            "gpu_hours": self.gpu_hours,
            "cost_usd": self.cost_usd,
            "period": self.period,
        }


class Identity:
    """The identity tables of one store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # ---- users and projects -------------------------------------------------------------------

    def add_user(self, name: str, password: str | None = None, *, admin: bool = False) -> None:
        check_name("user", name)
        if password is not None and len(password) < MIN_PASSWORD_CHARS:
            raise BadInput("password", "***", f"must have at least {MIN_PASSWORD_CHARS} characters")
        with self.store._tx() as s:
            if s.get(m.User, name) is not None:
                raise BadInput("user", name, "already exists")
            s.add(
                m.User(
                    name=name,
                    password_hash=password and hash_password(password),
                    is_admin=admin,
                    created_at=time.time(),
                )
            )

    def set_password(self, name: str, password: str) -> None:
        check_name("user", name)
        if len(password) < MIN_PASSWORD_CHARS:
            raise BadInput("password", "***", f"must have at least {MIN_PASSWORD_CHARS} characters")
        with self.store._tx() as s:
            self._user(s, name).password_hash = hash_password(password)

    def set_disabled(self, name: str, disabled: bool) -> None:
        check_name("user", name)
        with self.store._tx() as s:
            self._user(s, name).disabled = disabled

    def has_admin(self) -> bool:
        with self.store._read() as s:
            return s.execute(select(func.count()).select_from(m.User).where(m.User.is_admin)).scalar_one() > 0

    def users(self) -> list[dict]:
        with self.store._read() as s:
            members: dict[str, dict[str, str]] = {}
            for ms in s.execute(select(m.Membership)).scalars():
                members.setdefault(ms.user, {})[ms.project] = ms.role
            return [
                {
                    "name": u.name,
                    "admin": u.is_admin,
                    "disabled": u.disabled,
                    "has_password": bool(u.password_hash),
                    "projects": members.get(u.name, {}),
                }
                for u in s.execute(select(m.User).order_by(m.User.name)).scalars()
            ]

    def add_project(self, name: str) -> None:
        check_name("project", name)
        with self.store._tx() as s:
            if s.get(m.Project, name) is not None:
                raise BadInput("project", name, "already exists")
            s.add(m.Project(name=name, created_at=time.time()))

    def projects(self) -> list[dict]:
        with self.store._read() as s:
            names = [p.name for p in s.execute(select(m.Project).order_by(m.Project.name)).scalars()]
            members: dict[str, dict[str, str]] = {}
            for ms in s.execute(select(m.Membership)).scalars():
                members.setdefault(ms.project, {})[ms.user] = ms.role
            return [{"name": n, "members": members.get(n, {})} for n in names]

    def set_member(self, project: str, user: str, role: str | None) -> None:
        """Give `user` `role` in `project`; None removes them (and their tokens for it stop working)."""
        check_name("project", project)
        check_name("user", user)
        if role is not None:
            check_role(role, PROJECT_ROLES)
        with self.store._tx() as s:
            self._user(s, user)
            if s.get(m.Project, project) is None:
                raise NotFound("project", project, "no such project", hint=self._near(s, m.Project, project))
            row = s.get(m.Membership, (project, user))
            if role is None:
                if row is not None:
                    s.delete(row)
            elif row is None:
                s.add(m.Membership(project=project, user=user, role=role))
            else:
                row.role = role

    def role_in(self, user: str, project: str) -> str | None:
        """`user`'s role in `project`: "admin" for an admin (in any project, or "" for all of them)."""
        with self.store._read() as s:
            u = s.get(m.User, user)
            if u is None or u.disabled:
                return None
            if u.is_admin:
                return "admin"
            row = s.get(m.Membership, (project, user))
            return row.role if row else None

    # ---- logging in and tokens ----------------------------------------------------------------

    def login(
        self,
        user: str,
        password: str,
        *,
        project: str | None = None,
        ttl_s: float | None = None,
        address: str = "",
        label: str = "login",
    ) -> tuple[str, dict]:
        """A new token for `user` if `password` is right; failed and throttled attempts are audited."""
        now = time.time()
        shown = _storable(str(user))[:64]
        self._throttle(shown, _storable(address), now)
        with self.store._read() as s:
            u = s.get(m.User, user) if isinstance(user, str) and _NAME.fullmatch(user) else None
            ok = u is not None and not u.disabled and password_matches(password, u.password_hash)
        if not ok:
            self.audit(
                shown,
                "login",
                shown,
                ok=False,
                address=address,
                detail="wrong user or password",
            )
            raise Unauthorized("wrong user name or password")
        if project is not None:
            check_name("project", project)
        if project is None and not u.is_admin:
            mine = [p for p, _ in self._memberships(user)]
            if len(mine) != 1:
                raise BadInput(
                    "project",
                    None,
                    "name the project to log in to: "
                    + (", ".join(mine) or f"{user} belongs to no project yet (an admin adds them)"),
                )
            project = mine[0]
        role = self.role_in(user, project or "")
        if role is None:
            raise Forbidden(f"{user} is not a member of project {project}")
        token, doc = self._issue(user, project, role, ttl_s, label)
        self.audit(
            user, "login", user, address=address, detail=f"token {doc['id']} for {project or 'all projects'}"
        )
        return token, doc

    def create_token(
        self,
        actor: Principal,
        *,
        user: str | None = None,
        project: str | None = None,
        role: str | None = None,
        ttl_s: float | None = None,
        label: str = "",
    ) -> tuple[str, dict]:
        """A token for `user` (the actor by default; others only for an admin) in `project` (the actor's by
        default) with `role` at most the user's role there and the actor's own."""
        user = check_name("user", user or actor.user)
        actor.require(user == actor.user or actor.is_admin, f"make tokens for {user}")
        project = project if project is not None else actor.project
        if project is not None:
            check_name("project", project)
        actor.require(actor.is_admin or project == actor.project, f"make tokens for project {project}")
        have = self.role_in(user, project or "")
        if have is None:
            raise BadInput("project", project, f"{user} has no role there")
        role = check_role(role) if role is not None else have
        if RANK[role] > RANK[have] or RANK[role] > RANK[actor.role]:
            raise BadInput(
                "role", role, f"must be at most {have if RANK[have] <= RANK[actor.role] else actor.role}"
            )
        if project is None and role != "admin":
            raise BadInput("project", None, "is required for a role below admin")
        return self._issue(user, project, role, ttl_s, label)

    def authenticate(self, token: str | None) -> Principal:
        """The principal of a bearer token; Unauthorized (one line, never the token) when it is not valid."""
        if not token:
            raise Unauthorized("no token: log in with `suanli login URL` or send Authorization: Bearer TOKEN")
        now = time.time()
        q = (  # one query: every request pays for it
            select(
                m.Token.id,
                m.Token.user,
                m.Token.project,
                m.Token.role,
                m.Token.expires_at,
                m.Token.revoked_at,
                m.Token.last_used_at,
                m.User.disabled,
                m.User.is_admin,
                m.Membership.role,
            )
            .join(m.User, m.User.name == m.Token.user)
            .outerjoin(
                m.Membership, (m.Membership.user == m.Token.user) & (m.Membership.project == m.Token.project)
            )
            .where(m.Token.token_hash == token_hash(token))
        )
        with self.store._read() as s:
            row = s.execute(q).one_or_none()
        if row is None:
            raise Unauthorized("unknown token")
        token_id, user, project, role, expires_at, revoked_at, last_used_at, disabled, is_admin, member = row
        if revoked_at is not None:
            raise Unauthorized(f"token {token_id} was revoked")
        if expires_at <= now:
            raise Unauthorized(f"token {token_id} expired; log in again")
        if disabled:
            raise Unauthorized(f"user {user} is disabled")
        have = "admin" if is_admin else member if project is not None else None
        if have is None:
            raise Unauthorized(f"{user} is no longer a member of project {project}")
        principal = Principal(user, role if RANK[role] <= RANK[have] else have, project, token_id, expires_at)
        if last_used_at is None or now - last_used_at > _TOUCH_EVERY_S:
            with self.store._tx() as s:
                s.get(m.Token, token_id).last_used_at = now  # type: ignore[union-attr]
        return principal

    def tokens(self, actor: Principal, *, user: str | None = None) -> list[dict]:
        """Tokens of `user` (the actor's own unless the actor is an admin), never their values."""
        user = user or (None if actor.is_admin else actor.user)
        if user is not None:
            check_name("user", user)
        actor.require(actor.is_admin or user == actor.user, f"list the tokens of {user}")
        with self.store._read() as s:
            q = select(m.Token).order_by(m.Token.id)
            if user is not None:
                q = q.where(m.Token.user == user)
            return [self._token_doc(t) for t in s.execute(q).scalars()]

    def revoke_token(self, actor: Principal, token_id: int) -> dict:
        with self.store._tx() as s:
            row = s.get(m.Token, token_id) if isinstance(token_id, int) else None
            if row is None:
                raise NotFound("token id", token_id, "no such token", hint="see `suanli token list`")
            actor.require(actor.is_admin or row.user == actor.user, f"revoke token {token_id} of {row.user}")
            if row.revoked_at is None:
                row.revoked_at = time.time()
            return self._token_doc(row)

    # ---- quotas -------------------------------------------------------------------------------

    def set_quota(
        self,
        scope: str,
        name: str,
        *,
        gpus: Any = None,
        gpu_hours: Any = None,
        cost_usd: Any = None,
        period: str | None = None,
        clear: bool = False,
    ) -> QuotaRecord:
        """Set (merge) the limits of a user or project; `clear` removes them all."""
        check_role(scope, ("user", "project"), field="scope")
        check_name(scope, name)
        limits = {"gpus": gpus, "gpu_hours": gpu_hours, "cost_usd": cost_usd}
        for field, value in limits.items():
            if value is None:
                continue
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value < 0
            ):
                raise BadInput(field, value, "must be a number >= 0")
            if field == "gpus" and value != int(value):
                raise BadInput(field, value, "must be a whole number of GPUs")
        if period is not None:
            check_role(period, PERIODS, field="period")
        with self.store._tx() as s:
            table = m.User if scope == "user" else m.Project
            if s.get(table, name) is None:
                raise NotFound(scope, name, f"no such {scope}", hint=self._near(s, table, name))
            row = s.get(m.Quota, (scope, name))
            if clear:
                if row is not None:
                    s.delete(row)
                return QuotaRecord(scope, name, None, None, None, "month")
            if row is None:
                row = m.Quota(scope=scope, name=name, period="month")
                s.add(row)
            for field, value in limits.items():
                if value is not None:
                    setattr(row, field, int(value) if field == "gpus" else float(value))
            if period is not None:
                row.period = period
            return self._quota(row)

    def quotas(self) -> list[QuotaRecord]:
        with self.store._read() as s:
            return [
                self._quota(q)
                for q in s.execute(select(m.Quota).order_by(m.Quota.scope, m.Quota.name)).scalars()
            ]

    # ---- audit --------------------------------------------------------------------------------

    def audit(
        self,
        actor: str,
        action: str,
        target: str = "",
        *,
        ok: bool = True,
        address: str = "",
        detail: str = "",
    ) -> None:
        actor, target, detail = (_storable(x) for x in (actor, target, detail))
        with self.store._tx() as s:
            s.add(
                m.Audit(
                    at=time.time(),
                    actor=actor[:64],
                    action=action[:64],
                    target=target[:255],
                    ok=ok,
                    address=address[:64],
                    detail=detail[:2000],
                )
            )

    def audit_log(self, *, limit: int = 100, before_id: int | None = None) -> list[dict]:
        from suanli.store.records import iso

        with self.store._read() as s:
            q = select(m.Audit).order_by(m.Audit.id.desc()).limit(limit)
            if before_id is not None:
                q = q.where(m.Audit.id < before_id)
            return [
                {
                    "id": a.id,
                    "at": iso(a.at),
                    "actor": a.actor,
                    "action": a.action,
                    "target": a.target,
                    "ok": a.ok,
                    "address": a.address,
                    "detail": a.detail,
                }
                for a in s.execute(q).scalars()
            ]

    # ---- helpers ------------------------------------------------------------------------------

    def _throttle(self, user: str, address: str, now: float) -> None:
        since = now - LOGIN_WINDOW_S
        with self.store._read() as s:
            failed = select(func.count(), func.min(m.Audit.at)).where(
                m.Audit.action == "login", m.Audit.ok.is_(False), m.Audit.at > since
            )
            by_user = s.execute(failed.where(m.Audit.target == str(user)[:255])).one()
            by_address = s.execute(failed.where(m.Audit.address == address)).one() if address else (0, None)
        for (count, first), limit, who in (
            (by_user, MAX_FAILURES_PER_USER, f"user {user}"),
            (by_address, MAX_FAILURES_PER_ADDRESS, f"address {address}"),
        ):
            if count >= limit:
                wait = max(1, math.ceil(first + LOGIN_WINDOW_S - now))
                raise TooManyAttempts(f"too many failed logins for {who}; try again in {wait} s")

    def _issue(
        self, user: str, project: str | None, role: str, ttl_s: float | None, label: str
    ) -> tuple[str, dict]:
        ttl = DEFAULT_TOKEN_TTL_S if ttl_s is None else ttl_s
        if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not 0 < ttl <= MAX_TOKEN_TTL_S:
            raise BadInput(
                "ttl", ttl_s, f"must be more than 0 and at most {MAX_TOKEN_TTL_S / 86400:.0f} days"
            )
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = time.time()
        with self.store._tx() as s:
            row = m.Token(
                token_hash=token_hash(token),
                user=user,
                project=project,
                role=role,
                label=label[:128],
                created_at=now,
                expires_at=now + ttl,
            )
            s.add(row)
            s.flush()
            return token, self._token_doc(row)

    @staticmethod
    def _token_doc(t: m.Token) -> dict:
        from suanli.store.records import iso

        now = time.time()
        state = "revoked" if t.revoked_at is not None else "expired" if t.expires_at <= now else "active"
        return {
            "id": t.id,
            "user": t.user,
            "project": t.project,
            "role": t.role,
            "label": t.label,
            "state": state,
            "created_at": iso(t.created_at),
            "expires_at": iso(t.expires_at),
            "last_used_at": iso(t.last_used_at),
        }

    @staticmethod
    def _quota(q: m.Quota) -> QuotaRecord:
        return QuotaRecord(q.scope, q.name, q.gpus, q.gpu_hours, q.cost_usd, q.period)

    def _memberships(self, user: str) -> list[tuple[str, str]]:
        with self.store._read() as s:
            rows = s.execute(
                select(m.Membership).where(m.Membership.user == user).order_by(m.Membership.project)
            )
            return [(r.project, r.role) for r in rows.scalars()]

    @staticmethod
    def _user(s: Any, name: str) -> m.User:
        u = s.get(m.User, name) if isinstance(name, str) else None
        if u is None:
            raise NotFound("user", name, "no such user", hint=Identity._near(s, m.User, name))
        return u

    @staticmethod
    def _near(s: Any, table: Any, name: object) -> str | None:
        from suanli.core.errors import did_you_mean

        names = [r.name for r in s.execute(select(table)).scalars()]
        return did_you_mean(str(name), names) or ("known: " + ", ".join(names[:20]) if names else "none yet")
