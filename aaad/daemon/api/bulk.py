"""``POST /v1/users/import``: many users in one request, all or none (the API
side of ``aaad user import``; store/user_import.py reads, checks and writes).
A tenant's token imports its tenant's users (plans: its own, else the
operator's).

The body is the file itself: JSON Lines (``?format=jsonl``, the default) or
CSV with a header (``?format=csv``), at most :data:`MAX_IMPORT` octets. A bad
line refuses the whole body with 422 and the problems (line, field, what is
wrong); nothing is written. Passwords are hashed with argon2id on the
daemon's hashing threads unless ``?cleartext=true`` (kept as they are) or
``?password_hash=nt`` (stored as NT hashes, one MD4 each); at most
:data:`MAX_HASHED` of them a request (hashing costs ~15 ms of CPU each):
larger files send ``password_hash`` or go through ``aaad user import``.
"""

from __future__ import annotations

import dataclasses
import io
from typing import Any

from twisted.internet.defer import Deferred, gatherResults

from aaad.credentials import hash_password, nt_hash
from aaad.daemon.api.context import ApiContext
from aaad.daemon.api.http import ApiRequest, Problem, Reply, Router, query_bool, query_str
from aaad.store import user_import as store

__all__ = ["register", "MAX_IMPORT", "MAX_HASHED"]

MAX_IMPORT = 64 * 1024 * 1024
MAX_HASHED = 1000


def register(router: Router, ctx: ApiContext) -> None:
    def handle(req: ApiRequest) -> Deferred[Reply]:
        return _import(ctx, req)
    router.add("POST", "/v1/users/import", handle, write=True, max_body=MAX_IMPORT)


def _import(ctx: ApiContext, req: ApiRequest) -> Deferred[Reply]:
    fmt = query_str(req, "format", max_len=5) or "jsonl"
    if fmt not in store.FORMATS.values():
        raise Problem(400, "invalid-parameter", "format must be jsonl or csv", field="format")
    cleartext = bool(query_bool(req, "cleartext"))
    form = query_str(req, "password_hash", max_len=8) or "argon2id"
    if form not in ("argon2id", "nt"):
        raise Problem(400, "invalid-parameter", "password_hash must be argon2id or nt",
                      field="password_hash")
    if cleartext and form == "nt":
        raise Problem(400, "invalid-parameter", "give cleartext or password_hash, not both",
                      field="password_hash")
    try:
        text = req.raw_body.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise Problem(400, "invalid-body", f"the body is not UTF-8 (at byte {e.start})",
                      field="") from None
    try:
        new = store.read_users(io.StringIO(text, newline=""), fmt,
                               taxes=[t.name for t in ctx.taxes()])
    except store.ImportFailed as e:
        raise _refused(e) from None
    if not new:
        raise Problem(400, "invalid-body", "no users in the body", field="")
    plain = [i for i, u in enumerate(new) if u.password_cleartext is not None]
    if cleartext or not plain:
        return _write(ctx, req, new)
    if form == "nt":
        out = list(new)
        for i in plain:
            out[i] = dataclasses.replace(out[i], password_cleartext=None,
                                         password_nt_hash=nt_hash(str(out[i].password_cleartext)))
        return _write(ctx, req, out)
    if len(plain) > MAX_HASHED:
        raise Problem(413, "too-many-passwords",
                      f"{len(plain)} passwords to hash, at most {MAX_HASHED} a request: send "
                      "password_hash (argon2id), cleartext=true, or use 'aaad user import'")
    hashed = gatherResults([ctx.hasher.run(hash_password, str(new[i].password_cleartext))
                            for i in plain], consumeErrors=True)

    def with_hashes(hashes: list[str]) -> Deferred[Reply]:
        out = list(new)
        for i, h in zip(plain, hashes, strict=True):
            out[i] = dataclasses.replace(out[i], password_cleartext=None, password_hash=h)
        return _write(ctx, req, out)
    return hashed.addCallback(with_hashes)


def _write(ctx: ApiContext, req: ApiRequest, new: list[store.NewUser]) -> Deferred[Reply]:
    now = ctx.now()

    def run(conn: Any) -> Reply:
        try:
            r = store.import_users(conn, new, now=now, tenant=req.tenant)
        except store.ImportFailed as e:
            raise _refused(e) from None
        return Reply(201, {"imported": r.users, "balances": r.balances,
                           "opening_lines": r.opening_lines,
                           "accounts_for_seen_names": r.holders_replaced})
    return ctx.write(req, run)


def _refused(e: store.ImportFailed) -> Problem:
    return Problem(422, "import-refused",
                   f"{e.count} problem{'s' if e.count != 1 else ''}; nothing imported",
                   extra={"problems": [{"line": p.line, "field": p.field, "message": p.message}
                                       for p in e.problems],
                          "count": e.count})
