"""``GET /dashboard``: the loop-health page and its static files (HTML, ES modules, CSS).

The page and its assets are public: they hold no data and no secret. The figures come
from the JSON API (``/v1/loops/<loop>/health``, ``/models``, ``/challengers``,
``/audit``), called by the page with the admin key the user types in, which the page
keeps in the tab's ``sessionStorage`` only. Assets are a fixed list read from
``service/static`` (the vendored chart library, uPlot, and the page's own files), so
no request names a path on disk.
"""
from __future__ import annotations

from importlib.resources import files

from flask import Blueprint, Response

from ..errors import NotFound

bp = Blueprint("dashboard", __name__)

_STATIC = files("service") / "static"
_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html"}
#: Served asset name -> (folder under service/static, MIME type).
ASSETS = {entry.name: (folder, _TYPES[suffix])
          for folder in ("dashboard", "uplot") for entry in (_STATIC / folder).iterdir()
          for suffix in _TYPES if entry.name.endswith(suffix) and entry.name != "index.html"}
#: The page's own files change with the package: the browser revalidates them.
CACHE = "no-cache"


def _read(folder: str, name: str) -> bytes:
    return (_STATIC / folder / name).read_bytes()


@bp.get("/dashboard")
def page():
    return Response(_read("dashboard", "index.html"), mimetype="text/html",
                    headers={"Cache-Control": CACHE, "Content-Security-Policy": CSP,
                             "Referrer-Policy": "no-referrer"})


@bp.get("/dashboard/<asset>")
def asset(asset):
    if asset not in ASSETS:
        raise NotFound(f"no dashboard asset {asset[:64]!r}")
    folder, mimetype = ASSETS[asset]
    return Response(_read(folder, asset), mimetype=mimetype, headers={"Cache-Control": CACHE})


#: Scripts and styles only from this origin, data only from this API.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
       "frame-ancestors 'none'")
