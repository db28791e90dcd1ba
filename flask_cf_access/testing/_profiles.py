"""The profile fields of a stand-in user's ``get-identity`` answer, in Access's shapes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any


def identity_profile(
    *,
    amr: Iterable[str] | None = None,
    idp: tuple[str, str] | None = None,
    posture: Mapping[str, bool | Mapping[str, Any]] | None = None,
    login_at: float | None = None,
    country: str | None = None,
    warp: bool | None = None,
    gateway: bool | None = None,
    device_id: str | None = None,
    custom: Mapping[str, Any] | None = None,
    oidc_fields: Mapping[str, Any] | None = None,
    client_certificate: bool | None = None,
    ip: str | None = None,
) -> dict[str, Any]:
    """The ``get-identity`` fields for a profile, for ``issuer.user_token(…, profile=…)``::

        identity_profile(amr=["pwd", "hwk"], posture={"disk-rule": True}, login_at=now - 60)

    Only the fields given are in the answer (the stand-in's own ``idp`` and ``iat``
    stay otherwise).

    :param amr: the methods the user signed in with, e.g. ``["pwd", "otp"]``.
    :param idp: the identity provider as ``(id, type)``, e.g. ``("okta-1", "okta")``.
    :param posture: by rule id, whether it passed, or a whole ``devicePosture`` entry.
    :param login_at: when the user signed in (``iat``), seconds since the epoch.
    :param client_certificate: whether Access saw a valid client certificate.
    """
    fields: dict[str, Any] = {}
    if amr is not None:
        fields["amr"] = list(amr)
    if idp is not None:
        fields["idp"] = {"id": idp[0], "type": idp[1]}
    if posture is not None:
        fields["devicePosture"] = {
            rule_id: _posture_entry(rule_id, result, login_at)
            for rule_id, result in posture.items()
        }
    if login_at is not None:
        fields["iat"] = login_at
    if country is not None:
        fields["geo"] = {"country": country}
    for name, value in (
        ("is_warp", warp),
        ("is_gateway", gateway),
        ("device_id", device_id),
        ("ip", ip),
    ):
        if value is not None:
            fields[name] = value
    if custom is not None:
        fields["custom"] = dict(custom)
    if oidc_fields is not None:
        fields["oidc_fields"] = dict(oidc_fields)
    if client_certificate is not None:
        fields["mtls_auth"] = {
            "cert_presented": client_certificate,
            "auth_status": "OK" if client_certificate else "NONE",
        }
    return fields


def _posture_entry(
    rule_id: str, result: bool | Mapping[str, Any], checked_at: float | None
) -> dict[str, Any]:
    if not isinstance(result, bool):
        return dict(result)
    when = datetime.fromtimestamp(checked_at or 0, tz=timezone.utc)
    return {
        "id": rule_id,
        "rule_name": f"Stand-in rule {rule_id}",
        "type": "file",
        "success": result,
        "timestamp": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "schedule": "5m",
        "input": {},
        "check": {},
    }
