"""Request size limit: a body larger than ``Settings.max_request_bytes`` is a 413 before any route runs.

Pure ASGI (as :class:`service.metrics.MetricsMiddleware`): a declared ``Content-Length`` over the limit is
refused without reading the body; a body without one (chunked) is counted as it arrives and refused
as soon as it passes the limit, so a client cannot make the service buffer an unbounded request.
Every route reads its whole body before it answers, so the 413 never follows a response already begun.
"""

from __future__ import annotations

from typing import Any, Callable

from service.errors import PayloadTooLargeError, error_response


class BodySizeLimit:
    def __init__(self, app: Callable, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = int(max_bytes)

    def _refusal(self, size: str) -> Any:
        return error_response(PayloadTooLargeError(
            f"the request body is {size} bytes; at most {self.max_bytes} are accepted (send a large batch of "
            f"measurements in several requests)", field="body"))

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._refusal(length.decode())(scope, receive, send)
            return
        seen = {"bytes": 0, "over": False}

        async def counted_receive():
            if seen["over"]:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen["bytes"] += len(message.get("body", b""))
                if seen["bytes"] > self.max_bytes:
                    # the app sees the client go away (its body parser gives up); the 413 is sent below
                    seen["over"] = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message) -> None:
            if not seen["over"]:  # once over the limit, the app's own answer (a 400, say) is dropped
                await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not seen["over"]:
                raise
        if seen["over"]:
            await self._refusal(f"more than {self.max_bytes}")(scope, receive, send)
