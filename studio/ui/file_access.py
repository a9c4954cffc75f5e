"""Studio files in the browser: links that name a file by what it is, and the route that checks each request.

How Gradio 6 serves files, and why the studio does not use that for its own: a component value that is a
file path is copied into Gradio's cache (``GRADIO_TEMP_DIR``) and sent as ``{"path": <server path>, "url":
"<root>/gradio_api/file=<server path>"}``; ``/gradio_api/file=`` then serves anything under the cache or
``allowed_paths`` to any logged-in user. So every image URL showed the server's data path, and whoever had
(or guessed) one got the file, whatever the gallery would show them.

Instead, handlers hand components a link: ``<root>/studio/files/<kind>/<ref…>/<name>`` — an image by its
id, a training image by job, step, set and index, an export by its (random) file name, a layout template's
picture by brand and name, a dataset image (or its thumbnail) by dataset and image id. Gradio keeps an
``http(s)`` URL as it is (Gallery as a value; :func:`linked_image` and :func:`linked_file` do the same for
Image and File, which would otherwise fetch it on the server): it is never copied into the cache, ``path``
and ``url`` both hold the link, and no server path reaches the page. ``<root>`` is the app's public address
as Gradio itself works it out for its own file URLs (``X-Forwarded-Host`` / ``-Proto`` honoured).

:class:`StudioFiles` answers those links: it finds the logged-in user from Gradio's session cookie and asks
:class:`~studio.services.file_access.FileAccessService`, which reads the database as it is now (a revoke
or a disable ends access at once). Anyone else, a bad link and a missing file all get the same 404.
``gradio_client`` downloads a result as ``/gradio_api/file=<link>``: that is answered the same way.
What Gradio caches (uploads, PIL images a handler returns) is named by a link bound to one user (``cached``
links: :mod:`studio.ui.cached_files`), never by its path, and Gradio's own file routes (``/gradio_api/file=``,
``/file/``, ``/proxy=``, media stream files, run-history assets: :func:`gradio_file_target`) answer 404 to
everything but a studio link, so no cached upload or output and no data file can be fetched by its path.
The page needs none of them: its scripts, styles, fonts and favicon come from ``/assets``, ``/static`` and
``/favicon.ico``.
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, unquote, urlsplit

import anyio
import gradio as gr
from gradio import route_utils
from gradio.data_classes import FileData
from gradio_client.utils import is_http_url_like
from starlette.responses import FileResponse, PlainTextResponse

from studio.errors import NotFoundError, StudioError
from studio.services.file_access import FileAccessService
from studio.services.views import Actor

if TYPE_CHECKING:
    from studio.ui.cached_files import CachedFiles

ROUTE = "/studio/files"
API_PREFIX = "/gradio_api"
GRADIO_FILE = f"{API_PREFIX}/file="
#: Gradio's routes that serve a file named in the rest of the path (after ``/gradio_api`` or at the root)
GRADIO_FILE_PREFIXES = ("/file=", "/file/", "/proxy=")
THUMBNAIL = "thumbnail"  # dataset/<dataset>/<image>/thumbnail/<name>: the image's small PNG
Component = TypeVar("Component", gr.Image, gr.File)


# ------------------------------------------------------------------------------------------------ links


def public_root(request: gr.Request | None) -> str:
    """The app's public address (no trailing slash), worked out as Gradio does for its file URLs."""
    raw = getattr(request, "request", None) if request is not None else None
    if raw is None:
        raise gr.Error("Please reload the page.")
    try:
        route = route_utils.get_api_call_path(raw)
    except ValueError:
        route = raw.url.path
    app = raw.scope.get("app")
    return route_utils.get_root_url(request=raw, route_path=route, root_path=getattr(app, "root_path", None))


def file_link(request: gr.Request | None, kind: str, *parts: object) -> str:
    """``<root>/studio/files/<kind>/<part>/…``; the last part is the name a download gets."""
    tail = "/".join(quote(str(part), safe="") for part in parts)
    return f"{public_root(request)}{ROUTE}/{kind}/{tail}"


def image_link(request: gr.Request | None, image_id: int, name: str | None = None) -> str:
    """A generated image (``name``: the download name; default ``image-<id>.png``)."""
    return file_link(request, "image", image_id, name or f"image-{image_id}.png")


def export_link(request: gr.Request | None, path: Path) -> str:
    return file_link(request, "export", path.name)


def template_link(request: gr.Request | None, brand: str, name: str, picture: str = "picture") -> str:
    """A layout template's picture: ``picture`` (its source image, else its control map) or ``control``."""
    return file_link(request, "template", brand, name, picture, f"{name}-{picture}.png")


def dataset_link(request: gr.Request | None, dataset_id: int, image_id: int, name: str) -> str:
    """A dataset's image (``name``: the download name)."""
    return file_link(request, "dataset", dataset_id, image_id, name)


def dataset_thumbnail_link(request: gr.Request | None, dataset_id: int, image_id: int) -> str:
    """A dataset image's thumbnail (a PNG of at most 128 px a side), for the Training tab's grid."""
    return file_link(request, "dataset", dataset_id, image_id, THUMBNAIL, f"thumbnail-{image_id}.png")


def training_link(job_id: int, step: int, image_set: str, index: int, name: str) -> str:
    """A training image, as a path on this site (for HTML; components need :func:`file_link`)."""
    return f"{ROUTE}/training/{job_id}/{step}/{image_set}/{index}/{quote(name, safe='')}"


def shows_links(component: Component) -> Component:
    """``component`` (an Image or a File) that keeps an ``http(s)`` link as it is: their own ``postprocess``
    would fetch it on the server. Set on the instance: a subclass would make Gradio write a ``.pyi`` here."""
    plain = component.postprocess

    def postprocess(value: Any) -> Any:
        if isinstance(value, str) and is_http_url_like(value):
            return FileData(path=value, url=value, orig_name=_name_of(value))
        return plain(value)

    component.postprocess = postprocess  # type: ignore[method-assign]
    return component


def linked_image(**kwargs: Any) -> gr.Image:
    """``gr.Image(**kwargs)`` that shows studio file links."""
    return shows_links(gr.Image(**kwargs))


def linked_file(**kwargs: Any) -> gr.File:
    """``gr.File(**kwargs)`` that offers studio file links."""
    return shows_links(gr.File(**kwargs))


def _name_of(url: str) -> str:
    return unquote(url.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0])


# ------------------------------------------------------------------------------------------------ route


def logged_in_user(scope: dict[str, Any]) -> str | None:
    """The user whose Gradio session cookie comes with this request (None: not logged in)."""
    app = scope.get("app")
    tokens = getattr(app, "tokens", None)
    cookie_id = getattr(app, "cookie_id", None)
    if tokens is None or cookie_id is None:
        return None
    cookies: dict[str, str] = {}
    for key, value in scope.get("headers") or []:
        if key == b"cookie":
            for part in value.decode("latin-1").split(";"):
                name, _, text = part.strip().partition("=")
                cookies.setdefault(name, text)
    token = cookies.get(f"access-token-{cookie_id}") or cookies.get(f"access-token-unsecure-{cookie_id}")
    return tokens.get(token) if token else None


def resolver(
    files: FileAccessService, kind: str, parts: list[str], cached: CachedFiles | None = None
) -> Callable[[Actor], Path] | None:
    """The service call that a link's kind and parts name (None: not a link the studio makes)."""
    if kind == "image" and len(parts) == 2:
        return lambda actor: files.image(actor, parts[0])
    if kind == "training" and len(parts) == 5:
        job, step, image_set, index, _ = parts
        return lambda actor: files.training_image(actor, job, step, image_set, index)
    if kind == "export" and len(parts) == 1:
        return lambda actor: files.export(actor, parts[0])
    if kind == "lora" and len(parts) == 5:  # brand, adapter, version, format, name (issue 17)
        return lambda actor: files.lora(actor, *parts[:4])
    if kind == "template" and len(parts) == 4:  # brand, template, picture, name
        return lambda actor: files.template(actor, *parts[:3])
    if kind == "dataset" and len(parts) == 3:  # dataset, image, name
        return lambda actor: files.dataset_image(actor, parts[0], parts[1])
    if kind == "dataset" and len(parts) == 4 and parts[2] == THUMBNAIL:  # dataset, image, "thumbnail", name
        return lambda actor: files.dataset_thumbnail(actor, parts[0], parts[1])
    if kind == "cached" and len(parts) == 2 and cached is not None:  # token, name
        return lambda actor: _held(cached, parts[0], actor)
    return None


def _held(cached: CachedFiles, token: str, actor: Actor) -> Path:
    found = cached.path_for(token, actor.username)
    if found is None:
        raise NotFoundError("file not found")
    return found


def gradio_file_target(path: str) -> str | None:
    """What a request to one of Gradio's file routes names (a path or a URL), or None when ``path`` is not
    such a route. Gradio serves files at ``/gradio_api/file=…``, ``/gradio_api/file/…`` (old clients),
    ``/gradio_api/proxy=…``, a media stream's ``/gradio_api/stream/…/playlist-file`` and segments, and a run
    history's assets; the same without ``/gradio_api`` and with doubled slashes is checked as well."""
    normal = re.sub("/{2,}", "/", path)
    if normal.startswith(API_PREFIX + "/"):
        normal = normal[len(API_PREFIX) :]
    for prefix in GRADIO_FILE_PREFIXES:
        if normal.startswith(prefix):
            return unquote(normal[len(prefix) :])
    parts = normal.strip("/").split("/")
    if parts[0] == "stream" and len(parts) == 5:  # /stream/<session>/<run>/<component>/<file or segment>
        return normal
    if parts[:2] == ["run-history", "records"] and "assets" in parts:
        return normal
    return None


def link_path(path: str) -> str | None:
    """The ``/studio/files/…`` path a request asks for, or None. ``gradio_client`` fetches every file as
    ``/gradio_api/file=<its path>``, so ``/gradio_api/file=<a studio file link>`` is the same request."""
    if path.startswith(ROUTE + "/"):
        return path
    if path.startswith(GRADIO_FILE):
        named = unquote(path[len(GRADIO_FILE) :])
        if named.startswith(ROUTE + "/"):  # the page shows an upload as /gradio_api/file=<its cached link>
            return named
        if is_http_url_like(named):
            inner = urlsplit(named).path
            return inner if inner.startswith(ROUTE + "/") else None
    return None


class StudioFiles:
    """ASGI middleware: answers ``GET``/``HEAD /studio/files/…`` (see the module docstring) and 404 to any
    other request for one of Gradio's file routes; others pass."""

    def __init__(self, app: Any, files: FileAccessService, cached: CachedFiles | None = None) -> None:
        self.app = app
        self.files = files
        self.cached = cached

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = link_path(scope.get("path", ""))
        if path is None:
            if gradio_file_target(scope.get("path", "")) is not None:  # a file by its path: never
                await PlainTextResponse("Not found", status_code=404)(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        if scope.get("method") not in ("GET", "HEAD"):
            await PlainTextResponse("Method not allowed", status_code=405)(scope, receive, send)
            return
        kind, *parts = [unquote(p) for p in path[len(ROUTE) + 1 :].split("/")]
        find = resolver(self.files, kind, parts, self.cached)
        username = logged_in_user(scope)
        found: Path | None = None
        if find is not None and username:
            try:
                found = await anyio.to_thread.run_sync(find, Actor.user(username))
            except StudioError:
                found = None
        if found is None:
            await PlainTextResponse("Not found", status_code=404)(scope, receive, send)
            return
        media = mimetypes.guess_type(found.name)[0] or "application/octet-stream"
        inline = media.startswith("image/") and media != "image/svg+xml"
        response = FileResponse(
            found,
            media_type=media if inline else "application/octet-stream",
            filename=parts[-1],
            content_disposition_type="inline" if inline else "attachment",
            headers={"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"},
        )
        await response(scope, receive, send)
