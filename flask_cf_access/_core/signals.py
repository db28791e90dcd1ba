"""Signals sent when a request is admitted or refused, for audit logs and metrics.

Both are sent by :func:`~flask_cf_access.verify_access_in_request` (so by
``@require_access`` and ``@require_group`` too), with the Flask application as
sender, and by :class:`~flask_cf_access.CloudflareAccessMiddleware`, with
the middleware as sender. Connect to them as to Flask's own signals::

    from flask_cf_access import access_denied

    @access_denied.connect_via(app)
    def audit(sender, error, reason, method, path, identity):
        audit_log.warning("refused %s %s: %s", method, path, reason)

No keyword argument carries the token. ``method`` and ``path`` are as the
client sent them, control characters included: escape them before a log line.
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

#: Sent after a request passed every check. Keyword arguments: ``identity``
#: (the :class:`~flask_cf_access.AccessIdentity`), ``method`` and ``path``.
#: The WSGI middleware sends it when the answer starts, unless a check inside
#: the application (the Flask extension's, behind
#: :meth:`~flask_cf_access.CloudflareAccessMiddleware.from_flask`) decided
#: the request by then and sent its own: one signal per request, saying what
#: the client got.
access_granted = _signals.signal("access-granted")

#: Where the WSGI middleware keeps, in an admitted request's environ, the
#: identity whose grant it has still to report; a check inside the
#: application that decides the request removes it (reporting is then its).
PENDING_GRANT_ENVIRON_KEY = "flask_cf_access.pending_grant"

#: Sent when a request is refused, after the log line. Keyword arguments:
#: ``error`` (the :class:`~flask_cf_access.AccessError` about to be answered:
#: 401, 403 or 503; or 400 from the WSGI middleware, for an ambiguous path;
#: its ``sent_status`` is what the client gets, 302 when
#: ``CF_ACCESS_UNAUTHORIZED = "redirect"`` sends it to the login page, whose
#: URL is then its ``login_redirect``),
#: ``reason`` (its :class:`~flask_cf_access.Reason`), ``method``, ``path``
#: and ``identity`` (who was refused, when the token verified: a 403, or a
#: 503 for groups; ``None`` otherwise).
access_denied = _signals.signal("access-denied")

#: Sent when the app's user loader gave a user for the request's identity, once
#: per request, with the app as sender. Keyword arguments: ``user``,
#: ``identity`` and ``created`` (``True`` when the loader returned
#: :class:`~flask_cf_access.NewUser`: it has just created the account).
user_loaded = _signals.signal("user-loaded")

#: Sent for every answer a call of an onward policy (:mod:`flask_cf_access.onward`)
#: gets (each hop of a redirect it follows) and every call it refuses to
#: make, with the policy as sender. Keyword arguments:
#: ``method``, ``target`` (scheme, host and path: no query), ``status`` (the
#: answer's, or ``None`` when nothing was sent), ``identity`` (the name it
#: called as: the service token's client id or the user's name; ``None`` if
#: none) and ``error`` (the :class:`~flask_cf_access.onward.OnwardError`
#: raised, or ``None``). No argument carries a token or a secret.
onward_call = _signals.signal("onward-call")
