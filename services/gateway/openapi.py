"""The OpenAPI 3.1 document, generated from the routes themselves: each
``@route`` says its path, methods, caller and documentation (routing.Doc),
and its answers are the models its handler builds them through, so the
document cannot drift from the code."""
from __future__ import annotations

import inspect
import re
from functools import cache
from http import HTTPStatus

from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR
from pydantic import BaseModel, TypeAdapter

from .models import ProblemDocument
from .params import TOKEN, TOKEN_OR_KEY
from .routing import (
    ATTENDEE,
    ATTENDEE_OR_ORGANISER,
    CONVERTERS,
    ORGANISER,
    UNSUBSCRIBER,
    HttpRoute,
)

REF = "#/components/schemas/{model}"
ERRORS = {
    400: "Malformed JSON, a body that is not an object, or a bad query parameter or header",
    401: "An organiser call without a valid API key (unknown, malformed or revoked)",
    403: "The key lacks the scope this call needs",
    404: "Unknown event (or another organisation's), or unknown registration or wrong token",
    409: "Conflicts with the current state",
    413: "The body is larger than 64 KiB",
    415: "The body is not of a media type the route takes",
    422: "A field is not valid; `errors` names each one",
    429: "Too many public requests from this address; see Retry-After",
    503: "The broker or a service does not answer; see Retry-After",
}
PATH_PARAM = re.compile(r"<(?:(\w+):)?(\w+)>")


def routes(service_cls) -> list[HttpRoute]:
    """The service's routes, as its methods declare them."""
    return [entrypoint for _, method in inspect.getmembers(service_cls, inspect.isfunction)
            for entrypoint in getattr(method, ENTRYPOINT_EXTENSIONS_ATTR, ())
            if isinstance(entrypoint, HttpRoute)]


def openapi_path(url: str) -> tuple[str, list[dict]]:
    """``/events/<slug:slug>`` -> ``/events/{slug}`` and its parameters."""
    parameters = [{"name": name, "in": "path", "required": True,
                   "description": f"the {name.replace('_', ' ')}",
                   "schema": {"type": "string", "pattern": f"^{CONVERTERS[converter].regex}$"}
                   if converter in CONVERTERS else {"type": "string"}}
                  for converter, name in PATH_PARAM.findall(url)]
    return PATH_PARAM.sub(r"{\2}", url), parameters


class Document:
    """The document's parts as they are built; models land in ``schemas``."""

    def __init__(self) -> None:
        self.schemas: dict = {}

    def schema(self, shape) -> dict:
        """A $ref for a model (added to the components), else the schema inline."""
        if isinstance(shape, type) and issubclass(shape, BaseModel):
            schema = shape.model_json_schema(ref_template=REF)
            self.schemas.update(schema.pop("$defs", {}))
            self.schemas[shape.__name__] = schema
            return {"$ref": REF.format(model=shape.__name__)}
        schema = TypeAdapter(shape).json_schema(ref_template=REF)
        self.schemas.update(schema.pop("$defs", {}))
        return schema

    def content(self, shapes) -> dict:
        content = {}
        for shape in shapes if isinstance(shapes, tuple) else (shapes,):
            if isinstance(shape, str):
                content[shape] = {"schema": {"type": "string"}}
            elif shape is not None:
                content["application/json"] = {"schema": self.schema(shape)}
        return content

    def response(self, status: int, shapes, description: str = "") -> dict:
        response: dict = {"description": description or HTTPStatus(status).phrase}
        if content := self.content(shapes):
            response["content"] = content
        return response

    def operation(self, route: HttpRoute, has_path_ids: bool) -> dict:
        doc = route.doc
        responses = {str(status): self.response(status, shapes)
                     for status, shapes in sorted(doc.answers.items())}
        for code in sorted(error_codes(route, has_path_ids) - set(doc.answers)):
            if route.page and code == 404:
                responses[str(code)] = self.response(code, "text/html", ERRORS[code])
            else:
                responses[str(code)] = {"description": ERRORS[code], "content": {
                    "application/problem+json": {"schema": self.schema(ProblemDocument)}}}
        token = {ATTENDEE: (TOKEN,), UNSUBSCRIBER: (TOKEN,),
                 ATTENDEE_OR_ORGANISER: (TOKEN_OR_KEY,)}.get(route.caller, ())
        params = token + tuple(doc.params)
        operation = {
            "summary": doc.summary, "tags": [doc.tag or tag_of(route)],
            "parameters": [{"name": p.name, "in": p.where, "required": p.required,
                            "description": p.description, "schema": p.schema()} for p in params],
            "responses": responses,
            "security": {ORGANISER: [{"organiserKey": []}],
                         ATTENDEE_OR_ORGANISER: [{}, {"organiserKey": []}]}.get(route.caller, []),
        }
        if doc.body is not None:
            operation["requestBody"] = {"required": True, "content": {
                media: {"schema": self.schema(doc.body)} for media in doc.media}}
        return operation


def tag_of(route: HttpRoute) -> str:
    if route.page:
        return "pages"
    return "organisers" if route.caller == ORGANISER else "attendees"


def error_codes(route: HttpRoute, has_path_ids: bool) -> set[int]:
    """The errors a route can answer with, from what it is."""
    codes = {503, *route.doc.errors}
    if has_path_ids or route.caller in (ATTENDEE, UNSUBSCRIBER, ATTENDEE_OR_ORGANISER):
        codes.add(404)
    if route.caller in (ORGANISER, ATTENDEE_OR_ORGANISER):
        codes.add(401)
    if route.scopes:
        codes.add(403)
    if route.doc.body is not None:
        codes |= {400, 413, 415, 422}
    if route.doc.params:
        codes.add(400)
    if route.rate_limited:
        codes.add(429)
    return codes


@cache
def document(service_cls) -> dict:
    built, paths = Document(), dict[str, dict]()
    for route in sorted(routes(service_cls), key=lambda r: r.url):
        if not route.doc.documented:
            continue
        path, parameters = openapi_path(route.url)
        item = paths.setdefault(path, {"parameters": parameters} if parameters else {})
        for method in route.method.split(","):
            item[method.lower()] = built.operation(route, bool(parameters))
    return {
        "openapi": "3.1.0",
        "info": {"title": "Event registration", "version": "1",
                 "description": "Registrations, seats, waiting lists and notifications. Errors "
                                "are RFC 9457 problem documents."},
        "paths": paths,
        "components": {"schemas": built.schemas, "securitySchemes": {
            "organiserKey": {"type": "http", "scheme": "bearer",
                             "description": "an organisation's key (evk_…), or the "
                                            "installation key ADMIN_API_KEY"}}},
    }
