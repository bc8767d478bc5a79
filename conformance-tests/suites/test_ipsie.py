"""The OpenID IPSIE AL SCIM 2.0 Profile (draft 00), clause by clause, as a SCIM server can show it.

Source: https://openid.net/specs/ipsie-al-scim-profile-1_0.html (IPSIE Working Group, "IPSIE AL
SCIM 2.0 Profile Draft 00"). One test per MUST, SHALL, SHOULD or RECOMMENDED that a service
provider can show over HTTP; each docstring quotes its clause. Clauses about the client (the
Identity Service) or about what happens outside SCIM (audit logs, web sessions, SSH keys) are
listed in conformance-tests/README.md with the reason they are not here.

Tests marked `xfail(strict=True)` fail on Roster today: the reason names the missing feature or
the defect. Strict means a pass fails the run, so the marker is removed when the feature lands.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests

from scim import (
    BULK_REQUEST,
    BULK_RESPONSE,
    GROUP,
    USER,
    ScimClient,
    describe,
    deletes,
    expect,
    expect_error,
    expect_list,
    get_attr,
    ids,
    member_ids,
    patched,
    quoted,
    resources,
    unique,
)

def new_user(**extra) -> dict:
    uid = unique("")
    user = {
        "schemas": [USER],
        "userName": f"ipsie.{uid}@example.com",
        "displayName": f"Ipsie {uid}",
        "externalId": f"ext-{uid}",
        "name": {"givenName": "Ada", "familyName": f"Lovelace{uid}"},
        "emails": [{"value": f"ipsie.{uid}@work.example.com", "type": "work", "primary": True}],
        "active": True,
    }
    user.update(extra)
    return user


def new_group(**extra) -> dict:
    group = {"schemas": [GROUP], "displayName": unique("IPSIE Group "), "externalId": unique("gext-")}
    group.update(extra)
    return group


def only_match(scim: ScimClient, endpoint: str, filter_: str, wanted_id: str) -> None:
    body = expect_list(scim.get(endpoint, params={"filter": filter_}))
    assert ids(body) == [wanted_id], f"GET {endpoint}?filter={filter_} → {ids(body)}, expected only {wanted_id}"
    total = body["totalResults"]
    assert total == 1, f"GET {endpoint}?filter={filter_}: totalResults {total}, expected 1"


def schema_attributes(scim: ScimClient, urn: str) -> dict[str, dict]:
    body = expect(scim.get(f"/Schemas/{urn}"), 200)
    return {a["name"].lower(): a for a in body.get("attributes") or []}


def origin(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "", "", ""))


def authorization_server_metadata(scim: ScimClient) -> dict:
    """RFC 8414 §3: the metadata is at /.well-known/oauth-authorization-server, with the issuer's
    path (if any) appended. The issuer is not known in advance, so try the server's root and then
    each prefix of the SCIM base path."""
    base = urlsplit(scim.base_url)
    segments = [s for s in base.path.split("/") if s]
    tried = []
    for n in range(len(segments) + 1):
        suffix = "".join(f"/{s}" for s in segments[:n])
        url = f"{origin(scim.base_url)}/.well-known/oauth-authorization-server{suffix}"
        r = scim.session.get(url, headers={"Accept": "application/json"}, timeout=30)
        tried.append(f"{url} → {r.status_code}")
        if r.status_code == 200:
            try:
                return r.json()
            except ValueError:
                pass
    raise AssertionError("no RFC 8414 metadata: " + "; ".join(tried))


# -- §4.1 Authentication and Authorization -------------------------------------------------------


def test_every_scim_request_needs_an_oauth_bearer_token(scim):
    """§4.1: "The Identity Service and Application MUST use OAuth 2.0 [RFC6749] for authentication
    and authorization of all SCIM (HTTP) requests." A request without a token, or with a bad one,
    is refused with 401 and an RFC 6750 §3 `WWW-Authenticate: Bearer` challenge, and
    ServiceProviderConfig names the `oauthbearertoken` scheme (RFC 7643 §5)."""
    for path in ("/Users", "/Groups", "/ServiceProviderConfig"):
        for token in ("", "not-a-token"):
            r = scim.get(path, token=token)
            expect_error(r, 401)
            challenge = r.headers.get("WWW-Authenticate", "")
            assert challenge.lower().startswith("bearer"), f"{describe(r)}: WWW-Authenticate is {challenge!r}"
    config = expect(scim.get("/ServiceProviderConfig"), 200)
    schemes = [s.get("type") for s in config.get("authenticationSchemes") or []]
    assert "oauthbearertoken" in schemes, f"authenticationSchemes types are {schemes}"


def test_authorization_server_metadata_names_the_token_endpoint(scim):
    """§4.1: "Both the Application and the Identity Service MUST expose OAuth Authorization Server
    metadata as defined in [RFC8414]. The Application's metadata document MUST include a
    "token_endpoint" value identifying its OAuth 2.0 token endpoint." RFC 8414 §2 makes `issuer`
    REQUIRED and §3.3 requires it to be the URL the metadata was derived from."""
    metadata = authorization_server_metadata(scim)
    assert metadata.get("issuer"), f"metadata has no issuer: {metadata}"
    assert metadata.get("token_endpoint"), f"metadata has no token_endpoint: {metadata}"


def test_token_endpoint_takes_client_credentials_with_rfc7523_client_authentication(scim):
    """§4.1: "OAuth 2.0 interactions MUST use the client_credentials grant type with JWT Client
    Authentication as defined in [RFC7523] section 2.2." §10 repeats it: the Application "SHALL
    enforce OAuth 2.0 JWT Profile for Authentication [RFC7523]".

    The profile contradicts itself and RFC 7523 here: its next bullet says the Identity Service
    "MUST authenticate ... using HTTP Basic authentication" and that "client credentials (e.g.,
    client_assertion, client_secret) in the HTTP request body is prohibited", but RFC 7523 §2.2
    sends the JWT as the `client_assertion` form parameter, in the body, with
    `client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`. We follow the
    standard: the metadata must list `client_credentials` among `grant_types_supported` and
    `private_key_jwt` among `token_endpoint_auth_methods_supported` (RFC 8414 §2), and the token
    endpoint must answer an assertion it cannot verify with RFC 6749 §5.2 `invalid_client`, not
    with a refusal of the method."""
    metadata = authorization_server_metadata(scim)
    assert "client_credentials" in (metadata.get("grant_types_supported") or []), f"metadata: {metadata}"
    assert "private_key_jwt" in (metadata.get("token_endpoint_auth_methods_supported") or []), f"metadata: {metadata}"
    forged = ".".join(
        base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()
        for part in ({"alg": "RS256", "typ": "JWT"}, {"iss": "nobody", "sub": "nobody", "exp": 1})
    )
    r = scim.session.post(
        metadata["token_endpoint"],
        data={
            "grant_type": "client_credentials",
            "scope": "scim",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": forged + ".c2lnbmF0dXJl",
        },
        timeout=30,
    )
    assert r.status_code in (400, 401), f"{describe(r)}: expected 400 or 401 invalid_client"
    assert r.json().get("error") == "invalid_client", f"{describe(r)}: expected error invalid_client"


# -- §4.3 Performance and Efficiency -------------------------------------------------------------


def paced(scim: ScimClient, path: str, per_second: int, seconds: int) -> list[requests.Response]:
    """`per_second` GETs of `path` each second for `seconds` seconds, sent from four threads."""
    deadline = time.monotonic()
    answers: list[requests.Response] = []

    def one(_):
        with requests.Session() as s:
            return ScimClient(s, scim.base_url, scim.token).get(path)

    with ThreadPoolExecutor(max_workers=4) as pool:
        for _ in range(seconds):
            answers += pool.map(one, range(per_second))
            deadline += 1
            time.sleep(max(0.0, deadline - time.monotonic()))
    return answers


def test_a_tenant_is_served_at_25_requests_per_second(scim):
    """§4.3: "The Application MUST support at least 25 SCIM requests per second. This requirement
    is per-tenant for multi-tenant (B2B SaaS, etc.) applications." 25 requests every second for
    three seconds, on one token (one tenant), all answer 200 (none is refused with 429) and the
    server keeps pace: the 75 answers arrive within four seconds."""
    user = scim.create("/Users", new_user())
    started = time.monotonic()
    answers = paced(scim, f"/Users/{user['id']}", 25, 3)
    elapsed = time.monotonic() - started
    refused = [r for r in answers if r.status_code != 200]
    assert not refused, f"{len(refused)} of {len(answers)} requests at 25/s failed, e.g. {describe(refused[0])}"
    assert elapsed < 4, f"75 requests paced at 25/s took {elapsed:.1f} s: the server did not keep up"


def test_past_the_rate_limit_every_scim_endpoint_answers_429_with_retry_after(rate_limited):
    """§4.3: "The Application MUST enforce rate limits on all SCIM endpoints and must respond with
    appropriate headers, such as "429 Too Many Requests" and "Retry-After," when limits are
    exceeded." §8: "All endpoints SHALL enforce rate limiting and must respond with "429 Too Many
    Requests" when limits are exceeded." and "Error responses SHALL use the SCIM error format".

    Runs against a target configured with a low per-tenant limit (rate plus burst given as
    SCIM_RATE_LIMIT). For each SCIM endpoint, twice the limit is sent at once: some answers are
    429. A 429 carries a `Retry-After` of delta-seconds or an HTTP-date (RFC 9110 §10.2.3) and a
    SCIM error body; after the advised wait the tenant is served again."""
    client, limit = rate_limited

    def one(path):
        with requests.Session() as s:
            return ScimClient(s, client.base_url, client.token).get(path)

    first = None
    with ThreadPoolExecutor(max_workers=8) as pool:
        for path in ("/Users?count=1", "/Groups?count=1", "/ServiceProviderConfig", "/ResourceTypes", "/Schemas"):
            answers = list(pool.map(one, [path] * (2 * limit)))
            limited = [r for r in answers if r.status_code == 429]
            assert limited, f"{2 * limit} requests at once to {path} against a limit of {limit}: none answered 429"
            first = first or limited[0]
    retry_after = first.headers.get("Retry-After", "")
    assert re.fullmatch(r"\d+", retry_after) or re.fullmatch(
        r"[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT", retry_after
    ), f"{describe(first)}: Retry-After is {retry_after!r}"
    expect_error(first, 429)
    time.sleep((int(retry_after) if retry_after.isdigit() else 2) + 1)
    expect(client.get("/Users?count=1"), 200)


def test_service_provider_config_advertises_bulk(scim, service_provider_config):
    """§4.3: "The Application and the Identity Service MUST support the SCIM /Bulk endpoint defined
    in [RFC7643] section 3.7." (the endpoint is defined in RFC 7644 §3.7; RFC 7643 §3.7 does not
    exist). RFC 7643 §5: ServiceProviderConfig `bulk.supported` true, with a positive
    `maxOperations` and `maxPayloadSize`."""
    bulk = service_provider_config.get("bulk") or {}
    assert bulk.get("supported") is True, f"ServiceProviderConfig bulk is {bulk}"
    assert bulk.get("maxOperations", 0) > 0 and bulk.get("maxPayloadSize", 0) > 0, f"bulk is {bulk}"


def test_bulk_creates_a_user_and_a_group_whose_member_it_is(scim):
    """§4.3: "The Application and the Identity Service MUST support the SCIM /Bulk endpoint".
    RFC 7644 §3.7: a BulkRequest POSTing a User and a Group whose member is `bulkId:` of that user,
    the group listed first, answers 200 with a BulkResponse; each operation has `status` 201 and a
    `location`, and the group holds the new user (§3.7.2: a `bulkId` reference resolves whatever
    the order of the operations)."""
    user = new_user()
    group = new_group(members=[{"value": "bulkId:ipsieUser"}])
    r = scim.post(
        "/Bulk",
        {
            "schemas": [BULK_REQUEST],
            "Operations": [
                {"method": "POST", "path": "/Groups", "bulkId": "ipsieGroup", "data": group},
                {"method": "POST", "path": "/Users", "bulkId": "ipsieUser", "data": user},
            ],
        },
    )
    body = expect(r, 200)
    assert BULK_RESPONSE in body.get("schemas", []), f"{describe(r)}: not a BulkResponse"
    results = {op.get("bulkId"): op for op in body.get("Operations") or []}
    for key in ("ipsieUser", "ipsieGroup"):
        op = results.get(key) or {}
        assert str(op.get("status")) == "201" and op.get("location"), f"{describe(r)}: operation {key} is {op}"
        scim.own(urlsplit(op["location"]).path.removeprefix(urlsplit(scim.base_url).path))
    created = expect(scim.get(results["ipsieGroup"]["location"]), 200)
    user_id = results["ipsieUser"]["location"].rstrip("/").rsplit("/", 1)[-1]
    assert member_ids(created) == {user_id}, f"bulk group members {member_ids(created)}, expected {user_id}"


def test_one_patch_updates_several_attributes(scim):
    """§4.3: "The Application MUST support PATCH requests that update multiple attributes within a
    single request." One PATCH replaces displayName, title and name.givenName and adds a phone
    number; the user read back has all four."""
    user = scim.create("/Users", new_user())
    path = f"/Users/{user['id']}"
    after = patched(
        scim,
        scim.patch(
            path,
            {"op": "replace", "path": "displayName", "value": "Ada King"},
            {"op": "replace", "path": "title", "value": "Countess"},
            {"op": "replace", "path": "name.givenName", "value": "Augusta"},
            {"op": "add", "path": "phoneNumbers", "value": [{"value": "tel:+44-20-7946-0018", "type": "work"}]},
        ),
        path,
    )
    assert get_attr(after, "displayName") == "Ada King", f"displayName is {get_attr(after, 'displayName')!r}"
    assert get_attr(after, "title") == "Countess", f"title is {get_attr(after, 'title')!r}"
    assert get_attr(after, "name.givenName") == "Augusta", f"name is {after.get('name')}"
    phones = [p.get("value") for p in after.get("phoneNumbers") or []]
    assert phones == ["tel:+44-20-7946-0018"], f"phoneNumbers are {phones}"


# -- §5 AL1: User Deprovisioning -----------------------------------------------------------------


def test_patch_deactivates_a_user(scim):
    """§5.1: "Changes to the user activation status, such deactivation and reactivation, are
    performed by the SCIM operation PATCH /Users/{id}". §10, AL1: the Application "SHALL support
    PATCH /Users/{id} for deactivation". The user reads back, and filters, as `active` false."""
    user = scim.create("/Users", new_user())
    path = f"/Users/{user['id']}"
    after = patched(scim, scim.patch(path, {"op": "replace", "path": "active", "value": False}), path)
    assert after.get("active") is False, f"after deactivation active is {after.get('active')!r}"
    inactive = f"userName eq {quoted(user['userName'])} and active eq false"
    body = expect_list(scim.get("/Users", params={"filter": inactive}))
    assert ids(body) == [user["id"]], f"the deactivated user is not found by active eq false: {ids(body)}"


def test_a_deactivated_user_can_be_reactivated(scim):
    """§5.1: "The Application MUST allow reactivation of a deactivated user." Deactivated and then
    reactivated by PATCH, the user reads back `active` true with its profile unchanged."""
    user = scim.create("/Users", new_user())
    path = f"/Users/{user['id']}"
    patched(scim, scim.patch(path, {"op": "replace", "path": "active", "value": False}), path)
    after = patched(scim, scim.patch(path, {"op": "replace", "path": "active", "value": True}), path)
    assert after.get("active") is True, f"after reactivation active is {after.get('active')!r}"
    assert after.get("userName") == user["userName"], f"userName changed to {after.get('userName')!r}"
    assert after.get("externalId") == user["externalId"], f"externalId changed to {after.get('externalId')!r}"


def test_delete_removes_a_user(scim):
    """§5.2: "Applications MAY allow users to be deleted via the SCIM operation DELETE
    /Users/{id}." §10, AL1: the Application "SHALL support DELETE /Users/{id}". DELETE answers
    204 and the user is then 404 (RFC 7644 §3.6)."""
    user = scim.create("/Users", new_user())
    path = f"/Users/{user['id']}"
    if not deletes(scim, path):
        pytest.skip("DELETE /Users/{id} answers 405 or 501 (§5.2: MAY)")
    expect_error(scim.get(path), 404)


def test_a_deleted_users_username_can_be_used_again(scim):
    """§5.2: "After a user is deleted, the Application MUST allow the creation of a new user with
    the same username." The new user is a new resource: another id, found alone by its userName."""
    first = scim.create("/Users", new_user())
    if not deletes(scim, f"/Users/{first['id']}"):
        pytest.skip("DELETE /Users/{id} answers 405 or 501 (§5.2: MAY)")
    again = scim.create("/Users", new_user(userName=first["userName"]))
    assert again["id"] != first["id"], f"the new user reuses the deleted id {first['id']}"
    only_match(scim, "/Users", f"userName eq {quoted(first['userName'])}", again["id"])


def test_get_user_by_id(scim):
    """§5.3: "The Application MUST support retrieving a single user by ID via the SCIM operation
    GET /Users/{id}." The answer is the user that was created."""
    user = scim.create("/Users", new_user())
    got = expect(scim.get(f"/Users/{user['id']}"), 200)
    assert got.get("id") == user["id"] and got.get("userName") == user["userName"], f"GET answered {got}"


def test_filter_users_by_username(scim):
    """§5.4: "The Application MUST support the following filter expressions: username eq
    {username}". Written as the profile writes it, `username`: attribute names are
    case-insensitive (RFC 7643 §2.1)."""
    user = scim.create("/Users", new_user())
    scim.create("/Users", new_user())
    only_match(scim, "/Users", f"username eq {quoted(user['userName'])}", user["id"])


def test_filter_users_by_external_id(scim):
    """§5.4: "The Application MUST support the following filter expressions: ... externalId eq
    {externalId}"."""
    user = scim.create("/Users", new_user())
    scim.create("/Users", new_user())
    only_match(scim, "/Users", f"externalId eq {quoted(user['externalId'])}", user["id"])


def test_filter_users_by_email_value(scim):
    """§5.4: "The Application MUST support the following filter expressions: ... emails[value eq
    {email}]"."""
    user = scim.create("/Users", new_user())
    scim.create("/Users", new_user())
    email = user["emails"][0]["value"]
    only_match(scim, "/Users", f"emails[value eq {quoted(email)}]", user["id"])


def test_filter_users_by_work_email(scim):
    """§5.4: "The Application MUST support the following filter expressions: ... emails[type eq
    "work" and value eq {email}]". A user holding the same address as a home email does not
    match."""
    user = scim.create("/Users", new_user())
    email = user["emails"][0]["value"]
    scim.create("/Users", new_user(emails=[{"value": email, "type": "home"}]))
    only_match(scim, "/Users", f'emails[type eq "work" and value eq {quoted(email)}]', user["id"])


# -- §6.1 AL2: User Provisioning -----------------------------------------------------------------


def test_user_schema_has_username_displayname_and_active(scim):
    """§6.1.1: "The Application MUST include the following attributes in the User schema:
    userName, displayName, active". /Schemas publishes the User schema with all three (RFC 7644
    §4)."""
    attributes = schema_attributes(scim, USER)
    missing = {"username", "displayname", "active"} - set(attributes)
    assert not missing, f"the User schema lacks {sorted(missing)}"


def test_users_keep_and_return_external_id(scim):
    """§6.1.1: "the "externalId" attribute defined as optional in the "common" resource schema in
    [RFC7643] MUST be supported by the Application." Set on create, changed by PATCH, returned
    by GET."""
    user = scim.create("/Users", new_user())
    path = f"/Users/{user['id']}"
    assert expect(scim.get(path), 200).get("externalId") == user["externalId"], "externalId not returned"
    changed = unique("ext-")
    after = patched(scim, scim.patch(path, {"op": "replace", "path": "externalId", "value": changed}), path)
    assert after.get("externalId") == changed, f"externalId after PATCH is {after.get('externalId')!r}"


def test_user_schema_has_no_password_attribute(scim):
    """§6.1.2: "The Application MUST NOT support the "password" attribute." The User schema the
    server publishes (RFC 7644 §4) does not declare `password`."""
    attributes = schema_attributes(scim, USER)
    assert "password" not in attributes, f"the User schema declares password: {attributes['password']}"


CREDENTIAL_NAMES = re.compile(r"password|passwd|secret|hash|privatekey|totp|otpseed|mfaseed|credential", re.I)


def test_no_schema_defines_credential_attributes(scim):
    """§6.1.2: "The Application MUST NOT define attributes containing credentials in custom
    schemas." No schema other than the RFC 7643 core ones declares an attribute (or
    sub-attribute) whose name says it holds a password, hash, private key, TOTP seed or other
    credential."""
    body = expect_list(scim.get("/Schemas"))
    custom = [s for s in resources(body) if not str(s.get("id", "")).startswith("urn:ietf:params:scim:schemas:")]
    found = []
    for schema in custom:
        stack = list(schema.get("attributes") or [])
        while stack:
            attribute = stack.pop()
            if CREDENTIAL_NAMES.search(attribute.get("name", "")):
                found.append(f"{schema['id']}:{attribute['name']}")
            stack += attribute.get("subAttributes") or []
    assert not found, f"custom schemas declare credential attributes: {found}"


def test_create_user(scim):
    """§6.1.3: "The Identity Service and the Application MUST support user creation via POST
    /Users." 201 with the user, its id, and a `Location` (RFC 7644 §3.3)."""
    sent = new_user()
    r = scim.post("/Users", sent)
    body = expect(r, 201)
    scim.own(f"/Users/{body['id']}")
    assert body.get("userName") == sent["userName"], f"{describe(r)}: userName differs"
    assert r.headers.get("Location", "").endswith(f"/Users/{body['id']}"), f"{describe(r)}: Location header"


def test_patch_updates_a_user(scim):
    """§6.1.4: "The Identity Service and the Application MUST support updating a user's attribute
    values via the SCIM operation PATCH /Users/{id}." An `add`, a `replace` and a `remove` each
    take effect."""
    user = scim.create("/Users", new_user(title="Analyst"))
    path = f"/Users/{user['id']}"
    after = patched(scim, scim.patch(path, {"op": "add", "path": "nickName", "value": "Ada"}), path)
    assert after.get("nickName") == "Ada", f"nickName after add is {after.get('nickName')!r}"
    after = patched(scim, scim.patch(path, {"op": "replace", "value": {"title": "Engineer"}}), path)
    assert after.get("title") == "Engineer", f"title after replace is {after.get('title')!r}"
    after = patched(scim, scim.patch(path, {"op": "remove", "path": "nickName"}), path)
    assert not after.get("nickName"), f"nickName after remove is {after.get('nickName')!r}"


def test_get_all_users(scim):
    """§6.1.5: "The Application MUST support retrieval of all users via the SCIM operation GET
    /Users." Paging through the whole list finds every user created here."""
    created = {scim.create("/Users", new_user())["id"] for _ in range(3)}
    seen, start = set(), 1
    while True:
        body = expect_list(scim.get("/Users", params={"startIndex": start, "count": 1000, "attributes": "id"}))
        page = ids(body)
        seen.update(page)
        start += len(page)
        if not page or start > body["totalResults"]:
            break
    assert created <= seen, f"GET /Users never listed {sorted(created - seen)}"


def test_no_page_holds_more_than_1000_resources(scim, service_provider_config):
    """§6.1.5: "The Application SHOULD avoid returning more than 1,000 users per page." The
    ServiceProviderConfig's `filter.maxResults` (RFC 7643 §5) is at most 1,000, and a request
    for `count=5000` gets a page of at most 1,000 (RFC 7644 §3.4.2.4: the count is a maximum the
    server may lower)."""
    max_results = (service_provider_config.get("filter") or {}).get("maxResults")
    assert isinstance(max_results, int) and 0 < max_results <= 1000, f"filter.maxResults is {max_results!r}"
    body = expect_list(scim.get("/Users", params={"count": 5000, "attributes": "id"}))
    page = len(resources(body))
    assert page <= 1000 and body.get("itemsPerPage", page) <= 1000, f"count=5000 gave a page of {page}"


def test_cursor_paging_is_offered_for_users(scim, service_provider_config):
    """§6.1.5: "Support for cursor-based pagination by the Application is RECOMMENDED."
    ServiceProviderConfig says `pagination.cursor` true (RFC 9865 §4) and `GET /Users?cursor`
    pages with `nextCursor` (RFC 9865 §2) through users created here."""
    pagination = service_provider_config.get("pagination") or {}
    assert pagination.get("cursor") is True, f"ServiceProviderConfig pagination is {pagination}"
    prefix = unique("ipsie.cursor.")
    created = {scim.create("/Users", new_user(userName=f"{prefix}.{n}@example.com"))["id"] for n in range(3)}
    params = {"filter": f"userName sw {quoted(prefix)}", "count": 2, "cursor": ""}
    seen, pages = [], 0
    while True:
        body = expect_list(scim.get("/Users", params=params))
        seen += ids(body)
        pages += 1
        if not body.get("nextCursor") or pages > 5:
            break
        params["cursor"] = body["nextCursor"]
    assert pages == 2 and sorted(seen) == sorted(created), f"cursor pages {pages}, users {seen}"


# -- §6.2 AL2: Group Provisioning ----------------------------------------------------------------


def test_group_schema_has_display_name_and_members(scim, groups):
    """§6.2.1: "The Application MUST include the following attributes in the Group schema:
    displayName, members"."""
    attributes = schema_attributes(scim, GROUP)
    missing = {"displayname", "members"} - set(attributes)
    assert not missing, f"the Group schema lacks {sorted(missing)}"


def test_groups_keep_and_return_external_id(scim, groups):
    """§6.2.1: "the "externalId" attribute defined as optional in the "common" resource schema in
    [RFC7643] MUST be supported by the Application." Set on create, returned by GET."""
    group = scim.create("/Groups", new_group())
    got = expect(scim.get(f"/Groups/{group['id']}"), 200)
    assert got.get("externalId") == group["externalId"], f"externalId is {got.get('externalId')!r}"


def test_two_groups_cannot_share_a_display_name(scim, groups):
    """§6.2.1: "The Application SHOULD NOT allow multiple groups to have the same value for the
    "displayName" attribute". A second group with the same displayName is refused with 409
    `uniqueness` (RFC 7644 §3.3, §3.12)."""
    group = scim.create("/Groups", new_group())
    r = scim.post("/Groups", new_group(displayName=group["displayName"]))
    if r.status_code == 201:
        scim.own(f"/Groups/{r.json()['id']}")
    expect_error(r, 409, "uniqueness")


def test_create_group_with_zero_members(scim, groups):
    """§6.2.2: "The Identity Service and the Application MUST support group creation via POST
    /Groups." and "The Application MUST allow groups to be created with zero members." Both
    `members: []` and no `members` at all give 201 and an empty group."""
    for group in (new_group(members=[]), new_group()):
        created = scim.create("/Groups", group)
        assert not member_ids(expect(scim.get(f"/Groups/{created['id']}"), 200)), f"group {created} has members"


def test_get_all_groups_without_members(scim, groups):
    """§6.2.3: "The Application MUST support retrieval of all groups via the SCIM operation GET
    /Groups." and "The Identity Service SHOULD include excludedAttributes=members in the HTTP URI
    when listing all groups", which the Application must honour (RFC 7644 §3.4.2.5): the list
    holds the group, without `members`."""
    user = scim.create("/Users", new_user())
    group = scim.create("/Groups", new_group(members=[{"value": user["id"]}]))
    found = None
    start = 1
    while found is None:
        params = {"excludedAttributes": "members", "startIndex": start, "count": 1000}
        body = expect_list(scim.get("/Groups", params=params))
        page = resources(body)
        found = next((g for g in page if g.get("id") == group["id"]), None)
        start += len(page)
        if not page or start > body["totalResults"]:
            break
    assert found is not None, "GET /Groups never listed the group"
    assert "members" not in found, f"excludedAttributes=members still returned members: {found}"


def test_get_group_by_id(scim, groups):
    """§6.2.4: "The Application MUST support retrieving a single group by ID via the SCIM
    operation GET /Groups/{id}." The group comes back with its member."""
    user = scim.create("/Users", new_user())
    group = scim.create("/Groups", new_group(members=[{"value": user["id"]}]))
    got = expect(scim.get(f"/Groups/{group['id']}"), 200)
    assert got.get("displayName") == group["displayName"], f"GET answered {got}"
    assert member_ids(got) == {user["id"]}, f"members are {member_ids(got)}"


def test_filter_groups_by_display_name(scim, groups):
    """§6.2.5: "The Application MUST support the following filter expressions for groups:
    displayName eq {displayName}"."""
    group = scim.create("/Groups", new_group())
    scim.create("/Groups", new_group())
    only_match(scim, "/Groups", f"displayName eq {quoted(group['displayName'])}", group["id"])


def test_filter_groups_by_external_id(scim, groups):
    """§6.2.5: "The Application MUST support the following filter expressions for groups: ...
    externalId eq {externalId}"."""
    group = scim.create("/Groups", new_group())
    scim.create("/Groups", new_group())
    only_match(scim, "/Groups", f"externalId eq {quoted(group['externalId'])}", group["id"])


def test_filter_groups_by_member(scim, groups):
    """§6.2.5: "The Application MUST support the following filter expressions for groups: ...
    members[value eq {memberId}]". Only the group holding the user matches."""
    user, other = scim.create("/Users", new_user()), scim.create("/Users", new_user())
    group = scim.create("/Groups", new_group(members=[{"value": user["id"]}]))
    scim.create("/Groups", new_group(members=[{"value": other["id"]}]))
    only_match(scim, "/Groups", f"members[value eq {quoted(user['id'])}]", group["id"])


def test_patch_renames_a_group(scim, groups):
    """§6.2.6: "The Identity Service and the Application MUST support updating a group's
    attribute values via the SCIM operation PATCH /Groups/{id}." A `replace` of displayName and
    externalId takes effect."""
    group = scim.create("/Groups", new_group())
    path = f"/Groups/{group['id']}"
    name, external = unique("IPSIE Renamed "), unique("gext-")
    after = patched(
        scim,
        scim.patch(path, {"op": "replace", "value": {"displayName": name, "externalId": external}}),
        path,
    )
    assert after.get("displayName") == name and after.get("externalId") == external, f"after PATCH: {after}"


def test_one_group_patch_carries_50_member_operations(scim, groups):
    """§6.2.6: "The Application MUST support the inclusion of at least 50 add or remove operations
    on the "members" attribute in a single PATCH request." One PATCH of 60 `add` operations, one
    member each, adds all 60; one PATCH of 55 `remove` operations (`members[value eq "…"]`, RFC
    7644 §3.5.2.2) removes those 55 and keeps the other 5."""
    users = [scim.create("/Users", new_user())["id"] for _ in range(60)]
    group = scim.create("/Groups", new_group(members=[]))
    path = f"/Groups/{group['id']}"
    adds = [{"op": "add", "path": "members", "value": [{"value": uid}]} for uid in users]
    after = patched(scim, scim.patch(path, *adds), path)
    assert member_ids(after) == set(users), f"after 60 adds the group has {len(member_ids(after))} members"
    removes = [{"op": "remove", "path": f"members[value eq {quoted(uid)}]"} for uid in users[:55]]
    after = patched(scim, scim.patch(path, *removes), path)
    assert member_ids(after) == set(users[55:]), f"after 55 removes the group has {len(member_ids(after))} members"


# -- §8 Security Considerations ------------------------------------------------------------------

LEAKS = re.compile(
    r"panicked|stack ?trace|traceback|backtrace|\.rs:\d+|\bat [\w.$]+\(|SQLSTATE|syntax error at or near|"
    r"diesel|sqlx|psql|sqlite_|pg_|exception",
    re.I,
)


def test_errors_use_the_scim_format_and_leak_no_internals(scim):
    """§8: "Error Handling: Error responses SHALL use the SCIM error format and SHALL NOT leak
    internal details." A missing resource, a broken filter, malformed JSON, an unknown PATCH op
    and a duplicate userName each answer with the RFC 7644 §3.12 Error schema, whose `detail` names
    no source file, stack frame, SQL error or storage engine."""
    user = scim.create("/Users", new_user())
    cases = [
        (scim.get("/Users/00000000-0000-0000-0000-000000000000"), 404),
        (scim.get("/Users", params={"filter": 'userName eq "x" and ('}), 400),
        (scim.post("/Users", raw="{\"schemas\": [", content_type="application/scim+json"), 400),
        (scim.patch(f"/Users/{user['id']}", {"op": "frobnicate", "path": "title", "value": "x"}), 400),
        (scim.post("/Users", new_user(userName=user["userName"])), 409),
        (scim.get("/Users", params={"filter": "userName eq \"'; DROP TABLE users; --\" or x gt"}), 400),
    ]
    for r, status in cases:
        body = expect_error(r, status)
        detail = str(body.get("detail", ""))
        assert not LEAKS.search(detail), f"{describe(r)}: detail leaks internals"


def jwt_claims(token: str) -> dict | None:
    """The claims of a JWS compact token (RFC 7515 §7.1), or None when the token is opaque."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError):
        return None
    return claims if isinstance(claims, dict) else None


def test_access_tokens_expire(scim):
    """§8: "Replay Resistance: Access tokens SHALL expire and nonces SHALL be validated to prevent
    replay." A token that is a JWT carries an `exp` claim (RFC 7519 §4.1.4) no more than a year
    ahead. An opaque token cannot be read by a client, so the test is skipped for one. Nonces
    belong to the token endpoint, which §4.1's tests cover."""
    claims = jwt_claims(scim.token)
    if claims is None:
        pytest.skip("the bearer token is opaque (not a JWT); its lifetime cannot be read (RFC 6750 §1.2)")
    exp = claims.get("exp")
    assert isinstance(exp, (int, float)), f"the bearer token has no exp claim: claims {sorted(claims)}"
    assert time.time() < exp <= time.time() + 366 * 86400, f"the bearer token's exp is {exp}"

