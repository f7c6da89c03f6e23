# SPDX-License-Identifier: MIT
"""The server's floor (issue 17): a bare ASGI app answering every request with the bytes of one
/b/home response made at import (status, headers and body of home_body()), with no framework: what
uvicorn itself costs per request. HTTPCache.attach's early hits are held to a share of it."""

from ._common import gc_freeze_if_asked, home_body

_RESPONSE = home_body()  # one response, made once: its headers and body are sent as they are
_START = {"type": "http.response.start", "status": _RESPONSE.status_code, "headers": _RESPONSE.raw_headers}
_BODY = {"type": "http.response.body", "body": _RESPONSE.body}


async def app(scope, receive, send):  # noqa: ANN001, ANN201 - the ASGI signature
    if scope["type"] == "http":
        await send(_START)
        await send(_BODY)
    elif scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


gc_freeze_if_asked()
