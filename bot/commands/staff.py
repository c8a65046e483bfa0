"""``cnrbot staff add|list|disable|enable|reset-password``: console accounts.

Passwords are read with ``getpass`` on a terminal, from the first line of stdin when piped, or
generated (``--generate-password``) and printed once.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from moderation.security import generate_password, password_problem
from moderation.services import accounts
from moderation.services.audit import CLI
from storage.db import create_engine, session_factory, upgrade
from storage.settings import Settings

T = TypeVar("T")


def register(sub: Any) -> None:
    parser = sub.add_parser("staff", help="staff accounts of the moderation console")
    ssub = parser.add_subparsers(dest="staff_command", metavar="ACTION", required=True)
    add = ssub.add_parser("add", help="create an account")
    add.add_argument("email")
    add.add_argument("--role", choices=accounts.ROLES, required=True)
    add.add_argument("--territory", nargs="*", default=[], metavar="CODE")
    add.add_argument("--campaign", metavar="CODE", help="campaign of the territory codes")
    add.add_argument(
        "--generate-password", action="store_true", help="generate a password and print it once"
    )
    add.set_defaults(func=_add)
    ls = ssub.add_parser("list", help="list accounts")
    ls.set_defaults(func=_list)
    dis = ssub.add_parser("disable", help="disable an account (and close its sessions)")
    dis.add_argument("email")
    dis.set_defaults(func=_disable)
    en = ssub.add_parser("enable", help="re-enable a disabled account")
    en.add_argument("email")
    en.set_defaults(func=_enable)
    reset = ssub.add_parser("reset-password", help="set a new password (unlocks the account)")
    reset.add_argument("email")
    reset.add_argument("--generate-password", action="store_true")
    reset.set_defaults(func=_reset)


def _run(action: Callable[[AsyncSession], Awaitable[T]]) -> T:
    async def go() -> T:
        engine = create_engine(Settings())
        try:
            await upgrade(engine)
            async with session_factory(engine)() as session:
                result = await action(session)
                await session.commit()
                return result
        finally:
            await engine.dispose()

    return asyncio.run(go())


def _read_password(generate: bool) -> tuple[str, bool]:
    """(password, generated)."""
    if generate:
        return generate_password(), True
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n"), False
    first = getpass.getpass("Mot de passe : ")
    if first != getpass.getpass("Mot de passe (confirmation) : "):
        raise accounts.AccountError("Les deux saisies diffèrent.")
    return first, False


def _fail(exc: Exception) -> int:
    print(f"erreur : {exc}", file=sys.stderr)
    return 2


def _add(args: argparse.Namespace) -> int:
    try:
        email = accounts.normalise_email(args.email)
        password, generated = _read_password(args.generate_password)
        problem = password_problem(password)
        if problem:
            raise accounts.AccountError(problem)

        async def action(session: AsyncSession) -> None:
            territories = await accounts.resolve_territories(
                session, list(args.territory), args.campaign
            )
            await accounts.add_account(session, CLI, email, args.role, password, territories)

        _run(action)
    except accounts.AccountError as exc:
        return _fail(exc)
    print(f"compte créé : {email} ({args.role})")
    if generated:
        print(f"mot de passe (affiché une seule fois) : {password}")
    return 0


def _list(args: argparse.Namespace) -> int:
    rows = _run(accounts.list_staff)
    if not rows:
        print("aucun compte")
    for s in rows:
        state = "désactivé" if s.disabled else "actif"
        print(f"{s.email}\t{s.role}\t{','.join(s.territories) or '-'}\t{state}")
    return 0


def _set_disabled(email: str, disabled: bool) -> int:
    async def action(session: AsyncSession) -> None:
        staff = await accounts.get_staff(session, email)
        await accounts.disable_account(session, CLI, staff, disabled)

    try:
        _run(action)
    except accounts.AccountError as exc:
        return _fail(exc)
    print(f"compte {'désactivé' if disabled else 'réactivé'} : {email.strip().lower()}")
    return 0


def _disable(args: argparse.Namespace) -> int:
    return _set_disabled(args.email, True)


def _enable(args: argparse.Namespace) -> int:
    return _set_disabled(args.email, False)


def _reset(args: argparse.Namespace) -> int:
    try:
        password, generated = _read_password(args.generate_password)

        async def action(session: AsyncSession) -> None:
            staff = await accounts.get_staff(session, args.email)
            await accounts.reset_account_password(session, CLI, staff, password)

        _run(action)
    except accounts.AccountError as exc:
        return _fail(exc)
    print(f"mot de passe changé : {args.email.strip().lower()}")
    if generated:
        print(f"mot de passe (affiché une seule fois) : {password}")
    return 0
