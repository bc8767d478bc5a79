"""RFC 7644 (SCIM protocol), RFC 7643 (schema) and RFC 9865 (cursor paging), example by example.

Sources: https://www.rfc-editor.org/rfc/rfc7644, https://www.rfc-editor.org/rfc/rfc7643,
https://www.rfc-editor.org/rfc/rfc9865. Optional features are checked only where
/ServiceProviderConfig says the server supports them; the skip reason says which flag was off.
"""

import copy
from urllib.parse import urlsplit

import pytest

from scim import (
    BULK_REQUEST,
    BULK_RESPONSE,
    ENTERPRISE,
    GROUP,
    RESOURCE_TYPE,
    SCHEMA,
    SCIM_JSON,
    SEARCH_REQUEST,
    SERVICE_PROVIDER_CONFIG,
    USER,
    describe,
    expect,
    expect_error,
    expect_list,
    get_attr,
    ids,
    is_empty,
    is_integer,
    member_ids,
    patch_body,
    patched,
    quoted,
    require,
    resources,
    supports,
    typed,
    unique,
)


def new_user(**extra) -> dict:
    uid = unique("")
    user = {
        "schemas": [USER],
        "userName": f"rfc.{uid}@example.com",
        "name": {"givenName": "Barbara", "familyName": f"Jensen{uid}"},
        "emails": [{"value": f"rfc.{uid}@work.example.com", "type": "work", "primary": True}],
    }
    user.update(extra)
    return user


def user_after(scim, user_id: str, *operations) -> dict:
    return patched(scim, scim.patch(f"/Users/{user_id}", *operations), f"/Users/{user_id}")


def is_scim_json(r) -> bool:
    return r.headers.get("Content-Type", "").split(";")[0].strip().lower() == SCIM_JSON


# -- A small population for queries (created once per module, deleted afterwards) ----------------

PEOPLE = {
    # key: (familyName, title, active, email types)
    "alice": ("Anders", "Engineer", True, ("work", "home")),
    "bob": ("Brown", "Engineer", False, ("work",)),
    "carol": ("Chen", "Manager", True, ("work", "home")),
    "dave": ("Diaz", None, True, ()),
    "erin": ("Evans", "Manager", False, ("work",)),
}


class Population:
    def __init__(self, client):
        self.prefix = unique("rfc") + "-"
        self.by_key: dict[str, dict] = {}
        for key, (family, title, active, kinds) in PEOPLE.items():
            body = {
                "schemas": [USER],
                "userName": f"{self.prefix}{key}@example.com",
                "externalId": f"{self.prefix}{key}-ext",
                "name": {"givenName": key.capitalize(), "familyName": family},
                "active": active,
                "emails": [{"value": f"{key}@{kind}.example.com", "type": kind} for kind in kinds],
            }
            if title:
                body["title"] = title
            self.by_key[key] = client.create("/Users", body)
        self.key_of = {user["id"]: key for key, user in self.by_key.items()}

    def scoped(self, expression: str) -> str:
        """Limit a filter to this population: `userName sw "<prefix>" and (<expression>)`."""
        return f"userName sw {quoted(self.prefix)} and ({expression})"

    def keys(self, body: dict) -> list[str]:
        return [self.key_of.get(i, f"<foreign {i}>") for i in ids(body)]


@pytest.fixture(scope="module")
def people(module_scim) -> Population:
    return Population(module_scim)


# -- Discovery (RFC 7644 §4, RFC 7643 §5–7) -----------------------------------------------------


def test_service_provider_config_describes_every_feature(scim):
    """RFC 7643 §5: /ServiceProviderConfig carries patch, bulk, filter, changePassword, sort and
    etag, each with a boolean `supported`, integer limits for bulk and filter, and
    authenticationSchemes."""
    r = scim.get("/ServiceProviderConfig")
    config = expect(r, 200)
    assert SERVICE_PROVIDER_CONFIG in config.get("schemas", [])
    for feature in ("patch", "bulk", "filter", "changePassword", "sort", "etag"):
        assert isinstance((config.get(feature) or {}).get("supported"), bool), f"{feature}.supported must be a boolean"
    if supports(config, "bulk"):
        assert is_integer(config["bulk"].get("maxOperations")) and is_integer(config["bulk"].get("maxPayloadSize"))
    if supports(config, "filter"):
        assert is_integer(config["filter"].get("maxResults")), "filter.maxResults must be an integer"
    schemes = config.get("authenticationSchemes")
    assert isinstance(schemes, list) and schemes, "authenticationSchemes must list at least one scheme"
    for scheme in schemes:
        assert scheme.get("type") and scheme.get("name") and scheme.get("description"), f"incomplete scheme {scheme}"


def test_resource_types_describe_users(scim, resource_types):
    """RFC 7643 §6 and RFC 7644 §4: /ResourceTypes is a ListResponse of resource types with a
    name, an endpoint and a schema; the User type serves /Users with the core User schema."""
    body = expect_list(scim.get("/ResourceTypes"))
    assert resources(body), "no resource types"
    for rt in resources(body):
        assert RESOURCE_TYPE in rt.get("schemas", []), f"{rt.get('name')}: schemas lacks {RESOURCE_TYPE}"
        assert rt.get("name") and rt.get("endpoint") and rt.get("schema"), f"incomplete resource type {rt}"
    users = [rt for rt in resources(body) if rt.get("schema") == USER]
    assert users and users[0]["endpoint"].rstrip("/") == "/Users"


def test_schemas_list_every_schema_the_resource_types_use(scim, resource_types):
    """RFC 7643 §7 and RFC 7644 §4: /Schemas lists every schema and schema extension named by
    /ResourceTypes; each attribute definition has a name, a type and multiValued."""
    body = expect_list(scim.get("/Schemas"))
    listed = {s.get("id"): s for s in resources(body)}
    wanted = {rt.get("schema") for rt in resource_types}
    wanted |= {ext.get("schema") for rt in resource_types for ext in rt.get("schemaExtensions") or []}
    assert wanted <= set(listed), f"/Schemas lacks {sorted(wanted - set(listed))}"
    types = {"string", "boolean", "decimal", "integer", "dateTime", "binary", "reference", "complex"}

    def check(attributes, where):
        for attr in attributes:
            assert (
                attr.get("name") and attr.get("type") in types and isinstance(attr.get("multiValued"), bool)
            ), f"{where}: bad attribute definition {attr}"
            check(attr.get("subAttributes") or [], f"{where}.{attr['name']}")

    for schema_id, schema in listed.items():
        assert SCHEMA in schema.get("schemas", [SCHEMA]), f"{schema_id}: schemas lacks {SCHEMA}"
        check(schema.get("attributes") or [], schema_id)


def test_each_schema_is_served_by_its_urn(scim):
    """RFC 7644 §4: "GET /Schemas/{schema URI}" returns that schema; an unknown URI answers 404."""
    for schema in resources(expect_list(scim.get("/Schemas"))):
        assert expect(scim.get(f"/Schemas/{schema['id']}"), 200).get("id") == schema["id"]
    expect_error(scim.get("/Schemas/urn:example:params:scim:schemas:NoSuchSchema"), 404)


def test_me_answers_501_or_a_resource(scim):
    """RFC 7644 §3.11: a provider that does not support /Me SHOULD answer 501 (with an error
    body); one that does answers like a GET of the authenticated subject's resource."""
    r = scim.get("/Me")
    if r.status_code == 501:
        expect_error(r, 501)
    else:
        body = expect(r, 200, 308)
        if r.status_code == 200:
            assert body.get("id") and body.get("schemas"), f"{describe(r)}: not a resource"


# -- Media type (RFC 7644 §3.1, §3.8, §8.1) ------------------------------------------------------


def test_responses_are_application_scim_json(scim, people):
    """RFC 7644 §3.1 and §8.1: responses are application/scim+json: a resource, a list, a created
    resource, an error and discovery (Entra requires it on all responses)."""
    alice = people.by_key["alice"]
    created = scim.post("/Users", new_user())
    if created.status_code == 201:
        scim.own(f"/Users/{created.json()['id']}")
    for r in (
        scim.get(f"/Users/{alice['id']}"),
        scim.get("/Users", params={"count": 1}),
        created,
        scim.get(f"/Users/{unique('missing-')}"),
        scim.get("/ServiceProviderConfig"),
    ):
        assert is_scim_json(r), f"{describe(r)}: Content-Type is {r.headers.get('Content-Type')!r}"


def test_application_json_requests_are_accepted(scim):
    """RFC 7644 §3.8 ("Servers MUST accept requests ... using JSON"): POST, PUT and PATCH sent as
    application/json work like application/scim+json (Okta's spec test sends application/json)."""
    user = scim.create("/Users", new_user(), content_type="application/json")
    path = f"/Users/{user['id']}"
    body = copy.deepcopy(expect(scim.get(path), 200))
    body["nickName"] = "Babs"
    assert expect(scim.put(path, body, content_type="application/json"), 200).get("nickName") == "Babs"
    r = scim.patch(path, {"op": "replace", "path": "nickName", "value": "B"}, content_type="application/json")
    assert patched(scim, r, path).get("nickName") == "B"


# -- Create (RFC 7644 §3.3) ----------------------------------------------------------------------


def test_create_answers_201_with_location_and_meta(scim, service_provider_config):
    """RFC 7644 §3.3 (and §3.1 example "Creating a User"): 201, the resource with an id, a Location
    header equal to meta.location, and meta.resourceType, created and lastModified (RFC 7643 §3.1);
    meta.version when ETags are supported (RFC 7644 §3.14)."""
    sent = new_user()
    r = scim.post("/Users", sent)
    user = expect(r, 201)
    scim.own(f"/Users/{user['id']}")
    meta = user.get("meta") or {}
    assert r.headers.get("Location"), f"{describe(r)}: no Location header"
    assert r.headers["Location"] == meta.get("location"), "Location must equal meta.location"
    assert urlsplit(meta["location"]).path.endswith(f"/Users/{user['id']}")
    assert meta.get("resourceType") == "User"
    assert meta.get("created") and meta.get("lastModified")
    if supports(service_provider_config, "etag"):
        assert meta.get("version"), "etag is supported but meta.version is missing"
    assert user["userName"] == sent["userName"]
    assert USER in user.get("schemas", [])


def test_attributes_shape_the_answer_to_a_create(scim):
    """RFC 7644 §3.9: POST, PUT and PATCH take `attributes`/`excludedAttributes` to shape the
    resource they return: `POST /Users?attributes=userName` answers 201 with id and userName only."""
    r = scim.post("/Users", new_user(title="Shaped"), params={"attributes": "userName"})
    user = expect(r, 201)
    scim.own(f"/Users/{user['id']}")
    assert user.get("id") and user.get("userName")
    assert "title" not in user and "emails" not in user, f"{describe(r)}: attributes=userName ignored"


def test_create_without_user_name_answers_400_invalid_value(scim):
    """RFC 7643 §4.1.1 (userName is REQUIRED) and RFC 7644 §3.12 ("invalidValue: A required value
    was missing"): 400 with scimType invalidValue."""
    body = new_user()
    del body["userName"]
    r = scim.post("/Users", body)
    if r.status_code == 201:
        scim.own(f"/Users/{r.json()['id']}")
    expect_error(r, 400, "invalidValue")


def test_malformed_json_answers_400_invalid_syntax(scim):
    """RFC 7644 §3.12: "invalidSyntax: The request body message structure was invalid"."""
    expect_error(
        scim.post("/Users", raw='{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": '),
        400,
        "invalidSyntax",
    )


def test_duplicate_user_name_answers_409_uniqueness(scim):
    """RFC 7644 §3.3: a create that conflicts with an existing userName "MUST return HTTP status
    code 409 (Conflict) with a scimType error code of uniqueness"."""
    sent = new_user()
    scim.create("/Users", sent)
    r = scim.post("/Users", new_user(userName=sent["userName"]))
    if r.status_code == 201:
        scim.own(f"/Users/{r.json()['id']}")
    expect_error(r, 409, "uniqueness")


def test_user_name_uniqueness_ignores_case(scim):
    """RFC 7643 §4.1.1: userName is case insensitive (caseExact false) and unique ("server"), so a
    userName differing only in case is a duplicate: 409 uniqueness."""
    sent = new_user()
    scim.create("/Users", sent)
    r = scim.post("/Users", new_user(userName=sent["userName"].upper()))
    if r.status_code == 201:
        scim.own(f"/Users/{r.json()['id']}")
    expect_error(r, 409, "uniqueness")


def test_attribute_names_in_bodies_are_case_insensitive(scim):
    """RFC 7643 §2.1: "Attribute names are case insensitive": a create spelling them `UserName`
    and `Name.GivenName` stores them as userName and name.givenName."""
    sent = new_user()
    body = {"schemas": [USER], "UserName": sent["userName"], "Name": {"GivenName": "Casey", "FamilyName": "Case"}}
    user = scim.create("/Users", body)
    got = expect(scim.get(f"/Users/{user['id']}"), 200)
    assert str(get_attr(got, "userName")).lower() == sent["userName"].lower()
    assert get_attr(got, "name.givenName") == "Casey"


def test_password_is_never_returned(scim):
    """RFC 7643 §4.1.1: password has returned "never"."""
    user = scim.create("/Users", new_user(password="t1meMa$heen"))
    for got in (
        user,
        expect(scim.get(f"/Users/{user['id']}"), 200),
        expect(scim.get(f"/Users/{user['id']}", params={"attributes": "password,userName"}), 200),
    ):
        assert get_attr(got, "password") is None, "password was returned"


# -- Retrieve (RFC 7644 §3.4.1, §3.4.2.5, §3.9) ---------------------------------------------------


def test_get_by_id_returns_the_resource(scim):
    """RFC 7644 §3.4.1: GET /Users/{id} answers 200 with the resource."""
    sent = new_user()
    user = scim.create("/Users", sent)
    got = expect(scim.get(f"/Users/{user['id']}"), 200)
    assert got["id"] == user["id"] and got["userName"] == sent["userName"]
    assert get_attr(got, "name.familyName") == sent["name"]["familyName"]


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
def test_unknown_id_answers_404_with_an_error_body(scim, method):
    """RFC 7644 §3.12: 404 "Specified resource (e.g., User) or endpoint does not exist", in the
    Error schema with status "404"."""
    path = f"/Users/{unique('missing-')}"
    body = {"PUT": new_user(), "PATCH": patch_body({"op": "replace", "path": "nickName", "value": "x"})}.get(method)
    expect_error(scim.request(method, path, body), 404)


def test_unknown_endpoint_answers_404(scim):
    """RFC 7644 §3.12: 404 for an endpoint that does not exist."""
    expect_error(scim.get("/NoSuchResourceType"), 404)


def test_missing_token_answers_401(scim):
    """RFC 7644 §2 and §3.12: "401 Unauthorized: The authorization header is invalid or missing",
    with an Error body."""
    r = scim.session.get(scim.url("/Users"), headers={"Accept": SCIM_JSON}, timeout=30)
    expect_error(r, 401)


def test_attributes_returns_only_those_and_always_returned_ones(scim, people):
    """RFC 7644 §3.4.2.5 and §3.9: `attributes=userName` returns userName plus attributes returned
    "always" (id), and nothing else of the user."""
    got = expect(scim.get(f"/Users/{people.by_key['alice']['id']}", params={"attributes": "userName"}), 200)
    assert got.get("id") and got.get("userName")
    for absent in ("name", "emails", "title", "externalId", "active"):
        assert absent not in got, f"attributes=userName returned {absent}"


def test_attributes_selects_a_sub_attribute(scim, people):
    """RFC 7644 §3.4.2.5 and §3.10: `attributes=name.givenName` returns name with only givenName."""
    got = expect(scim.get(f"/Users/{people.by_key['alice']['id']}", params={"attributes": "name.givenName"}), 200)
    assert get_attr(got, "name.givenName") == "Alice"
    assert get_attr(got, "name.familyName") is None
    assert "emails" not in got


def test_attributes_accepts_fully_qualified_names(scim, people):
    """RFC 7644 §3.10: attribute names may be qualified by their schema URN
    (`urn:ietf:params:scim:schemas:core:2.0:User:userName`)."""
    got = expect(scim.get(f"/Users/{people.by_key['alice']['id']}", params={"attributes": f"{USER}:userName"}), 200)
    assert got.get("userName") == people.by_key["alice"]["userName"]
    assert "emails" not in got


def test_excluded_attributes_leaves_them_out(scim, people):
    """RFC 7644 §3.4.2.5: `excludedAttributes=emails,title` returns the default set minus those."""
    got = expect(scim.get(f"/Users/{people.by_key['alice']['id']}", params={"excludedAttributes": "emails,title"}), 200)
    assert "emails" not in got and "title" not in got
    assert got.get("userName") and get_attr(got, "name.familyName") == "Anders"


def test_excluded_attributes_cannot_drop_always_returned_ones(scim, people):
    """RFC 7644 §3.4.2.5: excludedAttributes "SHALL have no effect on attributes whose schema
    returned setting is always" (id)."""
    got = expect(scim.get(f"/Users/{people.by_key['alice']['id']}", params={"excludedAttributes": "id,userName"}), 200)
    assert got.get("id") == people.by_key["alice"]["id"]


def test_attributes_apply_to_lists(scim, people):
    """RFC 7644 §3.4.2.5: attributes apply to list responses too."""
    body = expect_list(scim.get("/Users", params={"filter": people.scoped("title pr"), "attributes": "userName"}))
    assert resources(body)
    for user in resources(body):
        assert user.get("id") and user.get("userName") and "title" not in user and "emails" not in user


# -- Filter (RFC 7644 §3.4.2.2) --------------------------------------------------------------------

FILTERS = [
    # expression (inside the population's scope), expected keys, what it checks
    ('userName eq "{p}alice@example.com"', {"alice"}, "eq"),
    ('userName eq "{P}ALICE@EXAMPLE.COM"', {"alice"}, "eq ignores case on caseExact=false userName"),
    ('USERNAME Eq "{p}alice@example.com"', {"alice"}, "attribute names and operators ignore case"),
    ('externalId eq "{p}alice-ext"', {"alice"}, "eq on externalId"),
    ('externalId eq "{P}ALICE-EXT"', set(), "externalId is caseExact"),
    ('name.familyName ne "Anders"', {"bob", "carol", "dave", "erin"}, "ne"),
    ('name.familyName co "N"', {"alice", "bob", "carol", "erin"}, "co"),
    ('name.familyName sw "b"', {"bob"}, "sw"),
    ('name.familyName ew "S"', {"alice", "erin"}, "ew"),
    ("title pr", {"alice", "bob", "carol", "erin"}, "pr"),
    ('name.familyName gt "C"', {"carol", "dave", "erin"}, "gt on a string"),
    ('name.familyName ge "Chen"', {"carol", "dave", "erin"}, "ge"),
    ('name.familyName lt "C"', {"alice", "bob"}, "lt"),
    ('name.familyName le "Brown"', {"alice", "bob"}, "le"),
    ("active eq false", {"bob", "erin"}, "eq on a boolean"),
    ('meta.lastModified gt "2000-01-01T00:00:00Z"', set(PEOPLE), "gt on a dateTime"),
    ('title eq "Manager" and active eq true', {"carol"}, "and"),
    ('name.familyName eq "Chen" or name.familyName eq "Diaz"', {"carol", "dave"}, "or"),
    (
        'title eq "Engineer" or title eq "Manager" and active eq false',
        {"alice", "bob", "erin"},
        "and binds tighter than or",
    ),
    ('(title eq "Engineer" or title eq "Manager") and active eq false', {"bob", "erin"}, "grouping"),
    ('not (title eq "Engineer")', {"carol", "dave", "erin"}, "not"),
    ("not (title pr)", {"dave"}, "not with pr"),
    ('emails[type eq "home"]', {"alice", "carol"}, "value path"),
    ('emails[type eq "work" and value co "carol"]', {"carol"}, "value path with and"),
    ('emails.type eq "home"', {"alice", "carol"}, "sub-attribute of a multi-valued attribute"),
    ('emails.value ew "@home.example.com"', {"alice", "carol"}, "ew on a multi-valued sub-attribute"),
]


@pytest.mark.parametrize("expression,expected", [pytest.param(f, e, id=why) for f, e, why in FILTERS])
def test_filter(scim, people, expression, expected):
    """RFC 7644 §3.4.2.2: the filter operators, logical operators, precedence ("and" before "or"),
    grouping, `not`, value paths and sub-attributes, with string comparisons following caseExact
    (RFC 7643 §2.2) and attribute names and operators case-insensitive."""
    expression = expression.replace("{p}", people.prefix).replace("{P}", people.prefix.upper())
    r = scim.get("/Users", params={"filter": people.scoped(expression)})
    body = expect_list(r)
    assert set(people.keys(body)) == expected, f"{describe(r)}: found {sorted(people.keys(body))}"
    assert body["totalResults"] == len(expected)


def test_filter_by_id(scim, people):
    """RFC 7644 §3.4.2.2: `id eq` finds that resource."""
    body = expect_list(scim.get("/Users", params={"filter": f"id eq {quoted(people.by_key['carol']['id'])}"}))
    assert people.keys(body) == ["carol"]


@pytest.mark.parametrize(
    "expression",
    [
        "userName eq",
        'userName zz "x"',
        '(userName eq "x"',
        'userName eq "x" and',
        "active gt true",
    ],
    ids=["missing value", "unknown operator", "unbalanced parenthesis", "dangling and", "gt on a boolean"],
)
def test_invalid_filter_answers_400_invalid_filter(scim, expression):
    """RFC 7644 §3.4.2.2 and §3.12: "invalidFilter: The specified filter syntax was invalid ... or
    the specified attribute and filter comparison combination is not supported"; gt, ge, lt and le
    on a Boolean attribute "SHALL cause a failed response (HTTP status code 400 Bad Request)" with
    scimType invalidFilter."""
    expect_error(scim.get("/Users", params={"filter": expression}), 400, "invalidFilter")


# -- Sort (RFC 7644 §3.4.2.3) ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "sort_by,order,expected",
    [
        ("name.familyName", None, ["alice", "bob", "carol", "dave", "erin"]),
        ("name.familyName", "descending", ["erin", "dave", "carol", "bob", "alice"]),
        ("userName", "ascending", ["alice", "bob", "carol", "dave", "erin"]),
    ],
    ids=["familyName default ascending", "familyName descending", "userName ascending"],
)
def test_sort(scim, people, service_provider_config, sort_by, order, expected):
    """RFC 7644 §3.4.2.3: sortBy orders the results; sortOrder defaults to ascending."""
    require(service_provider_config, "sort", "sortBy/sortOrder (RFC 7644 §3.4.2.3)")
    params = {"filter": people.scoped("name.familyName pr"), "sortBy": sort_by}
    if order:
        params["sortOrder"] = order
    r = scim.get("/Users", params=params)
    assert people.keys(expect_list(r)) == expected, describe(r)


# -- Index pagination (RFC 7644 §3.4.2.4) ---------------------------------------------------------


def test_pages_have_count_items_and_report_the_total(scim, people):
    """RFC 7644 §3.4.2.4: startIndex=1&count=2 returns at most two of the five users, with
    totalResults 5, startIndex 1 and itemsPerPage the number returned."""
    r = scim.get("/Users", params={"filter": people.scoped("userName pr"), "startIndex": 1, "count": 2})
    body = expect_list(r)
    assert body["totalResults"] == 5 and body.get("startIndex") == 1, describe(r)
    assert 1 <= len(resources(body)) <= 2 and body.get("itemsPerPage") == len(resources(body)), describe(r)


def test_pages_together_hold_every_result_once(scim, people):
    """RFC 7644 §3.4.2.4 (and Okta: "the same ordering of results ... regardless of count and
    startIndex"): pages of two, walked by startIndex, hold each of the five users once."""
    seen, start = [], 1
    while start <= 5 and len(seen) < 10:
        r = scim.get("/Users", params={"filter": people.scoped("userName pr"), "startIndex": start, "count": 2})
        body = expect_list(r)
        assert body.get("startIndex") == start and 1 <= len(resources(body)) <= 2, describe(r)
        seen += people.keys(body)
        start += len(resources(body))
    assert sorted(seen) == sorted(PEOPLE), f"pages held {seen}"


def test_count_zero_returns_only_the_total(scim, people):
    """RFC 7644 §3.4.2.4: count=0 means "no resource results are to be returned except for
    totalResults"."""
    body = expect_list(scim.get("/Users", params={"filter": people.scoped("userName pr"), "count": 0}))
    assert body["totalResults"] == 5 and resources(body) == []


def test_negative_count_is_read_as_zero(scim, people):
    """RFC 7644 §3.4.2.4: "A negative value SHALL be interpreted as 0"."""
    body = expect_list(scim.get("/Users", params={"filter": people.scoped("userName pr"), "count": -1}))
    assert body["totalResults"] == 5 and resources(body) == []


def test_start_index_below_one_is_read_as_one(scim, people):
    """RFC 7644 §3.4.2.4: "A value less than 1 SHALL be interpreted as 1"."""
    body = expect_list(
        scim.get("/Users", params={"filter": people.scoped("userName pr"), "startIndex": 0, "count": 10})
    )
    assert body.get("startIndex") == 1 and len(resources(body)) == 5


def test_start_index_past_the_end_returns_no_resources(scim, people):
    """RFC 7644 §3.4.2.4: a startIndex beyond the results gives an empty page with the total."""
    body = expect_list(
        scim.get("/Users", params={"filter": people.scoped("userName pr"), "startIndex": 50, "count": 10})
    )
    assert body["totalResults"] == 5 and resources(body) == []


# -- POST /.search (RFC 7644 §3.4.3) --------------------------------------------------------------


def search(scim, path: str, request: dict, **kw):
    r = scim.post(path, {"schemas": [SEARCH_REQUEST], **request}, **kw)
    if r.status_code in (404, 405, 501):
        pytest.skip(f"POST {path} answered {r.status_code}; /.search is optional (RFC 7644 §3.4.3: MAY)")
    return r


def test_search_on_the_users_endpoint(scim, people):
    """RFC 7644 §3.4.3: POST /Users/.search with a SearchRequest (filter, attributes, startIndex,
    count) answers 200 with a ListResponse."""
    r = search(
        scim,
        "/Users/.search",
        {
            "filter": people.scoped('title eq "Manager"'),
            "attributes": ["userName"],
            "startIndex": 1,
            "count": 10,
        },
    )
    body = expect_list(r)
    assert sorted(people.keys(body)) == ["carol", "erin"], describe(r)
    for user in resources(body):
        assert user.get("userName") and "emails" not in user


def test_search_on_the_root(scim, people):
    """RFC 7644 §3.4.3: POST /.search at the root searches every resource type."""
    alice = people.by_key["alice"]
    body = expect_list(search(scim, "/.search", {"filter": f"userName eq {quoted(alice['userName'])}"}))
    assert alice["id"] in ids(body)


def test_search_accepts_application_json(scim, people):
    """RFC 7644 §3.4.3 and §3.8: the SearchRequest may be sent as application/json."""
    body = expect_list(
        search(scim, "/Users/.search", {"filter": people.scoped("active eq false")}, content_type="application/json")
    )
    assert sorted(people.keys(body)) == ["bob", "erin"]


def test_search_with_an_invalid_filter_answers_400_invalid_filter(scim):
    """RFC 7644 §3.12: invalidFilter applies to "GET (Section 3.4.2), POST (Search - Section 3.4.3)"."""
    expect_error(search(scim, "/Users/.search", {"filter": "userName eq"}), 400, "invalidFilter")


# -- Replace with PUT (RFC 7644 §3.5.1) ------------------------------------------------------------


def test_put_replaces_the_resource(scim):
    """RFC 7644 §3.5.1: PUT answers 200 with the entire resource; values given replace the old
    ones; the id stays."""
    user = scim.create("/Users", new_user(nickName="Babs"))
    path = f"/Users/{user['id']}"
    body = new_user(userName=user["userName"])
    body["name"]["givenName"] = "Barb"
    body["title"] = "Tour Guide"
    got = expect(scim.put(path, body), 200)
    assert got["id"] == user["id"] and USER in got.get("schemas", [])
    assert get_attr(got, "name.givenName") == "Barb" and got.get("title") == "Tour Guide"
    assert got["meta"]["lastModified"] >= user["meta"]["lastModified"], "meta.lastModified went back"
    assert expect(scim.get(path), 200).get("title") == "Tour Guide"


def test_put_ignores_read_only_attributes(scim):
    """RFC 7644 §3.5.1: "readOnly: Any values provided SHALL be ignored" (meta.created, id)."""
    user = scim.create("/Users", new_user())
    path = f"/Users/{user['id']}"
    body = copy.deepcopy(expect(scim.get(path), 200))
    body["meta"] = {"created": "2000-01-01T00:00:00Z", "resourceType": "User"}
    body["nickName"] = "Ro"
    got = expect(scim.put(path, body), 200)
    assert got["id"] == user["id"] and got.get("nickName") == "Ro"
    assert got["meta"]["created"] == user["meta"]["created"], "PUT changed meta.created"


def test_put_to_an_existing_user_name_answers_409_uniqueness(scim):
    """RFC 7644 §3.12: uniqueness applies to PUT as well."""
    taken = scim.create("/Users", new_user())
    user = scim.create("/Users", new_user())
    expect_error(scim.put(f"/Users/{user['id']}", new_user(userName=taken["userName"])), 409, "uniqueness")


def test_put_without_a_required_attribute_answers_400_invalid_value(scim):
    """RFC 7644 §3.5.1: "If an attribute is required, clients MUST specify the attribute in the PUT
    request"; a PUT without userName answers 400 invalidValue (§3.12)."""
    user = scim.create("/Users", new_user())
    body = new_user()
    del body["userName"]
    expect_error(scim.put(f"/Users/{user['id']}", body), 400, "invalidValue")


# -- Modify with PATCH (RFC 7644 §3.5.2) ----------------------------------------------------------


def test_patch_add_without_path_merges_attributes(scim):
    """RFC 7644 §3.5.2.1 example ("add ... using no path"): the value object's emails are appended
    to the multi-valued emails, and nickName is set."""
    user = scim.create("/Users", new_user())
    after = user_after(
        scim,
        user["id"],
        {"op": "add", "value": {"emails": [{"value": "babs@jensen.example.org", "type": "home"}], "nickName": "Babs"}},
    )
    assert after.get("nickName") == "Babs"
    values = {e.get("value") for e in after.get("emails") or []}
    assert values == {user["emails"][0]["value"], "babs@jensen.example.org"}


def test_patch_add_with_path_appends_to_a_multi_valued_attribute(scim):
    """RFC 7644 §3.5.2.1: "If the target location specifies a multi-valued attribute, a new value
    is added to the attribute"."""
    user = scim.create("/Users", new_user())
    after = user_after(
        scim, user["id"], {"op": "add", "path": "emails", "value": [{"value": "b@home.example.org", "type": "home"}]}
    )
    assert len(after.get("emails") or []) == 2
    assert typed(after.get("emails"), "home")[0]["value"] == "b@home.example.org"


def test_patch_add_on_a_single_valued_attribute_replaces_it(scim):
    """RFC 7644 §3.5.2.1: "If the target location specifies a single-valued attribute, the existing
    value is replaced"."""
    user = scim.create("/Users", new_user(title="Intern"))
    assert user_after(scim, user["id"], {"op": "add", "path": "title", "value": "Engineer"}).get("title") == "Engineer"


def test_patch_replace_without_path_replaces_the_listed_attributes(scim):
    """RFC 7644 §3.5.2.3 example (no path): emails in the value replace all emails; nickName is
    set; other attributes stay."""
    user = scim.create("/Users", new_user())
    after = user_after(
        scim,
        user["id"],
        {
            "op": "replace",
            "value": {
                "emails": [{"value": "bjensen@example.com", "type": "work", "primary": True}],
                "nickName": "Babs",
            },
        },
    )
    assert [e.get("value") for e in after.get("emails") or []] == ["bjensen@example.com"]
    assert after.get("nickName") == "Babs" and after["userName"] == user["userName"]


def test_patch_replace_of_a_sub_attribute(scim):
    """RFC 7644 §3.5.2.3 with an `attr.sub` path (§3.10): only name.familyName changes."""
    user = scim.create("/Users", new_user())
    after = user_after(scim, user["id"], {"op": "replace", "path": "name.familyName", "value": "Jensen-Smith"})
    assert get_attr(after, "name.familyName") == "Jensen-Smith" and get_attr(after, "name.givenName") == "Barbara"


def test_patch_paths_ignore_case(scim):
    """RFC 7643 §2.1: attribute names in a PATCH path are case insensitive (`NAME.GIVENNAME`)."""
    user = scim.create("/Users", new_user())
    assert (
        get_attr(
            user_after(scim, user["id"], {"op": "replace", "path": "NAME.GIVENNAME", "value": "Babs"}), "name.givenName"
        )
        == "Babs"
    )


def test_patch_replace_with_a_value_filter_changes_only_the_matching_value(scim):
    """RFC 7644 §3.5.2.3 example (`addresses[type eq "work"].streetAddress`): a replace of
    `emails[type eq "home"].value` changes the home email and leaves the work email."""
    user = scim.create("/Users", new_user())
    user_after(
        scim, user["id"], {"op": "add", "path": "emails", "value": [{"value": "old@home.example.org", "type": "home"}]}
    )
    after = user_after(
        scim, user["id"], {"op": "replace", "path": 'emails[type eq "home"].value', "value": "new@home.example.org"}
    )
    assert typed(after.get("emails"), "home")[0]["value"] == "new@home.example.org"
    assert typed(after.get("emails"), "work")[0]["value"] == user["emails"][0]["value"]


def test_patch_replace_of_a_complex_value_selected_by_filter(scim):
    """RFC 7644 §3.5.2.3 example: replace `addresses[type eq "work"]` with a new address object."""
    user = scim.create(
        "/Users",
        new_user(
            addresses=[
                {"type": "work", "streetAddress": "911 Universal City Plaza", "locality": "Hollywood", "country": "US"},
                {"type": "home", "streetAddress": "456 Hollywood Blvd", "locality": "Hollywood", "country": "US"},
            ]
        ),
    )
    after = user_after(
        scim,
        user["id"],
        {
            "op": "replace",
            "path": 'addresses[type eq "work"]',
            "value": {"type": "work", "streetAddress": "1010 Broadway Ave", "locality": "Hollywood", "country": "US"},
        },
    )
    assert typed(after.get("addresses"), "work")[0]["streetAddress"] == "1010 Broadway Ave"
    assert typed(after.get("addresses"), "home")[0]["streetAddress"] == "456 Hollywood Blvd"


def test_patch_remove_of_a_single_valued_attribute(scim):
    """RFC 7644 §3.5.2.2: remove with a path removes that attribute."""
    user = scim.create("/Users", new_user(nickName="Babs"))
    assert is_empty(user_after(scim, user["id"], {"op": "remove", "path": "nickName"}).get("nickName"))


def test_patch_remove_of_active_unassigns_it_or_is_refused(scim):
    """RFC 7644 §3.5.2.2 (remove "removes the value") and §3.12: removing `active` from an
    inactive user either succeeds and leaves active unassigned, or is refused with a SCIM error;
    a success that leaves any value other than "unassigned" misreports what happened, and a true
    one reactivates the account."""
    user = scim.create("/Users", new_user(active=False))
    r = scim.patch(f"/Users/{user['id']}", {"op": "remove", "path": "active"})
    if 400 <= r.status_code < 500:
        body = expect(r, r.status_code)
        assert body and body.get("status") == str(r.status_code), f"{describe(r)}: refused without a SCIM error body"
        assert expect(scim.get(f"/Users/{user['id']}"), 200).get("active") is False
        return
    after = patched(scim, r, f"/Users/{user['id']}")
    assert (
        after.get("active") is None
    ), f"remove of active answered {r.status_code} but active is now {after.get('active')!r}"


def test_patch_remove_with_a_value_filter_removes_only_matches(scim):
    """RFC 7644 §3.5.2.2 example (`emails[type eq "work" and value ew "example.com"]`): only the
    matching values are removed."""
    user = scim.create("/Users", new_user())
    user_after(
        scim, user["id"], {"op": "add", "path": "emails", "value": [{"value": "b@home.example.org", "type": "home"}]}
    )
    after = user_after(scim, user["id"], {"op": "remove", "path": 'emails[type eq "work" and value ew "example.com"]'})
    assert [e.get("type") for e in after.get("emails") or []] == ["home"]


def test_patch_remove_without_path_answers_400_no_target(scim):
    """RFC 7644 §3.5.2.2: "If path is unspecified, the operation fails with HTTP status code 400
    and a scimType error code of noTarget"."""
    user = scim.create("/Users", new_user())
    expect_error(scim.patch(f"/Users/{user['id']}", {"op": "remove"}), 400, "noTarget")


def test_patch_is_atomic(scim):
    """RFC 7644 §3.5.2: "A PATCH request, regardless of the number of operations, SHALL be treated
    as atomic": a valid replace followed by a failing remove changes nothing."""
    user = scim.create("/Users", new_user(nickName="Before"))
    expect_error(
        scim.patch(f"/Users/{user['id']}", {"op": "replace", "path": "nickName", "value": "After"}, {"op": "remove"}),
        400,
    )
    assert expect(scim.get(f"/Users/{user['id']}"), 200).get("nickName") == "Before"


def test_patch_of_a_read_only_attribute_answers_400_mutability(scim):
    """RFC 7644 §3.5.2 ("a client MUST NOT modify an attribute that has mutability readOnly
    (e.g., id)") and §3.12: "mutability: The attempted modification is not compatible with the
    target attribute's mutability"."""
    user = scim.create("/Users", new_user())
    expect_error(
        scim.patch(f"/Users/{user['id']}", {"op": "replace", "path": "id", "value": "another-id"}), 400, "mutability"
    )
    assert expect(scim.get(f"/Users/{user['id']}"), 200)["id"] == user["id"]


def test_patch_with_a_malformed_path_answers_400_invalid_path(scim):
    """RFC 7644 §3.12: "invalidPath: The path attribute was invalid or malformed"."""
    user = scim.create("/Users", new_user())
    expect_error(
        scim.patch(f"/Users/{user['id']}", {"op": "replace", "path": 'emails[type eq "work"', "value": "x"}),
        400,
        "invalidPath",
    )


def test_patch_with_a_value_of_the_wrong_type_answers_400_invalid_value(scim):
    """RFC 7643 §2.3.2 (active is a boolean) and RFC 7644 §3.12: "invalidValue: ... the value
    specified was not compatible with the operation or attribute type"."""
    user = scim.create("/Users", new_user())
    expect_error(
        scim.patch(f"/Users/{user['id']}", {"op": "replace", "path": "active", "value": "maybe"}), 400, "invalidValue"
    )


def test_patch_to_an_existing_user_name_answers_409_uniqueness(scim):
    """RFC 7644 §3.12: uniqueness applies to PATCH as well."""
    taken = scim.create("/Users", new_user())
    user = scim.create("/Users", new_user())
    expect_error(
        scim.patch(f"/Users/{user['id']}", {"op": "replace", "path": "userName", "value": taken["userName"]}),
        409,
        "uniqueness",
    )


def test_patch_on_an_extension_attribute(scim, enterprise):
    """RFC 7644 §3.10 and §3.5.2: a path fully qualified by the enterprise extension URN sets and
    removes that attribute (RFC 7643 §4.3)."""
    user = scim.create("/Users", new_user())
    after = user_after(scim, user["id"], {"op": "add", "path": f"{ENTERPRISE}:department", "value": "Tour Operations"})
    assert get_attr(after, f"{ENTERPRISE}:department") == "Tour Operations"
    assert ENTERPRISE in after.get("schemas", []), "schemas must list the extension once it has values"
    after = user_after(scim, user["id"], {"op": "remove", "path": f"{ENTERPRISE}:department"})
    assert is_empty(get_attr(after, f"{ENTERPRISE}:department"))


# -- Groups (RFC 7644 §3.5.2 examples on members) -------------------------------------------------


def group_with(scim, *users) -> dict:
    return scim.create(
        "/Groups",
        {"schemas": [GROUP], "displayName": unique("RFC Group "), "members": [{"value": u["id"]} for u in users]},
    )


def test_group_create_with_members_and_read_back(scim, groups):
    """RFC 7643 §4.2 and RFC 7644 §3.3: a group created with members answers 201 and lists them."""
    a, b = scim.create("/Users", new_user()), scim.create("/Users", new_user())
    group = group_with(scim, a, b)
    assert member_ids(expect(scim.get(f"/Groups/{group['id']}"), 200)) == {a["id"], b["id"]}


def test_group_member_add_with_path(scim, groups):
    """RFC 7644 §3.5.2.1 example: add a member with path "members"."""
    a, b = scim.create("/Users", new_user()), scim.create("/Users", new_user())
    group = group_with(scim, a)
    after = patched(
        scim,
        scim.patch(
            f"/Groups/{group['id']}",
            {"op": "add", "path": "members", "value": [{"display": "Babs", "$ref": None, "value": b["id"]}]},
        ),
        f"/Groups/{group['id']}",
    )
    assert member_ids(after) == {a["id"], b["id"]}


def test_group_remove_all_members(scim, groups):
    """RFC 7644 §3.5.2.2 example: `{"op":"remove","path":"members"}` removes all members."""
    a, b = scim.create("/Users", new_user()), scim.create("/Users", new_user())
    group = group_with(scim, a, b)
    after = patched(
        scim, scim.patch(f"/Groups/{group['id']}", {"op": "remove", "path": "members"}), f"/Groups/{group['id']}"
    )
    assert member_ids(after) == set()


def test_group_replace_members_by_remove_then_add(scim, groups):
    """RFC 7644 §3.5.2.2 example: remove all members, then add new ones, in one PATCH."""
    a, b, c = (scim.create("/Users", new_user()) for _ in range(3))
    group = group_with(scim, a, b)
    after = patched(
        scim,
        scim.patch(
            f"/Groups/{group['id']}",
            {"op": "remove", "path": "members"},
            {"op": "add", "path": "members", "value": [{"value": c["id"]}]},
        ),
        f"/Groups/{group['id']}",
    )
    assert member_ids(after) == {c["id"]}


def test_group_filter_on_members(scim, groups):
    """RFC 7644 §3.4.2.2: a filter on a multi-valued complex attribute (`members[value eq …]`)
    finds the groups holding that member."""
    a, b = scim.create("/Users", new_user()), scim.create("/Users", new_user())
    with_a, _ = group_with(scim, a), group_with(scim, b)
    body = expect_list(scim.get("/Groups", params={"filter": f"members[value eq {quoted(a['id'])}]"}))
    assert ids(body) == [with_a["id"]]


def test_user_groups_attribute_follows_membership(scim, groups):
    """RFC 7643 §4.1.2: a user's `groups` (readOnly) lists the groups it belongs to, and
    "group membership changes MUST be applied via the Group Resource": a PATCH of the user's
    groups answers 400 mutability (RFC 7644 §3.12). Skipped when the User schema has no groups."""
    user_schema = expect(scim.get(f"/Schemas/{USER}"), 200)
    if not any(a.get("name", "").lower() == "groups" for a in user_schema.get("attributes") or []):
        pytest.skip("the User schema does not define groups")
    user = scim.create("/Users", new_user())
    group = group_with(scim, user)
    got = expect(scim.get(f"/Users/{user['id']}"), 200)
    assert [g.get("value") for g in got.get("groups") or []] == [group["id"]]
    r = scim.patch(f"/Users/{user['id']}", {"op": "add", "path": "groups", "value": [{"value": group["id"]}]})
    expect_error(r, 400, "mutability")


# -- Delete (RFC 7644 §3.6) ------------------------------------------------------------------------


def test_delete_answers_204_and_the_resource_is_gone(scim):
    """RFC 7644 §3.6: DELETE answers 204; afterwards GET, PATCH and another DELETE of that id
    answer 404 and the resource is not returned by queries."""
    user = scim.create("/Users", new_user())
    path = f"/Users/{user['id']}"
    expect(scim.delete(path), 204)
    expect_error(scim.get(path), 404)
    expect_error(scim.patch(path, {"op": "replace", "path": "nickName", "value": "x"}), 404)
    expect_error(scim.delete(path), 404)
    assert (
        resources(expect_list(scim.get("/Users", params={"filter": f"userName eq {quoted(user['userName'])}"}))) == []
    )


# -- ETags (RFC 7644 §3.14) ------------------------------------------------------------------------


@pytest.fixture
def versioned(scim, service_provider_config):
    require(service_provider_config, "etag", "ETags (RFC 7644 §3.14)")
    user = scim.create("/Users", new_user(nickName="Versioned"))
    r = scim.get(f"/Users/{user['id']}")
    expect(r, 200)
    return f"/Users/{user['id']}", r


def test_etag_header_matches_meta_version(versioned):
    """RFC 7644 §3.14: the ETag header of a GET carries the resource's meta.version."""
    _, r = versioned
    assert r.headers.get("ETag"), f"{describe(r)}: no ETag header"
    assert r.headers["ETag"] == r.json()["meta"]["version"]


def test_if_none_match_with_the_current_version_answers_304(scim, versioned):
    """RFC 7644 §3.14: GET with If-None-Match and the current version answers 304 Not Modified."""
    path, r = versioned
    assert scim.get(path, headers={"If-None-Match": r.headers["ETag"]}).status_code == 304
    assert scim.get(path, headers={"If-None-Match": 'W/"not-the-version"'}).status_code == 200


@pytest.mark.parametrize("method", ["PATCH", "PUT", "DELETE"])
def test_if_match_with_a_stale_version_answers_412(scim, versioned, method):
    """RFC 7644 §3.14 and §3.12: a PUT, PATCH or DELETE with If-Match and a version that is not
    current answers 412 Precondition Failed and changes nothing."""
    path, r = versioned
    body = {
        "PATCH": patch_body({"op": "replace", "path": "nickName", "value": "Changed"}),
        "PUT": {**{k: v for k, v in r.json().items() if k != "meta"}, "nickName": "Changed"},
    }.get(method)
    expect_error(scim.request(method, path, body, headers={"If-Match": 'W/"stale-version"'}), 412)
    assert expect(scim.get(path), 200).get("nickName") == "Versioned"


def test_if_match_with_the_current_version_succeeds_and_changes_the_version(scim, versioned):
    """RFC 7644 §3.14: a PATCH with If-Match and the current version succeeds; the version changes."""
    path, r = versioned
    before = r.headers["ETag"]
    got = patched(
        scim,
        scim.patch(path, {"op": "replace", "path": "nickName", "value": "Changed"}, headers={"If-Match": before}),
        path,
    )
    assert got.get("nickName") == "Changed"
    assert got["meta"]["version"] != before


# -- Bulk (RFC 7644 §3.7) --------------------------------------------------------------------------


def test_bulk_creates_with_bulk_ids(scim, service_provider_config):
    """RFC 7644 §3.7: POST /Bulk with two POST operations answers 200 with a BulkResponse whose
    operations carry status "201" and a location."""
    require(service_provider_config, "bulk", "/Bulk (RFC 7644 §3.7)")
    r = scim.post(
        "/Bulk",
        {
            "schemas": [BULK_REQUEST],
            "Operations": [
                {"method": "POST", "path": "/Users", "bulkId": "qwerty", "data": new_user()},
                {"method": "POST", "path": "/Users", "bulkId": "ytrewq", "data": new_user()},
            ],
        },
    )
    body = expect(r, 200)
    assert BULK_RESPONSE in body.get("schemas", [])
    for op in body.get("Operations", []):
        if op.get("location"):
            scim.own(op["location"])
    assert [op.get("status") for op in body.get("Operations", [])] == ["201", "201"], describe(r)


# -- Cursor pagination (RFC 9865) ------------------------------------------------------------------


@pytest.fixture
def cursors(service_provider_config):
    if (service_provider_config.get("pagination") or {}).get("cursor") is not True:
        pytest.skip("ServiceProviderConfig pagination.cursor is not true (RFC 9865 §4)")


def test_pagination_is_advertised_with_both_flags(service_provider_config, cursors):
    """RFC 9865 §4: the pagination object carries the REQUIRED booleans cursor and index."""
    pagination = service_provider_config["pagination"]
    assert isinstance(pagination.get("index"), bool)
    for key in ("defaultPageSize", "maxPageSize", "cursorTimeout"):
        if key in pagination:
            assert is_integer(pagination[key]) and pagination[key] > 0, f"{key} must be a positive integer"


def test_cursor_pages_hold_every_result_once(scim, people, cursors):
    """RFC 9865 §2: an empty cursor asks for the first page; nextCursor leads to the next page and
    is omitted on the last one; the pages hold each result once."""
    seen, cursor, pages = [], "", 0
    while cursor is not None and pages < 10:
        r = scim.get("/Users", params={"filter": people.scoped("userName pr"), "cursor": cursor, "count": 2})
        body = expect_list(r)
        assert len(resources(body)) <= 2, f"{describe(r)}: more than count"
        seen += people.keys(body)
        cursor = body.get("nextCursor")
        pages += 1
    assert cursor is None, "nextCursor was still given after ten pages of five results"
    assert sorted(seen) == sorted(PEOPLE), f"cursor pages held {seen}"
    assert pages >= 3, f"five results at most two a page take at least three pages, took {pages}"


def test_unknown_cursor_answers_400_invalid_cursor(scim, cursors):
    """RFC 9865 §2.1: an invalid cursor answers 400 with scimType invalidCursor."""
    expect_error(scim.get("/Users", params={"cursor": "bm90LWEtY3Vyc29y", "count": 2}), 400, "invalidCursor")


def test_cursor_in_a_search_request(scim, people, cursors):
    """RFC 9865 §3: POST /.search takes `cursor` and `count` in the SearchRequest."""
    r = search(scim, "/Users/.search", {"filter": people.scoped("userName pr"), "cursor": "", "count": 2})
    body = expect_list(r)
    assert 1 <= len(resources(body)) <= 2 and body.get("nextCursor"), f"{describe(r)}: expected a page and a nextCursor"
    nxt = expect_list(
        search(
            scim, "/Users/.search", {"filter": people.scoped("userName pr"), "cursor": body["nextCursor"], "count": 2}
        )
    )
    assert not set(people.keys(nxt)) & set(people.keys(body))
