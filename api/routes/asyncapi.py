"""The AsyncAPI document of the Kafka topics (consumers/asyncapi.py), as JSON and as a rendered page."""

from __future__ import annotations

import base64
import hashlib
import re
from functools import cache
from typing import Final

from fastapi import APIRouter, Response
from faststream.specification import get_asyncapi_html

router = APIRouter(tags=["asyncapi"])

# The page loads FastStream's AsyncAPI viewer from this CDN (the version FastStream pins) and renders
# the document with one inline script; the CSP allows exactly that script, by its hash.
VIEWER_ORIGIN: Final = "https://unpkg.com"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


@cache
def _document() -> bytes:
    # Imported here: FastStream and the registry are needed by these two routes only.
    from consumers.asyncapi import specification

    return specification().to_json().encode()


@cache
def _page() -> tuple[str, str]:
    from consumers.asyncapi import specification

    html = get_asyncapi_html(specification(), try_it_out_path=None)
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(html)
    )
    csp = (
        f"default-src 'none'; script-src {VIEWER_ORIGIN} {hashes}; "
        f"style-src {VIEWER_ORIGIN} 'unsafe-inline'; img-src https: data:; font-src https: data:; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
    return html, csp


@router.get("/v1/asyncapi.json")
async def asyncapi_json() -> Response:
    """The AsyncAPI 3.0 document: every topic, with a schema for every message."""
    return Response(_document(), media_type="application/json")


@router.get("/v1/asyncapi", include_in_schema=False)
async def asyncapi_page() -> Response:
    """The AsyncAPI document, rendered."""
    html, csp = _page()
    return Response(html, media_type="text/html", headers={"content-security-policy": csp})
