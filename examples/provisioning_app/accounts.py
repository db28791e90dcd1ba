"""First-visit provisioning: the Access identity becomes the app's own account, kept in step."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from flask_cf_access import AccessIdentity, CloudflareAccess, NewUser

from .models import Role, User, db

#: One extension object for every app the factories make.
cf_access = CloudflareAccess()

#: The app's roles, by the Access group that grants each. These roles follow the
#: groups both ways; any other role is the app's own, granted by hand, and kept.
ROLES_BY_GROUP = {"Admins": "admin", "Staff": "staff"}

#: The service tokens let in, as machine principals, with their roles. A service
#: token not listed here gets no account: 403.
MACHINE_ROLES = {"ci.access": {"deployer"}}

#: The roles an identity's groups or service token decide.
MANAGED_ROLES = set(ROLES_BY_GROUP.values()).union(*MACHINE_ROLES.values())


@cf_access.user_loader
def load_user(identity: AccessIdentity) -> User | NewUser[User] | None:
    """The account of a verified identity: created on its first visit, updated on every one."""
    if identity.is_service_token:
        if identity.common_name not in MACHINE_ROLES:
            return None
        key = {"service_token": identity.common_name}
    elif identity.sub:
        key = {"sub": identity.sub}  # the e-mail may change; the sub does not
    else:
        return None
    user = db.session.execute(select(User).filter_by(**key)).scalar_one_or_none()
    if user is None:
        user = User(**key)
        update_from_identity(user, identity)
        db.session.add(user)
        try:
            db.session.commit()
        except IntegrityError:
            # A concurrent first visit of the same identity committed first: theirs is
            # the row. The unique key decides, so this holds across processes too.
            db.session.rollback()
            user = db.session.execute(select(User).filter_by(**key)).scalar_one()
        else:
            return NewUser(user)
    if update_from_identity(user, identity):
        try:
            db.session.commit()
        except IntegrityError:
            # A concurrent request made the same change (the same role added) first.
            db.session.rollback()
    return user


def update_from_identity(user: User, identity: AccessIdentity) -> bool:
    """Copy what the identity says into the account; whether anything changed."""
    custom = identity.claims.get("custom")
    attributes: Mapping[str, Any] = custom if isinstance(custom, Mapping) else {}
    department = attributes.get("department")
    wanted = {
        "email": identity.email,
        "name": display_name(identity, attributes),
        "department": department if isinstance(department, str) else None,
    }
    changed = False
    for attribute, value in wanted.items():
        if getattr(user, attribute) != value:
            setattr(user, attribute, value)
            changed = True
    return sync_roles(user, granted_roles(identity)) or changed


def display_name(identity: AccessIdentity, attributes: Mapping[str, Any]) -> str:
    """The person's name from the token's claims or custom attributes, else the e-mail's."""
    for source in (identity.claims, attributes):
        name = source.get("name")
        if isinstance(name, str) and name.strip():
            return name.strip()
        parts = [source.get("given_name"), source.get("family_name")]
        if all(isinstance(part, str) and part.strip() for part in parts):
            return " ".join(str(part).strip() for part in parts)
    if identity.email:
        return identity.email.split("@", 1)[0]
    return identity.name


def granted_roles(identity: AccessIdentity) -> set[str]:
    """The managed roles the identity should hold now."""
    if identity.is_service_token:
        return set(MACHINE_ROLES.get(identity.common_name or "", ()))
    return {ROLES_BY_GROUP[group.name] for group in identity.groups if group.name in ROLES_BY_GROUP}


def sync_roles(user: User, granted: set[str]) -> bool:
    """Give the user exactly the ``granted`` managed roles, keeping the others; whether changed."""
    held = {role.name for role in user.roles if role.name in MANAGED_ROLES}
    if held == granted:
        return False
    user.roles = [
        role for role in user.roles if role.name not in MANAGED_ROLES or role.name in granted
    ] + [Role(name=name) for name in sorted(granted - held)]
    return True
