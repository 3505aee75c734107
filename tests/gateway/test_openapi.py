"""The OpenAPI document is generated from the routes: nothing the server
routes is missing from it, and every shape in it is closed, so a field the
code returns that the model lacks fails (test_answers.py feeds the models
what the services really return)."""
import re

from openapi_spec_validator import validate

from services.gateway import openapi
from services.gateway.routing import ApiServer
from services.gateway.service import GatewayService


def test_the_document_is_valid_openapi():
    validate(openapi.document(GatewayService))


def test_every_route_the_server_knows_is_documented(gateway):
    server = next(e for e in gateway.container.extensions if isinstance(e, ApiServer))
    paths = openapi.document(GatewayService)["paths"]
    rules = list(server.make_url_map().iter_rules())
    assert len(rules) == len(openapi.routes(GatewayService)) > 15
    # Left out on purpose, and only these: the pages' script and style files, and
    # the organiser console's pages (people's pages on top of the API documented here).
    assert {r.rule for r in rules if not r.endpoint.doc.documented
            if not r.rule.startswith("/admin/")} == {"/static/<name>"}
    for rule in rules:
        if not rule.endpoint.doc.documented:
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        assert path in paths, path
        for method in rule.methods - {"HEAD"}:
            assert method.lower() in paths[path], (method, path)


def test_path_ids_are_documented_with_the_shape_the_server_accepts():
    paths = openapi.document(GatewayService)["paths"]
    slug = paths["/api/v1/events/{slug}"]["parameters"][0]["schema"]["pattern"]
    assert re.fullmatch(slug, "kashmir-diaspora-2020") and not re.fullmatch(slug, "UPPER")
    [_, hook] = paths["/api/v1/events/{slug}/webhooks/{hook_id}"]["parameters"]
    assert hook["schema"]["pattern"] == "^[0-9a-f]{32}$"


def test_every_documented_object_is_closed():
    for name, schema in openapi.document(GatewayService)["components"]["schemas"].items():
        if "properties" in schema:
            assert schema.get("additionalProperties") is False, name


def test_each_route_documents_what_its_caller_and_body_can_cause():
    paths = openapi.document(GatewayService)["paths"]
    create = paths["/api/v1/events"]["post"]
    assert {"201", "400", "401", "409", "413", "415", "422", "503"} <= set(create["responses"])
    assert create["security"] == [{"organiserKey": []}]
    register = paths["/api/v1/events/{slug}/registrations"]["post"]
    assert "429" in register["responses"] and register["security"] == []
    read = paths["/api/v1/registrations/{registration_id}"]["get"]
    assert [p["name"] for p in read["parameters"]] == ["token", "wait"]
    page = paths["/events/{slug}"]["get"]["responses"]["404"]
    assert list(page["content"]) == ["text/html"]
