"""Schemathesis over the OpenAPI schema: generated requests to every operation, anonymous and
with a valid bearer token, never get a 5xx and every documented answer matches the schema."""

import json

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

# Inside a test transaction: a started debate is claimed, its run (launched on commit) never
# begins, so every example sees the database the API left.
pytestmark = pytest.mark.django_db

CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    content_type_conformance,
    status_code_conformance,
]
FUZZ = settings(max_examples=15)  # on the profile of tests/conftest.py


def load_schema():
    """The schema the server serves (drf-spectacular, no request needed), called in-process
    through Django's WSGI handler."""
    raw = SchemaGenerator().get_schema(request=None, public=True)
    loaded = schemathesis.openapi.from_dict(json.loads(OpenApiJsonRenderer().render(raw)))
    loaded.app = get_wsgi_application()
    return loaded


schema = load_schema()


@pytest.fixture(autouse=True)
def _test_connection_kept():
    """Requests leave the test's database connection open (as Django's test client does)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@schema.parametrize()
@FUZZ
def test_api_anonymous(case):
    case.call_and_validate(checks=CHECKS)


@schema.parametrize()
@FUZZ
def test_api_with_a_bearer_token(case, access_token):
    case.call_and_validate(headers={"Authorization": f"Bearer {access_token}"}, checks=CHECKS)
