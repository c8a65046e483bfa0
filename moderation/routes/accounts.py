"""Staff accounts (admins): the list, a new account, disable/enable, a new password, unlock.

Each change is the same audited function as ``cnrbot staff`` (:mod:`moderation.services.accounts`).
A generated password is shown once, on the page that answers the change."""

from __future__ import annotations

from aiohttp import web

from moderation.security import generate_password
from moderation.services import accounts
from moderation.web import (
    by_of,
    db_of,
    form_str,
    not_found,
    now,
    render,
    require_admin,
    scope_of,
)


async def staff_view(
    request: web.Request,
    *,
    error: str | None = None,
    secret: tuple[str, str] | None = None,
    status: int = 200,
) -> web.Response:
    require_admin(request)
    db = db_of(request)
    return render(
        request,
        "staff.html",
        {
            "staff": await accounts.list_staff(db),
            "territories": await accounts.all_territories(db),
            "roles": accounts.ROLES,
            "error": error,
            "secret": secret,
            "now": now(),
        },
        status=status,
    )


async def staff_get(request: web.Request) -> web.Response:
    return await staff_view(request)


async def staff_add(request: web.Request) -> web.Response:
    require_admin(request)
    db = db_of(request)
    form = await request.post()
    ids = [
        int(v)
        for v in form.getall("territories", [])
        if isinstance(v, str) and v.isdigit() and len(v) < 12
    ]
    territories = await accounts.territories_by_id(db, ids)
    password = generate_password()
    try:
        staff = await accounts.add_account(
            db,
            by_of(request),
            form_str(form, "email"),
            form_str(form, "role"),
            password,
            territories,
        )
    except accounts.AccountError as exc:
        await db.rollback()
        return await staff_view(request, error=str(exc), status=422)
    await db.commit()
    return await staff_view(request, secret=(staff.email, password))


async def staff_change(request: web.Request) -> web.Response:
    require_admin(request)
    db = db_of(request)
    scope = scope_of(request)
    what = request.match_info["what"]
    raw_id = request.match_info["id"]
    staff = (
        await accounts.staff_by_id(db, int(raw_id))
        if raw_id.isdigit() and len(raw_id) < 12
        else None
    )
    if staff is None:
        raise not_found()
    secret = None
    if what in ("disable", "enable"):
        if staff.id == scope.staff_id:
            return await staff_view(
                request, error="Vous ne pouvez pas désactiver votre propre compte.", status=422
            )
        await accounts.disable_account(db, by_of(request), staff, what == "disable")
    elif what == "reset":
        if staff.id == scope.staff_id:
            return await staff_view(
                request,
                error="Changez votre propre mot de passe avec « cnrbot staff reset-password ».",
                status=422,
            )
        password = generate_password()
        await accounts.reset_account_password(db, by_of(request), staff, password)
        secret = (staff.email, password)
    elif what == "unlock":
        await accounts.unlock_account(db, by_of(request), staff)
    else:
        raise not_found()
    await db.commit()
    return await staff_view(request, secret=secret)


def setup(app: web.Application) -> None:
    app.router.add_get("/staff", staff_get)
    app.router.add_post("/staff", staff_add)
    app.router.add_post("/staff/{id}/{what}", staff_change)
