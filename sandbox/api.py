"""The `/api/v1` data plane: `current/Me`, `system/Divisions`, entities by collection and key, and `sync/…`."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sandbox import odata
from sandbox.entities import Entity, by_path, by_sync_path
from sandbox.errors import error_response
from sandbox.guard import CallContext, guarded
from sandbox.records import NotFoundError, WriteError

if TYPE_CHECKING:
    from sandbox.state import SandboxState

__all__ = ["routes"]

_KEYED = re.compile(r"^(?P<path>[A-Za-z]+/[A-Za-z]+)\(guid'(?P<key>[^']*)'\)$")
_MANDATORY = (
    "This endpoint has mandatory filtering applied. A GET request for this endpoint must have a $filter parameter "
    "with one of the following fields in the url:ID,Code,Modified"
)
_SYNC_FIELDS_DELETED = ("ID", "Timestamp", "EntityKey", "EntityType", "Division", "DeletedDate", "DeletedBy")


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
        return sync_entity.sync_path or path, lambda r, ctx: _sync(state, sync_entity, r, ctx)
    key: str | None = None
    if m := _KEYED.match(path):
        path, key = m.group("path"), m.group("key")
    entity = by_path(path)
    if entity is None:
        return path, _not_found
    handler: Any
    if key is None:
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
    return _collection(state, request, rows, fields, "system/Divisions", "Exact.Web.Api.Models.SystemDivision", "Code")


def _collection(
    state: SandboxState,
    request: Request,
    rows: list[dict[str, Any]],
    fields: tuple[str, ...],
    path: str,
    type_name: str,
    key_field: str,
    *,
    size: int | None = None,
    entity: Entity | None = None,
    division: int | None = None,
) -> Response:
    params = dict(request.query_params)
    try:
        options = odata.parse_options(params, fields)
        chunk, token = odata.page(rows, options, key_field=key_field, size=size or state.config.page_size)
    except odata.FilterError as exc:
        return error_response(400, str(exc))
    base = _base(request)
    records = []
    for row in chunk:
        uri = f"{base}/api/v1/{row.get('Division', division)}/{path}(guid'{row.get(key_field)}')"
        record = odata.serialize(row, select=options.select, uri=uri, type_name=type_name)
        if entity is not None and division is not None:
            _attach_lines(state, entity, division, row, record, options, base)
        records.append(record)
    if options.top is not None:
        return JSONResponse({"d": records})
    body: dict[str, Any] = {"results": records}
    if options.inlinecount:
        body["__count"] = len(rows)
    if token is not None:
        body["__next"] = odata.next_url(f"{base}{request.url.path}", params, token)
    return JSONResponse({"d": body})


def _attach_lines(
    state: SandboxState,
    entity: Entity,
    division: int,
    row: dict[str, Any],
    record: dict[str, Any],
    options: odata.QueryOptions,
    base: str,
) -> None:
    if not entity.lines or (options.select is not None and entity.lines not in options.select):
        return
    uri = f"{base}/api/v1/{division}/{entity.path}(guid'{row['ID']}')/{entity.lines}"
    if entity.lines in options.expand:
        line_entity = by_path(entity.line_path or "")
        assert line_entity is not None
        lines = [
            odata.serialize(
                line,
                select=None,
                uri=f"{base}/api/v1/{division}/{line_entity.path}(guid'{line['ID']}')",
                type_name=line_entity.type_name,
            )
            for line in state.store.lines_of(division, entity, row["ID"])
        ]
        record[entity.lines] = {"results": lines}
    else:
        record[entity.lines] = {"__deferred": {"uri": uri}}


async def _list(state: SandboxState, entity: Entity, request: Request, ctx: CallContext, _key: None) -> Response:
    if (denied := _forbidden(state, ctx)) is not None:
        return denied
    if entity.mandatory_filter and "$filter" not in request.query_params:
        return error_response(400, _MANDATORY)
    division = ctx.division
    assert division is not None
    rows = state.store.rows(division, entity)
    return _collection(
        state, request, rows, entity.fields, entity.path, entity.type_name, "ID", entity=entity, division=division
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
    try:
        row = state.store.create(ctx.division, entity, body)
    except WriteError as exc:
        return error_response(400, str(exc))
    return JSONResponse({"d": _record(state, entity, ctx.division, row, request, expand=True)}, status_code=201)


def _record(
    state: SandboxState, entity: Entity, division: int, row: dict[str, Any], request: Request, *, expand: bool
) -> dict[str, Any]:
    base = _base(request)
    uri = f"{base}/api/v1/{division}/{entity.path}(guid'{row['ID']}')"
    record = odata.serialize(row, select=None, uri=uri, type_name=entity.type_name)
    options = odata.parse_options({"$expand": entity.lines} if expand and entity.lines else {}, entity.fields)
    _attach_lines(state, entity, division, row, record, options, base)
    return record


async def _get(state: SandboxState, entity: Entity, request: Request, ctx: CallContext, key: str) -> Response:
    if (denied := _forbidden(state, ctx)) is not None:
        return denied
    assert ctx.division is not None
    try:
        row = state.store.get(ctx.division, entity, key)
    except (NotFoundError, WriteError):
        return error_response(404, "Not found")
    expand = entity.lines is not None and entity.lines in request.query_params.get("$expand", "")
    record = _record(state, entity, ctx.division, row, request, expand=expand)
    if select := request.query_params.get("$select"):
        wanted = {s.strip() for s in select.split(",")}
        record = {k: v for k, v in record.items() if k in wanted or k == "__metadata"}
    return JSONResponse({"d": record})


async def _replace(state: SandboxState, entity: Entity, request: Request, ctx: CallContext, key: str) -> Response:
    if (denied := _forbidden(state, ctx)) is not None:
        return denied
    body = await _read_body(request)
    if isinstance(body, Response):
        return body
    assert ctx.division is not None
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
    assert entity.sync_path is not None
    rows = state.store.rows(ctx.division, entity)
    return _collection(
        state,
        request,
        rows,
        entity.fields,
        entity.sync_path,
        entity.type_name,
        "Timestamp",
        size=state.config.sync_page_size,
    )


async def _sync_deleted(state: SandboxState, request: Request, ctx: CallContext) -> Response:
    if (denied := _forbidden(state, ctx) or _sync_guard(request)) is not None:
        return denied
    assert ctx.division is not None
    rows = state.store.deleted(ctx.division)
    return _collection(
        state,
        request,
        rows,
        _SYNC_FIELDS_DELETED,
        "sync/Deleted",
        "Exact.Web.Api.Models.Sync.Deleted",
        "Timestamp",
        size=state.config.sync_page_size,
    )
