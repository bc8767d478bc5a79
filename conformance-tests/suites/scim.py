"""A small SCIM client and the assertions the suites share.

Everything here speaks plain RFC 7644 over HTTP; nothing knows which server is on the other end.
Assertion messages are written to fit on one line of the report: the request, the status, and
the part of the body that explains it.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, Iterable
from urllib.parse import urlsplit

import pytest
import requests

SCIM_JSON = "application/scim+json"

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SEARCH_REQUEST = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
BULK_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
SERVICE_PROVIDER_CONFIG = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
RESOURCE_TYPE = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"


def unique(prefix: str) -> str:
    """A name no other test run will use: `prefix` and 12 random hex digits."""
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def quoted(value: str) -> str:
    """A filter string literal (RFC 7644 §3.4.2.2: values are JSON strings)."""
    return json.dumps(value)


def patch_body(*operations: dict) -> dict:
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


def is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class ScimClient:
    """Sends SCIM requests to one base URL and remembers what it created, to delete it later."""

    def __init__(self, session: requests.Session, base_url: str, token: str):
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.token = token
        self._created: list[str] = []

    # -- HTTP ---------------------------------------------------------------------------------

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else self.base_url + path

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: dict | None = None,
        headers: dict | None = None,
        content_type: str = SCIM_JSON,
        raw: str | bytes | None = None,
        token: str | None = None,
    ) -> requests.Response:
        sent = {"Accept": SCIM_JSON, "Authorization": f"Bearer {self.token if token is None else token}"}
        data = raw
        if body is not None:
            data = json.dumps(body)
        if data is not None:
            sent["Content-Type"] = content_type
        sent.update(headers or {})
        return self.session.request(method, self.url(path), data=data, params=params, headers=sent, timeout=30)

    def get(self, path: str, **kw) -> requests.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw) -> requests.Response:
        return self.request("POST", path, body, **kw)

    def put(self, path: str, body: Any = None, **kw) -> requests.Response:
        return self.request("PUT", path, body, **kw)

    def patch(self, path: str, *operations: dict, **kw) -> requests.Response:
        return self.request("PATCH", path, patch_body(*operations), **kw)

    def delete(self, path: str, **kw) -> requests.Response:
        return self.request("DELETE", path, **kw)

    # -- Resources this test owns -------------------------------------------------------------

    def create(self, endpoint: str, resource: dict, **kw) -> dict:
        """POST a resource, insist on 201 and a body with an id, and schedule its deletion."""
        body = expect(self.post(endpoint, resource, **kw), 201)
        assert isinstance(body, dict) and body.get("id"), f"POST {endpoint} answered 201 without an id: {excerpt(body)}"
        self.own(f"{endpoint}/{body['id']}")
        return body

    def own(self, path: str) -> None:
        """Delete `path` when the test ends (users and groups alike)."""
        self._created.append(path)

    def cleanup(self) -> None:
        """DELETE everything this client created, newest first. A server without DELETE, or a
        resource the test already deleted, is not an error here."""
        for path in reversed(self._created):
            try:
                self.delete(path)
            except requests.RequestException:
                pass
        self._created.clear()


# -- Reading answers ----------------------------------------------------------------------------


def excerpt(value: Any, limit: int = 240) -> str:
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe(r: requests.Response) -> str:
    """`PATCH /Users/abc → 400: {"detail":…}`: what a failing assertion shows."""
    path = urlsplit(r.request.url)
    where = path.path + (f"?{path.query}" if path.query else "")
    body = r.text.strip()
    return f"{r.request.method} {where} → {r.status_code}" + (f": {excerpt(body)}" if body else "")


def json_body(r: requests.Response) -> Any:
    try:
        return r.json()
    except ValueError:
        raise AssertionError(f"{describe(r)} (body is not JSON)") from None


def expect(r: requests.Response, *statuses: int) -> Any:
    """Assert the status is one of `statuses`; return the JSON body (None when there is none)."""
    wanted = " or ".join(str(s) for s in statuses)
    assert r.status_code in statuses, f"expected {wanted}, got {describe(r)}"
    return json_body(r) if r.content.strip() else None


def expect_error(r: requests.Response, status: int, scim_type: str | None = None) -> dict:
    """RFC 7644 §3.12: an error answers `status` with the Error schema, `status` as a string, and
    (for 400s that have one) the right `scimType`."""
    body = expect(r, status)
    assert isinstance(body, dict), f"{describe(r)}: no SCIM error body"
    assert ERROR in body.get("schemas", []), f"{describe(r)}: schemas lacks {ERROR}"
    assert body.get("status") == str(
        status
    ), f"{describe(r)}: error status must be the string {str(status)!r}, got {body.get('status')!r}"
    if scim_type is not None:
        assert (
            body.get("scimType") == scim_type
        ), f"{describe(r)}: scimType must be {scim_type!r}, got {body.get('scimType')!r}"
    return body


def expect_list(r: requests.Response) -> dict:
    """A 200 ListResponse (RFC 7644 §3.4.2) with integer counters."""
    body = expect(r, 200)
    assert isinstance(body, dict) and LIST_RESPONSE in body.get("schemas", []), f"{describe(r)}: not a ListResponse"
    for key in ("totalResults", "itemsPerPage", "startIndex"):
        if key in body:
            assert is_integer(body[key]), f"{describe(r)}: {key} must be an integer, got {body[key]!r}"
    assert is_integer(body.get("totalResults")), f"{describe(r)}: totalResults missing"
    return body


def resources(body: dict) -> list[dict]:
    return body.get("Resources") or []


def ids(body: dict) -> list[str]:
    return [res.get("id") for res in resources(body)]


def patched(client: ScimClient, r: requests.Response, path: str) -> dict:
    """A PATCH answers 200 with the resource or 204 (RFC 7644 §3.5.2); return the resource as the
    server now holds it, read back with GET."""
    expect(r, 200, 204)
    return expect(client.get(path), 200)


def get_attr(resource: dict, dotted: str) -> Any:
    """Value at a dotted path, matching attribute names case-insensitively (RFC 7643 §2.1).
    A fully qualified extension attribute (`urn:…:User:employeeNumber`) is looked up in the
    extension's object."""
    node: Any = resource
    head, sep, tail = dotted.rpartition(":") if dotted.startswith("urn:") else ("", "", dotted)
    if sep:
        node = _lookup(node, head)
    for part in tail.split("."):
        node = _lookup(node, part)
    return node


def _lookup(node: Any, key: str) -> Any:
    if not isinstance(node, dict):
        return None
    for k, v in node.items():
        if k.lower() == key.lower():
            return v
    return None


def typed(values: Iterable[dict] | None, kind: str) -> list[dict]:
    """The values of a multi-valued attribute whose `type` is `kind`."""
    return [v for v in values or [] if isinstance(v, dict) and str(v.get("type", "")).lower() == kind]


def member_ids(group: dict) -> set[str]:
    return {m.get("value") for m in group.get("members") or []}


def is_empty(value: Any) -> bool:
    """RFC 7643 §2.5: unassigned, null and empty are the same state."""
    return value is None or value == "" or value == [] or value == {}


# -- Optional features ---------------------------------------------------------------------------


def supports(config: dict, feature: str) -> bool:
    """ServiceProviderConfig's `<feature>.supported` (RFC 7643 §5)."""
    return (config.get(feature) or {}).get("supported") is True


def require(config: dict, feature: str, why: str):
    if not supports(config, feature):
        pytest.skip(f"ServiceProviderConfig says {feature}.supported is not true: {why}")


def deletes(client: ScimClient, path: str) -> bool:
    """DELETE `path`; False (so the caller can skip) when the server does not offer DELETE."""
    r = client.delete(path)
    if r.status_code in (405, 501):
        return False
    expect(r, 204)
    return True
