"""The `/_sandbox` control API for tests, the demo and benchmarks.

    GET    /_sandbox/records/{division}/{path}             every record the sandbox holds: each stored field of the
                                                           resource and its Timestamp (dates as `/Date(ms)/`)
    POST   /_sandbox/records/{division}/{path}             create one (fires a webhook `Update`); body = fields.
                                                           A document with its lines: the lines nav property in the
                                                           body (`SalesInvoiceLines`, for financialtransaction/
                                                           Transactions `TransactionLines`). A line: POST to the line
                                                           resource naming its document by the header key
                                                           (`{"InvoiceID": …, "Quantity": 2}`); it joins the document
    POST   /_sandbox/records/{division}/{path}/bulk        {"count": N, "fields": {...}}: create N records
    POST   /_sandbox/records/{division}/{path}/bulk-edit   {"changes": [{"id": …, "fields": {...}}, …]}: merge each
                                                           change into its record, one webhook per change (a burst)
    PUT    /_sandbox/records/{division}/{path}/{key}       merge fields into a record (fires `Update`)
    DELETE /_sandbox/records/{division}/{path}/{key}       delete one (fires `Delete`, adds its sync/Deleted rows)
`{path}` is any resource the sandbox keeps (`entities.ENTITIES`, line resources included); `{key}` its key field
(a GUID; a Code for general/Currencies). A change to a line (add, merge, delete) changes its document: the header's
Modified and every row's Timestamp move (see `documents`) and ONE webhook `Update` fires for the document's topic
with Key = the header key. Resources without a webhook topic (GLAccounts, VATCodes, Currencies) fire none.
    GET    /_sandbox/records/{division}/{path}/{key}       one record
    GET    /_sandbox/calls?endpoint=&division=&status=&method=&class=   API call counts, by endpoint, division, status
                                                           and method (GET, POST, PUT, DELETE, or `write` for the
                                                           three) and budget class (the X-Exact-Pipeline-Class header,
                                                           "" for none); each entry's `methods` splits its count by
                                                           method, its `classes` by class, and `classes` counts every
                                                           call by class (&log=1 adds each call's time, endpoint,
                                                           division, status, method, class)
    POST   /_sandbox/calls/reset                           zero the counts
    POST   /_sandbox/divisions                             {"code": 404, "granted_to": "<UserID>"|null, "Description":
                                                           …?, "Country": …?, "Currency": …?}: a new active division
                                                           seeded as 101 and 202 are (every topic, the ledger and
                                                           postings; the same in every sandbox), granted to that user
                                                           (default: the sandbox's one user; null: no one). 201 with
                                                           the division; 409 if it exists, 400 for an unknown user
    POST   /_sandbox/divisions/{code}                      {"Status": 0|1|2, "granted": bool, "move": true}
    POST   /_sandbox/clock/advance                         {"seconds": S}: move the sandbox clock forward
    GET    /_sandbox/config, POST /_sandbox/config         read or change limits ({"minute_limit": 5, ...})
    POST   /_sandbox/limits/reset                          forget rate windows, error counts and blocks
    GET    /_sandbox/limits                                rate windows, error budgets and blocks
Faults (`/_sandbox/faults`), OAuth (`/_sandbox/oauth`) and webhooks (`/_sandbox/webhooks`) have their own modules.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sandbox import odata
from sandbox.entities import Entity, by_path, header_of
from sandbox.quirks import READ_ONLY
from sandbox.records import NotFoundError, WriteError

if TYPE_CHECKING:
    from sandbox.state import SandboxState

__all__ = ["routes"]

_METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "WRITE"})


def _split(path: str) -> tuple[Entity | None, str | None]:
    """`crm/Accounts`, `crm/Accounts/bulk`, `…/bulk-edit`, `crm/Accounts/<guid>`, `general/Currencies/EUR`."""
    if (entity := by_path(path)) is not None:
        return entity, None
    head, _, last = path.rpartition("/")
    return by_path(head), last


def _plain(entity: Entity | None, row: dict[str, Any]) -> dict[str, Any]:
    """A row with `/Date(ms)/` dates: an entity's stored fields and Timestamp, or every key (a division)."""
    fields = (*entity.data_fields, "Timestamp") if entity is not None else None
    return {k: v for k, v in odata.serialize(row, select=fields, uri="", type_name="").items() if k != "__metadata"}


def routes(state: SandboxState) -> list[BaseRoute]:
    control = _Control(state)
    return [
        Route(
            "/_sandbox/records/{division:int}/{path:path}", control.records, methods=["GET", "POST", "PUT", "DELETE"]
        ),
        Route("/_sandbox/calls", control.calls, methods=["GET"]),
        Route("/_sandbox/calls/reset", control.reset_calls, methods=["POST"]),
        Route("/_sandbox/divisions", control.add_division, methods=["POST"]),
        Route("/_sandbox/divisions/{code:int}", control.division, methods=["POST"]),
        Route("/_sandbox/clock/advance", control.advance, methods=["POST"]),
        Route("/_sandbox/config", control.config, methods=["GET", "POST"]),
        Route("/_sandbox/limits", control.limits, methods=["GET"]),
        Route("/_sandbox/limits/reset", control.reset_limits, methods=["POST"]),
    ]


class _Control:
    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.store = state.store

    async def records(self, request: Request) -> Response:
        division = request.path_params["division"]
        entity, key = _split(request.path_params["path"])
        if entity is None or self.store.division(division) is None:
            return JSONResponse({"error": "unknown entity or division"}, status_code=404)
        try:
            return await self._records(request, division, entity, key)
        except NotFoundError:
            return JSONResponse({"error": "no such record"}, status_code=404)
        except WriteError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)

    async def _records(self, request: Request, division: int, entity: Entity, key: str | None) -> Response:
        store = self.store
        if request.method == "GET" and key is None:
            return JSONResponse({"records": [_plain(entity, r) for r in store.rows(division, entity)]})
        if request.method == "POST" and key == "bulk":
            body = await request.json()
            fields = body.get("fields", {})
            rows = [store.create(division, entity, dict(fields)) for _ in range(int(body.get("count", 1)))]
            return JSONResponse({"ids": [r[entity.key] for r in rows]}, status_code=201)
        if request.method == "POST" and key == "bulk-edit":
            changes = (await request.json()).get("changes", [])
            rows = [self._merge(division, entity, str(c["id"]), dict(c.get("fields", {}))) for c in changes]
            return JSONResponse({"ids": [r[entity.key] for r in rows]})
        if request.method == "POST":
            return JSONResponse({"record": _plain(entity, store.create(division, entity, await request.json()))}, 201)
        if key is None:
            return JSONResponse({"error": "a record key is required"}, status_code=400)
        if request.method == "GET":
            return JSONResponse({"record": _plain(entity, store.get(division, entity, key))})
        if request.method == "PUT":
            return JSONResponse({"record": _plain(entity, self._merge(division, entity, key, await request.json()))})
        store.delete(division, entity, key)
        return Response(status_code=204)

    def _merge(self, division: int, entity: Entity, key: str, fields: dict[str, Any]) -> dict[str, Any]:
        """PUT with the record's current fields under the new ones: only the named fields change."""
        with self.store.lock:
            current = self.store.get(division, entity, key)
            kept = {k: v for k, v in current.items() if k not in READ_ONLY and k in entity.data_fields}
            if entity.header_path is not None:
                kept[header_of(entity).line_link] = current[header_of(entity).line_link]
            return self.store.replace(division, entity, key, {**kept, **fields})

    async def calls(self, request: Request) -> Response:
        counters, params = self.state.counters, request.query_params
        division = int(params["division"]) if "division" in params else None
        status = int(params["status"]) if "status" in params else None
        method = params.get("method")
        if method is not None and method.upper() not in _METHODS:
            return JSONResponse({"error": f"method: one of {', '.join(sorted(_METHODS))}"}, status_code=400)
        total = counters.total(
            endpoint=params.get("endpoint"),
            division=division,
            status=status,
            method=method,
            budget_class=params.get("class"),
        )
        body: dict[str, Any] = {"total": total, "calls": counters.snapshot(), "classes": counters.by_class()}
        if params.get("log"):
            log = counters.log
            body["log"] = [
                {"at": t, "endpoint": e, "division": d, "status": s, "method": m, "class": c}
                for t, e, d, s, m, c in log
            ]
        return JSONResponse(body)

    async def reset_calls(self, request: Request) -> Response:
        self.state.counters.reset()
        return JSONResponse({"total": 0})

    async def add_division(self, request: Request) -> Response:
        store, body = self.store, await request.json()
        code, user = body.get("code"), body.get("granted_to", self.store.default_user_id)
        if not isinstance(code, int) or isinstance(code, bool) or code <= 0:
            return JSONResponse({"error": "code: a positive division code"}, status_code=400)
        if store.division(code) is not None:
            return JSONResponse({"error": f"division {code} exists"}, status_code=409)
        if user is not None and user not in store.user_ids():
            return JSONResponse({"error": f"granted_to: no user {user}"}, status_code=400)
        fields = {k: body[k] for k in ("Description", "Country", "Currency") if k in body}
        return JSONResponse(_plain(None, store.add_granted_division(code, user, **fields)), status_code=201)

    async def division(self, request: Request) -> Response:
        store, code = self.store, request.path_params["code"]
        if store.division(code) is None:
            return JSONResponse({"error": "unknown division"}, status_code=404)
        body = await request.json()
        if "Status" in body:
            store.set_division_status(code, int(body["Status"]))
        if "granted" in body:
            store.set_grant(store.default_user_id, code, bool(body["granted"]))
        if body.get("move"):
            store.move_division(code)
        return JSONResponse(_plain(None, store.division(code) or {}))

    async def advance(self, request: Request) -> Response:
        self.state.clock.advance(float((await request.json())["seconds"]))
        return JSONResponse({"now": self.state.clock.now()})

    async def config(self, request: Request) -> Response:
        config = self.state.config
        if request.method == "POST":
            for name, value in (await request.json()).items():
                if name not in {f.name for f in dataclasses.fields(config)}:
                    return JSONResponse({"error": f"unknown setting {name}"}, status_code=400)
                setattr(config, name, value)
        # `apps` holds more apps' secrets.
        return JSONResponse({k: v for k, v in dataclasses.asdict(config).items() if "secret" not in k and k != "apps"})

    async def limits(self, request: Request) -> Response:
        return JSONResponse(self.state.limiter.snapshot())

    async def reset_limits(self, request: Request) -> Response:
        self.state.limiter.reset()
        return JSONResponse(self.state.limiter.snapshot())
