"""The API's documentation pages, `/docs` (Swagger UI) and `/redoc`, with their scripts and styles
served from here: FastAPI's own pages load them from a CDN, and are blank on a machine (a mine
site's, an auditor's laptop) without the internet.

The files come from the `fastapi-offline` package's `static` folder (Swagger UI's and ReDoc's
distributions, with FastAPI's favicon); only those files are served, by name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import fastapi_offline
from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse

from api.errors import NotFound

ASSETS = Path(fastapi_offline.__file__).parent / "static"
ASSET_TYPES = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "redoc.standalone.js": "text/javascript",
    "favicon.png": "image/png",
}
OAUTH2_REDIRECT = "/docs/oauth2-redirect"

router = APIRouter(include_in_schema=False)


def _asset(request: Request, name: str) -> str:
    return request.url_for("api_docs_asset", name=name).path


@router.get("/docs-assets/{name}", name="api_docs_asset")
def api_docs_asset(name: Annotated[str, PathParam(max_length=40)]) -> FileResponse:
    if name not in ASSET_TYPES:
        raise NotFound(f"no documentation asset {name!r}")
    return FileResponse(
        ASSETS / name, media_type=ASSET_TYPES[name], headers={"Cache-Control": "public, max-age=86400"}
    )


@router.get("/docs", name="swagger_ui")
def swagger_ui(request: Request) -> HTMLResponse:
    app = request.app
    return get_swagger_ui_html(
        openapi_url=str(app.openapi_url),
        title=f"{app.title}: API",
        oauth2_redirect_url=OAUTH2_REDIRECT,
        swagger_js_url=_asset(request, "swagger-ui-bundle.js"),
        swagger_css_url=_asset(request, "swagger-ui.css"),
        swagger_favicon_url=_asset(request, "favicon.png"),
    )


@router.get(OAUTH2_REDIRECT)
def swagger_ui_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.get("/redoc", name="redoc")
def redoc(request: Request) -> HTMLResponse:
    app = request.app
    return get_redoc_html(
        openapi_url=str(app.openapi_url),
        title=f"{app.title}: API reference",
        redoc_js_url=_asset(request, "redoc.standalone.js"),
        redoc_favicon_url=_asset(request, "favicon.png"),
        with_google_fonts=False,
    )
