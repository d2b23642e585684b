"""The `/api/v1` data plane: `current/Me`, `system/Divisions`, entities by collection and key, and `sync/…`.

    GET    /api/v1/{division}/{service}/{Entity}[?$filter,$select,$expand,$orderby,$top,$skiptoken,$inlinecount]
    GET    /api/v1/{division}/{service}/{Entity}(guid'{key}')      or ('{code}') for Currencies
    POST   /api/v1/{division}/{service}/{Entity}                   create (a document with its lines nav property;
                                                                   a line naming its document by the header key)
    PUT    /api/v1/{division}/{service}/{Entity}(guid'{key}')      full replace (204)
    DELETE /api/v1/{division}/{service}/{Entity}(guid'{key}')      (204)
    GET    /api/v1/{division}/sync/{Service}/{Entity}?$filter=Timestamp gt NL     1,000 a page; line-row resources
                                                                   return one row per line (see `documents`)
    GET    /api/v1/{division}/sync/Deleted?$filter=Timestamp gt NL
A method the resource does not have (the reference's `methods`) is a 405. A posting Exact refuses (`postings`: a
closed period, an unbalanced entry, ...) is a 400 with Exact's text, and nothing is written.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sandbox import documents, odata, postings
from sandbox.entities import Entity, by_path, by_sync_path
from sandbox.errors import error_response
from sandbox.guard import CallContext, guarded
from sandbox.records import NotFoundError, WriteError
from sandbox.schema_faults import NO_FAULTS, SchemaView
from sandbox.shapes import Shaper, header_row_fields, line_row_fields

if TYPE_CHECKING:
    from sandbox.state import SandboxState

__all__ = ["routes"]

_KEYED = re.compile(r"^(?P<path>[A-Za-z]+/[A-Za-z]+)\((?:guid)?'(?P<key>[^']*)'\)$")
_MANDATORY = (
    "This endpoint has mandatory filtering applied. A GET request for this endpoint must have a $filter parameter "
    "with one of the following fields in the url:ID,Code,Modified"
)
_SYNC_FIELDS_DELETED = ("Timestamp", "DeletedBy", "DeletedDate", "Division", "EntityKey", "EntityType", "ID")
_DELETED_TYPE = "Exact.Web.Api.Models.SyncDeleted"


def routes(state: SandboxState) -> list[BaseRoute]:
    async def me(request: Request) -> Response:
        return await guarded(state, "current/Me", lambda r, ctx: _me(state, r, ctx))(request)

    async def dispatch(request: Request) -> Response:
        path = request.path_params["path"]
        endpoint, handler = _resolve(state, path, request.method)
        return await guarded(state, endpoint, handler)(request)

    return [
        Route("/api/v1/current/Me", me, methods=["GET"]),
        Route("/api/v1/{division:int}/{path:path}", dispatch, methods=["GET", "POST", "PUT", "DELETE"]),
    ]


def _resolve(state: SandboxState, path: str, method: str) -> tuple[str, Any]:
    if path.lower() == "system/divisions":
        return "system/Divisions", lambda r, ctx: _divisions(state, r, ctx)
    if path.lower() == "sync/deleted":
        return "sync/Deleted", lambda r, ctx: _sync_deleted(state, r, ctx)
    if (sync_entity := by_sync_path(path)) is not None:
        if method != "GET":
            return sync_entity.sync_path or path, _method_not_allowed
        return sync_entity.sync_path or path, lambda r, ctx: _sync(state, sync_entity, r, ctx)
    key: str | None = None
    if m := _KEYED.match(path):
        path, key = m.group("path"), m.group("key")
    entity = by_path(path)
    if entity is None or not entity.service:
        return path, _not_found
    handler: Any
    if method not in entity.methods:
        handler = _method_not_allowed
    elif key is None:
        handler = _list if method == "GET" else _create if method == "POST" else _method_not_allowed
    else:
        handler = {"GET": _get, "PUT": _replace, "DELETE": _delete}.get(method, _method_not_allowed)
    return entity.path, lambda r, ctx: handler(state, entity, r, ctx, key)


async def _not_found(_request: Request, _ctx: CallContext) -> Response:
    return error_response(404, "Not found: unknown resource")


async def _method_not_allowed(*_args: Any) -> Response:
    return error_response(405, "The requested method is not allowed for this resource")


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _forbidden(state: SandboxState, ctx: CallContext) -> Response | None:
    if ctx.division is None or not state.store.can_access(ctx.user_id, ctx.division):
        return error_response(403, "Forbidden - User division is not accessible")
    return None


async def _me(state: SandboxState, request: Request, ctx: CallContext) -> Response:
    user = state.store.user(ctx.user_id)
    record = odata.serialize(
        user, select=None, uri=f"{_base(request)}/api/v1/current/Me", type_name="Exact.Web.Api.System.Me"
    )
    return JSONResponse({"d": {"results": [record]}})


async def _divisions(state: SandboxState, request: Request, ctx: CallContext) -> Response:
    if (denied := _forbidden(state, ctx)) is not None:
        return denied
    rows = [state.store.division(code) or {} for code in state.store.user_divisions(ctx.user_id)]
    fields = tuple(rows[0].keys()) if rows else ("Code",)
    uri = f"{_base(request)}/api/v1/{ctx.division}/system/Divisions"

    def shape(row: dict[str, Any], select: tuple[str, ...] | None) -> dict[str, Any]:
        record_uri = f"{uri}({row['Code']})"
        return odata.serialize(row, select=select, uri=record_uri, type_name="Exact.Web.Api.Models.SystemDivision")

    return _collection(state, request, rows, fields, "Code", shape)


Shape = Callable[[dict[str, Any], "tuple[str, ...] | None"], dict[str, Any]]


def _collection(
    state: SandboxState,
    request: Request,
    rows: list[dict[str, Any]],
    fields: tuple[str, ...],
    key_field: str,
    shape: Shape,
    *,
    size: int | None = None,
    view: SchemaView = NO_FAULTS,
) -> Response:
    params = dict(request.query_params)
    try:
        # Options name the fields as served: a schema fault's dropped or old name is an unknown field.
        options = view.options(odata.parse_options(params, view.served(fields)))
        chunk, token = odata.page(rows, options, key_field=key_field, size=size or state.config.page_size)
    except odata.FilterError as exc:
        return error_response(400, str(exc))
    records = [shape(row, options.select) for row in chunk]
    if options.top is not None:
        return JSONResponse({"d": records})
    body: dict[str, Any] = {"results": records}
    if options.inlinecount:
        body["__count"] = len(rows)
    if token is not None:
        body["__next"] = odata.next_url(f"{_base(request)}{request.url.path}", params, token)
    return JSONResponse({"d": body})


def _expand(request: Request) -> tuple[str, ...]:
    return tuple(s.strip() for s in request.query_params.get("$expand", "").split(",") if s.strip())


async def _list(state: SandboxState, entity: Entity, request: Request, ctx: CallContext, _key: None) -> Response:
    if (denied := _forbidden(state, ctx)) is not None:
        return denied
    if entity.mandatory_filter and "$filter" not in request.query_params:
        return error_response(400, _MANDATORY)
    assert ctx.division is not None
    shaper, expand = Shaper(state.store, ctx.division, _base(request), state.faults.schema), _expand(request)
    view = state.faults.schema.view(entity.path, ctx.division)
    if view.rows == "lines":
        with state.store.lock:
            lines = documents.sync_rows(state.store, ctx.division, entity)
        fields = line_row_fields(entity)
        return _collection(
            state, request, lines, fields, "ID", lambda r, sel: shaper.line_row(entity, r, sel), view=view
        )
    rows = state.store.rows(ctx.division, entity)
    return _collection(
        state,
        request,
        rows,
        entity.fields,
        entity.key,
        lambda row, sel: shaper.record(entity, row, sel, expand),
        view=view,
    )


async def _read_body(request: Request) -> dict[str, Any] | Response:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        return error_response(400, "Error reading JSON: the request body is not valid JSON")
    if not isinstance(body, dict):
        return error_response(400, "Error reading JSON: expected an object")
    return body


async def _create(state: SandboxState, entity: Entity, request: Request, ctx: CallContext, _key: None) -> Response:
    if (denied := _forbidden(state, ctx)) is not None:
        return denied
    body = await _read_body(request)
    if isinstance(body, Response):
        return body
    assert ctx.division is not None
    if (refused := postings.refusal(state.store, ctx.division, entity, body)) is not None:
        return error_response(400, refused)
    try:
        row = state.store.create(ctx.division, entity, body)
    except WriteError as exc:
        return error_response(400, str(exc))
    shaper = Shaper(state.store, ctx.division, _base(request), state.faults.schema)
    expand = (entity.lines,) if entity.lines else ()
    return JSONResponse({"d": shaper.record(entity, row, None, expand)}, status_code=201)


async def _get(state: SandboxState, entity: Entity, request: Request, ctx: CallContext, key: str) -> Response:
    if (denied := _forbidden(state, ctx)) is not None:
        return denied
    assert ctx.division is not None
    view = state.faults.schema.view(entity.path, ctx.division)
    try:
        row = state.store.get(ctx.division, entity, key)
        selected = {"$select": request.query_params.get("$select", "")}
        select = view.options(odata.parse_options(selected, view.served(entity.fields))).select
    except (NotFoundError, WriteError):
        return error_response(404, "Not found")
    except odata.FilterError as exc:
        return error_response(400, str(exc))
    shaper = Shaper(state.store, ctx.division, _base(request), state.faults.schema)
    return JSONResponse({"d": shaper.record(entity, row, select, _expand(request))})


async def _replace(state: SandboxState, entity: Entity, request: Request, ctx: CallContext, key: str) -> Response:
    if (denied := _forbidden(state, ctx)) is not None:
        return denied
    body = await _read_body(request)
    if isinstance(body, Response):
        return body
    assert ctx.division is not None
    if (refused := postings.refusal(state.store, ctx.division, entity, body, key=key)) is not None:
        return error_response(400, refused)
    try:
        state.store.replace(ctx.division, entity, key, body)
    except NotFoundError:
        return error_response(404, "Not found")
    except WriteError as exc:
        return error_response(400, str(exc))
    return Response(status_code=204)


async def _delete(state: SandboxState, entity: Entity, request: Request, ctx: CallContext, key: str) -> Response:
    if (denied := _forbidden(state, ctx)) is not None:
        return denied
    assert ctx.division is not None
    try:
        state.store.delete(ctx.division, entity, key)
    except (NotFoundError, WriteError):
        return error_response(404, "Not found")
    return Response(status_code=204)


def _sync_guard(request: Request) -> Response | None:
    if "timestamp" not in request.query_params.get("$filter", "").lower():
        return error_response(400, "A $filter on Timestamp is required for this endpoint: $filter=Timestamp gt 1L")
    if request.query_params.get("$select", "").strip() == "*":
        return error_response(400, "$select=* is not supported for this endpoint")
    return None


async def _sync(state: SandboxState, entity: Entity, request: Request, ctx: CallContext) -> Response:
    if (denied := _forbidden(state, ctx) or _sync_guard(request)) is not None:
        return denied
    assert ctx.division is not None
    store, division = state.store, ctx.division
    view = state.faults.schema.view(entity.sync_path or entity.path, division)
    # A `rows: headers` schema fault: the line-row resource answers its documents' rows instead.
    line_rows = entity.line_rows and view.rows != "headers"
    with store.lock:
        rows = documents.sync_rows(store, division, entity) if line_rows else store.rows(division, entity)
    fields = entity.sync_fields if line_rows or not entity.line_rows else header_row_fields(entity)
    shaper = Shaper(store, division, _base(request), state.faults.schema)
    return _collection(
        state,
        request,
        rows,
        fields,
        "Timestamp",
        lambda row, sel: shaper.sync_record(entity, row, fields if sel is None else sel),
        size=state.config.sync_page_size,
        view=view,
    )


async def _sync_deleted(state: SandboxState, request: Request, ctx: CallContext) -> Response:
    if (denied := _forbidden(state, ctx) or _sync_guard(request)) is not None:
        return denied
    assert ctx.division is not None
    rows = state.store.deleted(ctx.division)
    uri = f"{_base(request)}/api/v1/{ctx.division}/sync/Deleted"

    def shape(row: dict[str, Any], select: tuple[str, ...] | None) -> dict[str, Any]:
        fields = select if select is not None else _SYNC_FIELDS_DELETED
        return odata.serialize(row, select=fields, uri=f"{uri}({row['Timestamp']}L)", type_name=_DELETED_TYPE)

    return _collection(state, request, rows, _SYNC_FIELDS_DELETED, "Timestamp", shape, size=state.config.sync_page_size)
