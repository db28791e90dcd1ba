"""The app's own users and their roles, in any database SQLAlchemy speaks (SQLite here)."""

from __future__ import annotations

from datetime import datetime, timezone

from flask_login import UserMixin
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    """The declarative base of the example's models."""


db = SQLAlchemy(model_class=Base)


def _now() -> datetime:
    return datetime.now(timezone.utc)


class User(UserMixin, db.Model):  # type: ignore[name-defined,misc]
    """A person (keyed by Access's ``sub``) or a machine (keyed by its service token's id).

    Each key is unique in the database: that constraint, not a lock, is what
    makes concurrent first visits of one person create one row.
    """

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Cloudflare Access's stable id for the person; ``None`` for a machine.
    sub: Mapped[str | None] = mapped_column(String(64), unique=True)
    #: The service token's client id (``common_name``); ``None`` for a person.
    service_token: Mapped[str | None] = mapped_column(String(255), unique=True)
    #: Kept in step with the identity: an e-mail can change, the ``sub`` does not.
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    name: Mapped[str] = mapped_column(String(200))
    #: A custom SAML or OIDC attribute, from the token's ``custom`` claim.
    department: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=_now)
    roles: Mapped[list[Role]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="Role.name"
    )

    @property
    def role_names(self) -> set[str]:
        """The names of the user's roles."""
        return {role.name for role in self.roles}

    @property
    def is_machine(self) -> bool:
        """Whether a machine holding a service token, not a person."""
        return self.service_token is not None


class Role(db.Model):  # type: ignore[name-defined,misc]
    """A role the app grants a user: from the identity provider's groups, or by hand."""

    __tablename__ = "user_roles"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
