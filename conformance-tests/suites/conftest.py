"""Fixtures shared by the suites: the target, a client per test, and what the server says
about itself (/ServiceProviderConfig, /ResourceTypes), used to skip what it does not offer."""

from __future__ import annotations

import os

import pytest
import requests

from scim import ENTERPRISE, GROUP, ScimClient, USER


def pytest_addoption(parser):
    group = parser.getgroup("scim", "SCIM target")
    group.addoption(
        "--base-url",
        default=os.environ.get("SCIM_BASE_URL"),
        help="SCIM base URL, e.g. https://host/scim/v2 (default: $SCIM_BASE_URL)",
    )
    group.addoption("--token", default=os.environ.get("SCIM_TOKEN"), help="bearer token (default: $SCIM_TOKEN)")
    group.addoption(
        "--rate-limited-base-url",
        default=os.environ.get("SCIM_RATE_LIMITED_BASE_URL"),
        help="a SCIM base URL whose tenant is limited to --rate-limit requests/s, for the IPSIE 429 test "
        "(default: $SCIM_RATE_LIMITED_BASE_URL; without it that test is skipped)",
    )
    group.addoption(
        "--rate-limited-token",
        default=os.environ.get("SCIM_RATE_LIMITED_TOKEN"),
        help="bearer token for --rate-limited-base-url (default: $SCIM_RATE_LIMITED_TOKEN)",
    )
    group.addoption(
        "--rate-limit",
        type=int,
        default=int(os.environ.get("SCIM_RATE_LIMIT") or 0),
        help="requests/s plus burst that --rate-limited-base-url's tenant is allowed (default: $SCIM_RATE_LIMIT)",
    )


def pytest_configure(config):
    if not config.getoption("--base-url") or not config.getoption("--token"):
        if not config.option.collectonly and not config.option.help:
            raise pytest.UsageError("set SCIM_BASE_URL and SCIM_TOKEN (or pass --base-url and --token)")


@pytest.fixture(scope="session")
def session():
    with requests.Session() as s:
        yield s


def _client(request, session) -> ScimClient:
    return ScimClient(session, request.config.getoption("--base-url"), request.config.getoption("--token"))


@pytest.fixture
def scim(request, session):
    """A client for one test; whatever it creates is deleted when the test ends."""
    client = _client(request, session)
    yield client
    client.cleanup()


@pytest.fixture(scope="module")
def module_scim(request, session):
    """A client whose resources live for a whole module (shared read-only populations)."""
    client = _client(request, session)
    yield client
    client.cleanup()


# -- What the server says it supports -------------------------------------------------------------


def _discover(request, session, path: str):
    """The JSON a discovery endpoint answers, or None when it does not answer 200 with JSON (the
    discovery tests then fail on their own; here it only means "not advertised")."""
    r = _client(request, session).get(path)
    try:
        return r.json() if r.status_code == 200 else None
    except ValueError:
        return None


@pytest.fixture(scope="session")
def service_provider_config(request, session) -> dict:
    body = _discover(request, session, "/ServiceProviderConfig")
    return body if isinstance(body, dict) else {}


@pytest.fixture(scope="session")
def resource_types(request, session) -> list[dict]:
    body = _discover(request, session, "/ResourceTypes")
    return body.get("Resources") or [] if isinstance(body, dict) else []


def _resource_type(types: list[dict], schema: str, endpoint: str) -> dict | None:
    for rt in types:
        if rt.get("schema") == schema or str(rt.get("endpoint", "")).rstrip("/").lower() == endpoint.lower():
            return rt
    return None


@pytest.fixture
def groups(resource_types):
    """Skip group tests when /ResourceTypes does not list Groups; a server that lists them but does
    not serve them fails those tests instead."""
    if _resource_type(resource_types, GROUP, "/Groups") is None:
        pytest.skip("/ResourceTypes does not list a Group resource type")


@pytest.fixture(scope="session")
def enterprise_declared(resource_types) -> bool:
    """Whether the User resource type declares the enterprise extension (RFC 7643 §4.3, §6)."""
    user = _resource_type(resource_types, USER, "/Users") or {}
    return ENTERPRISE in {ext.get("schema") for ext in user.get("schemaExtensions") or []}


@pytest.fixture
def enterprise(enterprise_declared):
    """Skip tests of the enterprise extension when the User resource type does not declare it."""
    if not enterprise_declared:
        pytest.skip("the User resource type does not declare the enterprise extension (RFC 7643 §4.3)")


@pytest.fixture
def rate_limited(request, session):
    """A client for a target configured with a low per-tenant rate limit, and that limit (rate plus
    burst); skipped when none is given, since provoking a production-sized limit from one test
    client is impractical."""
    url, token = request.config.getoption("--rate-limited-base-url"), request.config.getoption("--rate-limited-token")
    limit = request.config.getoption("--rate-limit")
    if not url or not token or limit <= 0:
        pytest.skip(
            "no rate-limited target given (SCIM_RATE_LIMITED_BASE_URL, SCIM_RATE_LIMITED_TOKEN, SCIM_RATE_LIMIT)"
        )
    client = ScimClient(session, url, token)
    yield client, limit
    client.cleanup()
