"""Every failure as a JSON body ``{"error": {"type", "message", "field"?}}`` with a 4xx status;
anything unexpected is a 500 with no details (they go to the server's log, never to the client)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from sparsearch import errors

log = logging.getLogger("sparsearch.server")

STATUS: list[tuple[type[Exception], int]] = [
    (errors.UnknownIdError, 404),
    (errors.CollectionNotFoundError, 404),
    (errors.CollectionExistsError, 409),
    (errors.DuplicateIdError, 409),
    (errors.IndexLockedError, 423),
    (errors.ModelLoadError, 422),
    (errors.IndexCorruptError, 500),
    (errors.SparsearchError, 422),
]
"""The status of each named error (the first match wins)."""


class RequestError(Exception):
    """A refused request: its status, a message, and the field at fault."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


def error_body(kind: str, message: str, field: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"type": kind, "message": message}
    if field is not None:
        error["field"] = field
    return {"error": error}


def install(app: FastAPI) -> None:
    """Register the handlers that turn every exception into a JSON error."""

    @app.exception_handler(RequestError)
    async def refused(request: Request, err: RequestError) -> JSONResponse:
        return JSONResponse(error_body("RequestError", err.message, err.field), err.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        first = err.errors()[0] if err.errors() else {"loc": (), "msg": "invalid request"}
        field = ".".join(str(part) for part in first.get("loc", ()))
        message = f"{field}: {first.get('msg', 'invalid')}" if field else str(first.get("msg"))
        ctx = first.get("ctx")
        reason = ctx.get("error") if isinstance(ctx, dict) else None
        if first.get("type") == "json_invalid" and reason:
            message = f"{message}: {reason}"
        others = [  # e.g. a misspelt field: "points" is missing and "point" is unknown
            f"{'.'.join(str(part) for part in e.get('loc', ()))}: {e.get('msg')}"
            for e in err.errors()[1:5]
        ]
        if others:
            message = "; ".join([message, *others])
        return JSONResponse(error_body("ValidationError", message, field or None), 422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, err: HTTPException) -> JSONResponse:
        return JSONResponse(
            error_body("HTTPError", str(err.detail)), err.status_code, headers=err.headers
        )

    @app.exception_handler(errors.SparsearchError)
    async def named(request: Request, err: errors.SparsearchError) -> JSONResponse:
        status = next(code for kind, code in STATUS if isinstance(err, kind))
        if status >= 500:
            log.error("server error on %s: %r", request.url.path, err)
        return JSONResponse(error_body(type(err).__name__, str(err)), status)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, err: Exception) -> JSONResponse:
        log.exception("unexpected error on %s", request.url.path)
        return JSONResponse(error_body("InternalError", "internal server error"), 500)
