"""The OpenAPI document tells the truth: schemathesis against the app, as a customer and
as an admin, finds no server error and no answer the document does not describe; errors
are documented with their real shape and the bearer scheme only where a token is needed."""

import os

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.helpers import order_body  # noqa: E402

CHECKS = [status_code_conformance, content_type_conformance, response_schema_conformance]
# 503s that are answers, not failures: a test kernel has no Alembic revisions (/ready), and
# the busy answers a client is told to retry.
ANSWERED_503 = {"not_ready", "overloaded", "retry_later", "busy"}
# per operation and role: bounded, the whole run stays well under a minute (more: set the variable)
EXAMPLES = int(os.environ.get("MALLCORE_SCHEMATHESIS_EXAMPLES", "2"))
CENTERS = ("catalog", "payment", "wms", "tms", "refund", "finance", "risk", "promotion", "membership")


def document(mallcore, kernel):
    return mallcore.client(kernel, None).get("/schema/openapi.json").json()


def operations(doc):
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                yield method.upper(), path, op


def test_errors_are_documented_with_their_shape_and_the_statuses_a_route_answers(mallcore):
    doc = document(mallcore, mallcore.kernel(CENTERS))
    ops = {f"{m} {p}": op for m, p, op in operations(doc)}
    place = ops["POST /orders"]["responses"]
    assert {"201", "400", "401", "403", "404", "409", "422", "503"} <= set(place)
    schema = place["422"]["content"]["application/json"]["schema"]
    ref = schema.get("$ref", "").rsplit("/", 1)[-1]
    error = doc["components"]["schemas"][ref]
    assert set(error["required"]) == {"code", "detail"}
    assert "402" in ops["POST /orders/{order_id}/payments"]["responses"]
    assert ops["GET /ready"]["responses"]["503"]
    # request bodies carry an example, and descriptions come from the handlers' docstrings
    body = ops["POST /orders"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["examples"][0]["lines"][0]["sku"]
    assert "Idempotency-Key" in ops["POST /orders"]["description"]


def test_the_bearer_scheme_is_required_only_where_a_token_is_needed(mallcore):
    doc = document(mallcore, mallcore.kernel(CENTERS))
    assert "security" not in doc  # no blanket requirement
    public = {f"{m} {p}" for m, p, op in operations(doc) if not op.get("security")}
    assert {
        "GET /health",
        "GET /ready",
        "GET /metrics",
        "GET /track/{order_id}",
        "POST /tms/webhooks/{carrier}",
        "POST /payment/webhooks/{provider}",
        "GET /catalog/products",
        "GET /catalog/products/{product_id}",
    } <= public
    ops = {f"{m} {p}": op for m, p, op in operations(doc)}
    for route in ("POST /orders", "GET /orders", "GET /membership/stats", "GET /tms/unknown-events"):
        assert ops[route]["security"] == [{"bearer": []}], route
        assert "401" in ops[route]["responses"], route
    for route in public:
        assert "401" not in ops[route]["responses"], route


@pytest.mark.timeout(240)
def test_schemathesis_finds_no_server_error_and_no_schema_violation(mallcore):
    kernel = mallcore.kernel(CENTERS)
    mallcore.product(kernel, skus=[("SKU-1", 1000)])
    customer = mallcore.client(kernel, "customer", "alice")
    customer.post("/orders", json=order_body())
    admin = mallcore.client(kernel, "admin", "root")
    schema = schemathesis.openapi.from_asgi("/schema/openapi.json", mallcore.app(kernel))
    failures: list[str] = []
    cases = 0

    for result in schema.get_all_operations():
        operation = result.ok()
        for token in (customer.token, admin.token):
            headers = {"Authorization": f"Bearer {token}"}

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy())
            def run(case):
                nonlocal cases
                cases += 1
                response = case.call(headers=headers)  # noqa: B023
                case.validate_response(response, checks=CHECKS)
                if response.status_code >= 500:
                    code = response.json().get("code") if response.status_code == 503 else None
                    assert code in ANSWERED_503, f"{response.status_code} {response.text[:300]}"

            try:
                run()
            except (Exception, BaseExceptionGroup) as exc:
                failures.append(f"{operation.label}: {str(exc).splitlines()[0:6]}")
    assert cases > 200, failures[:3]
    assert failures == [], f"{len(failures)} failing operations of {cases} cases:\n" + "\n".join(failures)


def _schema_with_components(schema, doc):
    """A body's schema as a standalone JSON schema: its ``$ref``s resolve into the document's components."""
    return {**schema, "components": doc["components"]}


def test_every_operation_is_described_and_every_body_has_an_example_that_fits_its_schema(mallcore):
    import jsonschema_rs

    doc = document(mallcore, mallcore.kernel(CENTERS))
    undescribed, unexampled, invalid = [], [], []
    bodies = 0
    for method, path, op in operations(doc):
        label = f"{method} {path}"
        if not (op.get("description") or "").strip() or not (op.get("summary") or "").strip():
            undescribed.append(label)
        media = op.get("requestBody", {}).get("content", {}).get("application/json")
        if media is None:
            continue
        bodies += 1
        schema = media["schema"]
        examples = [e["value"] for e in (media.get("examples") or {}).values()]
        examples += list(schema.get("examples") or [])
        if not examples:
            unexampled.append(label)
        validator = jsonschema_rs.validator_for(_schema_with_components(schema, doc))
        for example in examples:
            errors = [e.message for e in validator.iter_errors(example)]
            if errors:
                invalid.append(f"{label}: {errors[:2]}")
    assert bodies > 50
    assert undescribed == []
    assert unexampled == []
    assert invalid == []


def test_an_example_that_breaks_its_schema_is_caught(mallcore):
    """The check above can fail: an example with a field of the wrong type does not validate."""
    import jsonschema_rs

    doc = document(mallcore, mallcore.kernel(CENTERS))
    media = next(
        op["requestBody"]["content"]["application/json"]
        for m, p, op in operations(doc)
        if (m, p) == ("POST", "/wms/inbound")
    )
    example = next(iter(media["examples"].values()))["value"]
    validator = jsonschema_rs.validator_for(_schema_with_components(media["schema"], doc))
    assert validator.is_valid(example)
    assert not validator.is_valid({**example, "quantity": "1"})


def test_429_and_503_declare_retry_after_and_statuses_are_not_over_documented(mallcore):
    kernel = mallcore.kernel(CENTERS, config={"http": {"limits": {"enabled": True, "per_ip": "1000/second"}}})
    doc = document(mallcore, kernel)
    ops = {f"{m} {p}": op for m, p, op in operations(doc)}
    retrying = 0
    for label, op in ops.items():
        for status in ("429", "503"):
            if status in op["responses"]:
                retrying += 1
                header = op["responses"][status].get("headers", {}).get("Retry-After")
                assert header and header["required"], (label, status)
                assert header["schema"]["type"] == "integer"
    assert retrying > 200
    assert "429" in ops["GET /orders"]["responses"]
    # a read without a role guard shows less, it never refuses: no 403
    for route in ("GET /orders", "GET /orders/{order_id}", "GET /after-sales", "GET /payment/payments"):
        assert "403" not in ops[route]["responses"], route
    assert "403" in ops["GET /risk/rules"]["responses"]
    # a path parameter that does not parse matches no route (404): no 400 without a query or body
    assert "400" not in ops["GET /orders/{order_id}"]["responses"]
    assert "400" in ops["GET /orders"]["responses"]
    # a handler of config values with no token touches no database: no 503
    assert "503" not in ops["GET /refund/reasons"]["responses"]
    # a JSON body can be too large or not JSON
    assert {"413", "415"} <= set(ops["POST /risk/rules"]["responses"])
    assert "415" not in ops["GET /orders"]["responses"]


def test_every_503_answer_carries_retry_after(mallcore):
    """What the document declares is what the server sends: a database that cannot be reached."""
    from sqlalchemy.exc import OperationalError

    from mallcore.kernel.http.errors import database_error

    class Request:
        scope: dict = {}

        class url:
            path = "/orders"

    response = database_error(Request(), OperationalError("SELECT 1", {}, Exception("connection refused")))
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
