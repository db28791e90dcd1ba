"""The checks that need environments of their own: every Python, the lowest versions, the docs.

``.ci/run`` runs the main job (lint, types, ``python -m pytest``) in the
project's ``.venv``, and beside it, two suites at a time, these sessions::

    nox -s tests-3.10 tests-3.12 tests-3.13 lowest sdist

- ``tests``: the suite on every Python ``python_requires`` admits (3.10 to 3.13),
  with the newest dependencies each one resolves.
- ``lowest``: the suite on the oldest Python with every dependency at exactly
  the lower bound ``setup.cfg`` declares, so a bound that is too low fails here.
- ``sdist``: the suite run from the unpacked source distribution, with the
  package installed from it, so the archive carries all the tests need.
- ``docs``: the Sphinx site with warnings as errors, and its doctests, once
  ``docs/conf.py`` exists.

Environments are made by uv (``pip install nox uv``), which takes seconds where
pip takes a minute. Interpreters installed by pyenv are found without ``pyenv
global`` naming them all.
"""

from __future__ import annotations

import configparser
import os
import shutil
import tarfile
from pathlib import Path

import nox
from packaging.requirements import Requirement

ROOT = Path(__file__).parent
#: Every Python version ``python_requires`` admits that this project supports.
PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
#: The extras whose bounds the ``lowest`` session proves (``docs`` and ``dev``
#: are tools for this repository, installed at their newest).
PROVEN_EXTRAS = ["async", "redis", "login", "httpx", "testing", "examples", "test"]

nox.options.default_venv_backend = "uv"
nox.options.download_python = "never"
nox.options.sessions = ["tests", "lowest", "sdist", "docs"]


def _activate_pyenv_versions() -> None:
    """Make pyenv's ``python3.X`` shims answer for every installed 3.10 to 3.13.

    pyenv's shims only run the versions ``pyenv global`` (or ``PYENV_VERSION``)
    names; both nox and pyenv read ``PYENV_VERSION``, so the newest installed
    patch release of each supported version is added to it, after whatever
    was active already.
    """
    versions_dir = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    if not versions_dir.is_dir():
        return
    active = os.environ.get("PYENV_VERSION") or _pyenv_global(versions_dir.parent)
    names = [name for name in active.split(":") if name]
    for python in PYTHONS:
        installed = [
            path.name
            for path in versions_dir.glob(f"{python}.*")
            if path.name.removeprefix(f"{python}.").isdigit()
        ]
        if installed:
            newest = max(installed, key=lambda name: int(name.rsplit(".", 1)[1]))
            if newest not in names:
                names.append(newest)
    os.environ["PYENV_VERSION"] = ":".join(names)


def _pyenv_global(pyenv_root: Path) -> str:
    """The versions in pyenv's global ``version`` file, joined by ``:``."""
    try:
        lines = (pyenv_root / "version").read_text().split()
    except OSError:
        return ""
    return ":".join(line for line in lines if not line.startswith("#"))


def lower_bounds() -> list[str]:
    """``name==version`` for every ``>=`` bound of the package and its proven extras."""
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    lines = config["options"]["install_requires"].splitlines()
    extras = config["options.extras_require"]
    for extra in PROVEN_EXTRAS:
        lines += extras[extra].splitlines()
    pins: dict[str, str] = {}
    for line in lines:
        if not line.strip():
            continue
        requirement = Requirement(line)
        if requirement.name == "flask-cf-access":
            continue  # the package's own extras, listed above
        floors = [spec.version for spec in requirement.specifier if spec.operator == ">="]
        if not floors:
            raise ValueError(f"setup.cfg: {line.strip()!r} declares no lower bound")
        pins[requirement.name] = f"{requirement.name}=={floors[0]}"
    return sorted(pins.values())


#: Set for the suite in these sessions: the docs are built, and their tests run,
#: by the main job (``.ci/run``) and the ``docs`` session, not once per Python.
DOCS_ELSEWHERE = {"DOCS_TESTED_ELSEWHERE": "1"}


def run_suite(session: nox.Session) -> None:
    """The project's test command, the one the README gives."""
    session.run("python", "-m", "pytest", *session.posargs, env=DOCS_ELSEWHERE)


_PRINT_INSTALLED = (
    "import importlib.metadata as m; "
    "print('Installed:', ', '.join(sorted(f'{d.name}=={d.version}' for d in m.distributions())))"
)

_activate_pyenv_versions()


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The suite, with the newest dependencies this Python resolves."""
    session.install("-e", ".[test]")
    run_suite(session)


@nox.session(python=PYTHONS[0])
def lowest(session: nox.Session) -> None:
    """The suite on the oldest Python, every dependency at its declared lower bound."""
    constraints = Path(session.create_tmp()) / "lowest-constraints.txt"
    pins = lower_bounds()
    constraints.write_text("\n".join(pins) + "\n")
    session.log("Pinned to the lower bounds: " + ", ".join(pins))
    session.install("-c", str(constraints), "-e", ".[test]")
    session.run("python", "-c", _PRINT_INSTALLED)
    run_suite(session)


@nox.session(python=PYTHONS[-1])
def sdist(session: nox.Session) -> None:
    """The suite from the unpacked sdist, with the package installed from that sdist."""
    work = Path(session.create_tmp())
    dist = work / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    session.install("build[uv]")
    session.run(
        "python", "-m", "build", "--installer", "uv", "--sdist", "--outdir", str(dist), silent=True
    )
    (archive,) = dist.glob("*.tar.gz")
    unpacked = work / "unpacked"
    shutil.rmtree(unpacked, ignore_errors=True)
    with tarfile.open(archive) as tar:
        tar.extractall(unpacked, filter="data")
    (source,) = unpacked.iterdir()
    session.install(f"{archive}[test]")
    session.chdir(source)
    run_suite(session)


@nox.session(python=PYTHONS[1])
def docs(session: nox.Session) -> None:
    """The Sphinx site, warnings as errors, and its doctests (once docs/ has a conf.py)."""
    if not (ROOT / "docs" / "conf.py").is_file():
        session.skip("docs/conf.py does not exist yet")
    session.install("-e", ".[docs,testing,httpx]")
    build = ROOT / "docs" / "_build"
    session.run("sphinx-build", "-W", "--keep-going", "-b", "html", "docs", str(build / "html"))
    session.run(
        "sphinx-build", "-W", "--keep-going", "-b", "doctest", "docs", str(build / "doctest")
    )
