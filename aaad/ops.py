"""Where the operator files are: the example config, the systemd unit, the
Grafana dashboard and the Prometheus alert rules.

The one copy of each lives in the source tree (``etc/``, ``systemd/``). A
wheel installs them as data files into ``<prefix>/share/aaad/``: in a venv at
``/opt/aaad`` that is ``/opt/aaad/share/aaad/``. :func:`ops_file` finds them
in either place.
"""

from __future__ import annotations

import sysconfig
from importlib import metadata
from pathlib import Path, PurePosixPath

__all__ = ["OPS_FILES", "ops_file"]

#: Each operator file and the source-tree directory it comes from.
OPS_FILES: dict[str, str] = {
    "aaad.yaml": "etc",
    "aaad.service": "systemd",
    "grafana-dashboard.json": "etc",
    "prometheus-alerts.yaml": "etc",
}


def ops_file(name: str) -> Path:
    """The path of one operator file, installed or in the source checkout.

    Looks, in order:

    1. in the source checkout that ``aaad`` is imported from, if it is one (a
       development or editable install): the file there is the one copy, and
       an installed copy beside it would be a stale snapshot;
    2. where the installer put it, as the distribution's ``RECORD`` says (any
       install scheme: a venv, ``--user``, ``--prefix``, pipx);
    3. ``<scheme data path>/share/aaad/`` of this interpreter's default and
       user schemes, for an install whose ``RECORD`` is not readable.

    Args:
        name: One of ``aaad.yaml``, ``aaad.service``, ``grafana-dashboard.json``,
            ``prometheus-alerts.yaml``.

    Returns:
        The path of an existing file.

    Raises:
        ValueError: ``name`` is not an operator file.
        FileNotFoundError: No copy was found; the message lists every place
            looked in.
    """
    if name not in OPS_FILES:
        raise ValueError(f"no operator file {name!r}; known: {', '.join(sorted(OPS_FILES))}")
    looked: list[Path] = []
    for candidate in _candidates(name):
        if candidate in looked:
            continue
        if candidate.is_file():
            return candidate
        looked.append(candidate)
    raise FileNotFoundError(
        f"aaad's {name} was not found; looked in: {', '.join(map(str, looked))} "
        "(is aaad installed from a wheel or sdist, or run from a source checkout?)")


def _candidates(name: str) -> list[Path]:
    found: list[Path] = []
    checkout = _checkout()
    if checkout is not None:
        found.append(checkout / OPS_FILES[name] / name)
    found.extend(_recorded(name))
    for scheme in (sysconfig.get_default_scheme(), sysconfig.get_preferred_scheme("user")):
        try:
            data = sysconfig.get_path("data", scheme)
        except KeyError:  # a scheme this platform does not have
            continue
        found.append(Path(data) / "share" / "aaad" / name)
    return found


def _checkout() -> Path | None:
    """The source tree ``aaad`` is imported from, or None for an installed package."""
    root = Path(__file__).resolve().parents[1]     # this file is aaad/ops.py
    # setup.cfg is in every checkout and sdist, never in site-packages.
    return root if (root / "setup.cfg").is_file() else None


def _recorded(name: str) -> list[Path]:
    """The installed copies of ``share/aaad/<name>`` the installer recorded."""
    try:
        dist = metadata.distribution("aaad")
    except metadata.PackageNotFoundError:
        return []
    wanted = ("share", "aaad", name)
    return [Path(str(dist.locate_file(f))).resolve() for f in dist.files or ()
            if PurePosixPath(str(f)).parts[-3:] == wanted]
