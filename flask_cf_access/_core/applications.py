"""Several Access applications in front of one origin (``CF_ACCESS_APPLICATIONS``).

Each application has a name, its AUD tag(s), the paths it covers (whole
segments) and, optionally, the hosts. A request belongs to the application
with the longest matching path, as Access resolves it; a token passes only if
its ``aud`` holds an AUD of that application (:attr:`Reason.WRONG_APPLICATION`
otherwise). Paths are read as the middleware reads them (:mod:`._paths`):
every reading of a path falls under an application, and the path is judged
under the most specific of them, or refused when they disagree otherwise, so
no spelling (``//admin``, ``/ADMIN``, ``/admin;x``, ``/%61dmin``) reaches the
laxer application.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .errors import ConfigurationError, Reason, refusal, warn_renamed
from .paths import _configurable_path, _loose_segments, _PathReadings, _segments


@dataclass(frozen=True)
class ApplicationSettings:
    """What ``CF_ACCESS_APPLICATIONS`` says of one Access application."""

    #: The name views and blueprints call it by (``require(application=...)``).
    name: str
    #: Its AUD tag(s), as its Overview page in the Access dashboard shows them.
    audience: tuple[str, ...]
    #: The path prefixes it covers, by whole segments (``/admin`` covers
    #: ``/admin/users``, not ``/administrator``).
    paths: tuple[str, ...] = ("/",)
    #: The hosts it covers (lower case, no port); empty: every host.
    hosts: frozenset[str] = frozenset()
    #: :attr:`audience` as a set, for the check of each request.
    audience_set: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "audience_set", frozenset(self.audience))

    @property
    def audiences(self) -> tuple[str, ...]:
        """Deprecated spelling of :attr:`audience`."""
        warn_renamed("ApplicationSettings.audiences", "ApplicationSettings.audience")
        return self.audience

    def admits(self, claims: Mapping[str, Any]) -> bool:
        """Whether the ``aud`` of verified ``claims`` holds one of this application's AUDs."""
        aud = claims.get("aud")
        if isinstance(aud, str):
            return aud in self.audience_set
        return isinstance(aud, (list, tuple)) and not self.audience_set.isdisjoint(aud)


class _Cover(NamedTuple):
    """One path (on one host, or any) of one application."""

    host: str | None
    prefix: tuple[str, ...]
    loose_prefix: tuple[str, ...]
    application: ApplicationSettings

    def contains(self, other: _Cover) -> bool:
        """Whether every path ``other`` covers is also under this cover (less specific)."""
        return other.loose_prefix[: len(self.loose_prefix)] == self.loose_prefix and (
            self.host is None or self.host == other.host
        )


class ApplicationMap:
    """The applications of ``CF_ACCESS_APPLICATIONS``, and which one a request is for."""

    def __init__(self, applications: Iterable[ApplicationSettings]) -> None:
        self.applications = tuple(applications)
        #: By name, for ``require(application=...)``.
        self.by_name = {application.name: application for application in self.applications}
        covers = [
            _Cover(host, _segments(path), _loose_segments(_segments(path)), application)
            for application in self.applications
            for path in application.paths
            for host in _each_host(application.hosts)
        ]
        # Most specific first: the longest path, then a named host before any host.
        self._covers = tuple(
            sorted(
                covers, key=lambda cover: (len(cover.prefix), cover.host is not None), reverse=True
            )
        )

    def application_for(self, host: str | None, path_info: str) -> ApplicationSettings | None:
        """The application a request for ``path_info`` (a ``PATH_INFO``) on ``host`` is for.

        Each reading of the path falls under its most specific cover; the
        path is judged under the most specific of those, provided every other
        one contains it (a shorter path, on any host or the same). ``None``:
        no application covers the path.

        :raises AccessBadRequest: the path is ambiguous (see
            :class:`~flask_cf_access._paths._PathReadings`), or its readings
            fall under applications neither of which contains the other.
        """
        return self._for_readings(_host_name(host), _PathReadings(path_info))

    def _for_readings(
        self, host: str | None, readings: _PathReadings
    ) -> ApplicationSettings | None:
        found = {
            *(self._cover_for(host, segments, loose=False) for segments in readings.segments),
            *(self._cover_for(host, segments, loose=True) for segments in readings.loose_segments),
        }
        if len(found) == 1:
            only = found.pop()
            return None if only is None else only.application
        covers = [cover for cover in found if cover is not None]
        chosen = max(covers, key=lambda cover: (len(cover.loose_prefix), cover.host is not None))
        if not all(cover.contains(chosen) for cover in covers):
            raise refusal(Reason.AMBIGUOUS_PATH)
        return chosen.application

    def _cover_for(
        self, host: str | None, segments: tuple[str, ...], *, loose: bool
    ) -> _Cover | None:
        for cover in self._covers:
            prefix = cover.loose_prefix if loose else cover.prefix
            if segments[: len(prefix)] == prefix and (cover.host is None or cover.host == host):
                return cover
        return None

    def applications_under(self, host: str | None, path: str) -> tuple[ApplicationSettings, ...]:
        """Every application a URL at or below ``path`` may be for, most specific last.

        For a route whose rule has variable parts (``/<path:p>``), ``path`` is
        its fixed start; every application with a path below it counts too.

        :raises AccessBadRequest: ``path`` is ambiguous.
        """
        host = _host_name(host)
        found: list[ApplicationSettings] = []
        own = self.application_for(host, path)
        if own is not None:
            found.append(own)
        stem = _loose_segments(_segments(path))
        for cover in reversed(self._covers):
            below = len(cover.loose_prefix) > len(stem) and cover.loose_prefix[: len(stem)] == stem
            on_host = host is None or cover.host is None or cover.host == host
            if below and on_host and cover.application not in found:
                found.append(cover.application)
        return tuple(found)


def _each_host(hosts: frozenset[str]) -> list[str | None]:
    """The hosts of an application, or ``[None]`` (every host) when it names none."""
    return [*sorted(hosts)] if hosts else [None]


def _host_name(host: str | None) -> str | None:
    """A ``Host`` header as a host name: lower case, without its port or trailing dot."""
    if not host:
        return None
    name = host.lower()
    if name.startswith("["):
        name = name.partition("]")[0] + "]"
    elif ":" in name:
        name = name.rpartition(":")[0]
    return name.rstrip(".")


def applications_setting(
    value: object, audience: Any
) -> tuple[tuple[ApplicationSettings, ...], tuple[str, ...]]:
    """``CF_ACCESS_APPLICATIONS``, validated, and the AUD tags of them all.

    ``value`` maps each application's name to ``{"audience": tag or list,
    "paths": [...], "hosts": [...]}`` (``paths`` defaults to ``["/"]``);
    ``audience`` parses an AUD tag or list, naming the key it is given.

    :raises ConfigurationError: naming the application and what is wrong.
    """
    key = "CF_ACCESS_APPLICATIONS"
    if not isinstance(value, Mapping) or not value:
        raise ConfigurationError(
            f"{key} must map each application's name to"
            ' {"audience": <AUD tag(s)>, "paths": [...], "hosts": [...]}.'
        )
    applications: list[ApplicationSettings] = []
    owners: dict[tuple[str | None, tuple[str, ...]], str] = {}
    tags: dict[str, str] = {}
    for name, entry in value.items():
        entry_key = f"{key}[{name!r}]"
        if not isinstance(name, str) or not name.strip():
            raise ConfigurationError(f"{key} must name each application with a non-empty string.")
        if not isinstance(entry, Mapping) or set(entry) - {"audience", "paths", "hosts"}:
            raise ConfigurationError(f"{entry_key} may only have 'audience', 'paths' and 'hosts'.")
        application_audiences: tuple[str, ...] = audience(
            f"{entry_key}['audience']", entry.get("audience")
        )
        paths = entry.get("paths", ["/"])
        paths = [paths] if isinstance(paths, str) else paths
        if not isinstance(paths, (list, tuple)) or not paths:
            raise ConfigurationError(f"{entry_key}['paths'] must be a non-empty list of paths.")
        for path in paths:
            if not isinstance(path, str) or not (path == "/" or _configurable_path(path)):
                raise ConfigurationError(
                    f"{entry_key}['paths']: {path!r} is not a path starting with '/' (without"
                    " '.' or '..' segments, '%', ';', backslashes or control characters)."
                )
        hosts = entry.get("hosts", [])
        hosts = [hosts] if isinstance(hosts, str) else hosts
        if not isinstance(hosts, (list, tuple)) or not all(
            isinstance(host, str) and host.strip() and "/" not in host for host in hosts
        ):
            raise ConfigurationError(f"{entry_key}['hosts'] must be a list of host names.")
        host_names = frozenset(_host_name(host.strip()) or "" for host in hosts)
        for tag in application_audiences:
            if tags.setdefault(tag, name) != name:
                raise ConfigurationError(
                    f"{entry_key}: its AUD tag is also that of {tags[tag]!r}; each"
                    " application has its own."
                )
        for path in paths:
            for host in _each_host(host_names):
                spot = (host, _loose_segments(_segments(path)))
                if owners.setdefault(spot, name) != name:
                    raise ConfigurationError(
                        f"{entry_key}: {path!r} is also covered by {owners[spot]!r}"
                        " (letter case and trailing dots do not count)."
                    )
        applications.append(
            ApplicationSettings(name.strip(), application_audiences, tuple(paths), host_names)
        )
    every_tag = tuple(tag for application in applications for tag in application.audience)
    return tuple(applications), every_tag
