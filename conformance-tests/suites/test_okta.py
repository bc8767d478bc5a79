"""What Okta sends and checks.

Sources:
- [SPEC] Okta SCIM 2.0 spec test (Okta-SCIM-20-SPEC-Test.json), the required checks listed in
  Okta's test guide https://developer.okta.com/docs/guides/scim-provisioning-integration-test/main/
- [CRUD] Okta SCIM 2.0 CRUD test, same guide: create, update, deactivate, reactivate, unassign.
- [REF] Okta SCIM 2.0 protocol reference
  https://developer.okta.com/docs/api/openapi/okta-scim/guides/scim-20/ (sections named below).
"""

import copy

import pytest

from scim import (
    GROUP,
    USER,
    describe,
    expect,
    expect_error,
    expect_list,
    get_attr,
    is_integer,
    member_ids,
    patched,
    quoted,
    resources,
    unique,
)


def okta_user() -> dict:
    """The body of [REF] "Create the User": Okta sends a password, `groups: []` and its own id as
    externalId along with the profile."""
    uid = unique("")
    return {
        "schemas": [USER],
        "userName": f"okta.{uid}@example.com",
        "name": {"givenName": "Test", "familyName": f"User{uid}"},
        "emails": [{"primary": True, "value": f"okta.{uid}@example.com", "type": "work"}],
        "displayName": f"Test User{uid}",
        "locale": "en-US",
        "externalId": f"00u{uid}",
        "groups": [],
        "password": f"1mz050nq-{uid}",
        "active": True,
    }


def create_okta_user(scim) -> dict:
    # The spec test sends Content-Type application/json in places ([SPEC] R6).
    return scim.create("/Users", okta_user(), content_type="application/json")


def assert_okta_profile(user: dict, sent: dict | None = None):
    for attr in ("id", "userName", "name.givenName", "name.familyName", "active"):
        assert get_attr(user, attr) is not None, f"user lacks {attr}: {user}"
    assert (user.get("emails") or [{}])[0].get("value"), f"user lacks emails[0].value: {user}"
    if sent:
        assert user["userName"].lower() == sent["userName"].lower()
        assert get_attr(user, "name.givenName") == sent["name"]["givenName"]
        assert get_attr(user, "name.familyName") == sent["name"]["familyName"]


# -- SCIM 2.0 spec test: required checks ---------------------------------------------------------


def test_list_users_pages_with_count_and_start_index_and_integer_totals(scim):
    """[SPEC] "Test Users endpoint": GET /Users?count=1&startIndex=1 answers a ListResponse whose
    itemsPerPage, startIndex and totalResults are integers ([REF] "Retrieve Users": "need to be
    exchanged as integers, not as strings") and holds one user with an id and a userName.
    (Okta also reads the profile of that first user; on a shared server it may be anyone's, so the
    profile is checked on our own user in the next test.)"""
    create_okta_user(scim)
    body = expect_list(scim.get("/Users", params={"count": 1, "startIndex": 1}))
    for key in ("itemsPerPage", "startIndex", "totalResults"):
        assert is_integer(body.get(key)), f"{key} must be an integer, got {body.get(key)!r}"
    assert body["totalResults"] >= 1
    assert len(resources(body)) == 1, f"count=1 must give exactly one of {body['totalResults']} users"
    assert body["itemsPerPage"] == 1
    first = resources(body)[0]
    assert first.get("id") and first.get("userName"), f"first user lacks id or userName: {first}"


def test_get_user_by_id_returns_the_profile(scim):
    """[SPEC] "Get Users/{id}" and "Verify that user was created": GET /Users/{id} answers 200 with
    the same id, userName, name.givenName, name.familyName, active and emails[0].value."""
    sent = okta_user()
    created = scim.create("/Users", sent)
    user = expect(scim.get(f"/Users/{created['id']}"), 200)
    assert user["id"] == created["id"]
    assert_okta_profile(user, sent)


def test_filter_on_an_unknown_username_answers_200_and_no_results(scim):
    """[SPEC] "Test invalid User by username" / "Make sure random user doesn't exist":
    GET /Users?filter=userName eq "<random>" answers 200 with totalResults 0."""
    r = scim.get("/Users", params={"filter": f"userName eq {quoted(unique('nobody.') + '@example.com')}"})
    body = expect_list(r)
    assert body["totalResults"] == 0, f"{describe(r)}: expected no users"
    assert resources(body) == []


def test_unknown_user_id_answers_404_with_an_error_body(scim):
    """[SPEC] "Test invalid User by ID" and "Check status 404": GET /Users/<random> answers 404
    with the Error schema, status "404" and a non-empty detail."""
    body = expect_error(scim.get(f"/Users/{unique('missing-')}"), 404)
    assert body.get("detail"), f"404 without a detail: {body}"


def test_create_user_with_realistic_values_answers_201(scim):
    """[SPEC] "Create Okta user with realistic values" ([REF] "Create the User"): POST /Users with
    password, groups: [] and externalId answers 201 with the user: active true, an id, the names,
    the User schema; the password is never returned (RFC 7643 §4.1.1, returned "never")."""
    sent = okta_user()
    r = scim.post("/Users", sent, content_type="application/json")
    user = expect(r, 201)
    assert user and user.get("id"), f"{describe(r)}: Okta rejects an empty create response"
    scim.own(f"/Users/{user['id']}")
    assert user.get("active") is True
    assert USER in user.get("schemas", [])
    assert_okta_profile(user, sent)
    assert "password" not in {k.lower() for k in user}, "the password was echoed"
    again = expect(scim.get(f"/Users/{user['id']}"), 200)
    assert_okta_profile(again, sent)
    assert "password" not in {k.lower() for k in again}, "the password is readable"


def test_recreating_an_existing_user_answers_409(scim):
    """[SPEC] "Expect failure when recreating user with same values" ([REF] "Create the User":
    "respond with an error schema"): the same POST again answers 409 with an Error body."""
    sent = okta_user()
    scim.create("/Users", sent)
    r = scim.post("/Users", sent, content_type="application/json")
    if r.status_code in (200, 201):
        scim.own(f"/Users/{r.json().get('id')}")
    expect_error(r, 409)


def test_username_filter_in_upper_case_answers_200(scim):
    """[SPEC] "Username Case Sensitivity Check": filtering on the upper-cased userName of an
    existing user answers 200."""
    user = create_okta_user(scim)
    expect_list(scim.get("/Users", params={"filter": f"userName eq {quoted(user['userName'].upper())}"}))


def test_bad_token_answers_401_with_an_error_body(scim):
    """[SPEC] "Check status 401": a filter request with a wrong bearer token answers 401 with the
    Error schema, status "401" and a detail."""
    r = scim.get("/Users", params={"filter": 'userName eq "someone@example.com"'}, token="not-a-valid-token")
    body = expect_error(r, 401)
    assert body.get("detail"), f"401 without a detail: {body}"


def test_groups_endpoint_answers_200(scim, groups):
    """[SPEC] "Verify Groups endpoint" (optional): GET /Groups answers 200 with a ListResponse
    ([REF] "Retrieve Groups")."""
    expect_list(scim.get("/Groups", params={"startIndex": 1, "count": 100}))


# -- CRUD test: the user lifecycle Okta drives ---------------------------------------------------


def deactivate(scim, user_id: str, active: bool):
    """[REF] "Update a specific User (PATCH)": activation and deactivation are a path-less replace."""
    r = scim.patch(f"/Users/{user_id}", {"op": "replace", "value": {"active": active}})
    return patched(scim, r, f"/Users/{user_id}")


def test_profile_update_is_a_get_then_a_full_put(scim):
    """[CRUD] "Update firstName" / [REF] "Update a specific User (PUT)": Okta GETs the user,
    changes the attribute in that body and PUTs all of it back; the answer is 200 with the updated
    user, which stays active."""
    user = create_okta_user(scim)
    path = f"/Users/{user['id']}"
    body = expect(scim.get(path), 200)
    body = copy.deepcopy(body)
    body["name"]["givenName"] = "Another"
    body["name"]["middleName"] = "Excited"
    updated = expect(scim.put(path, body), 200)
    assert get_attr(updated, "name.givenName") == "Another"
    again = expect(scim.get(path), 200)
    assert get_attr(again, "name.givenName") == "Another"
    assert get_attr(again, "name.middleName") == "Excited"
    assert again.get("active") is True, "a full PUT with active true must keep the user active"
    assert again["userName"].lower() == user["userName"].lower()


def test_deactivation_is_a_pathless_replace_and_keeps_the_user_readable(scim):
    """[CRUD] "Deactivate the user" / "Verify deactivated" ([REF] "Update a specific User
    (PATCH)"): PATCH {"op":"replace","value":{"active":false}} answers 200 or 204; the user is
    then read back with active false, by id and by userName filter."""
    user = create_okta_user(scim)
    assert deactivate(scim, user["id"], False).get("active") is False
    found = expect_list(scim.get("/Users", params={"filter": f"userName eq {quoted(user['userName'])}"}))
    assert [u.get("id") for u in resources(found)] == [user["id"]], "the deactivated user must still be found"
    assert resources(found)[0].get("active") is False


def test_reactivation_restores_the_same_user(scim):
    """[CRUD] "Reactivate" / "Reassign" / "Verify reactivated and assigned": a path-less replace
    of active true makes the same user (same id, same profile) active again."""
    user = create_okta_user(scim)
    deactivate(scim, user["id"], False)
    again = deactivate(scim, user["id"], True)
    assert again.get("active") is True
    assert again["id"] == user["id"]
    assert_okta_profile(again)


@pytest.mark.parametrize("integration", ["OIN app (PATCH)", "AIW app (PUT)"])
def test_unassignment_ends_deactivated_and_never_deleted(scim, integration):
    """[CRUD] "Unassign" / "Verify deactivated (not deleted)" ([REF] "Delete Users": "Okta doesn't
    perform DELETE operations on User objects"; OIN apps send a PATCH, AIW apps a full PUT with
    active false): afterwards GET /Users/{id} answers 200 with active false."""
    user = create_okta_user(scim)
    path = f"/Users/{user['id']}"
    if integration.startswith("OIN"):
        deactivate(scim, user["id"], False)
    else:
        body = copy.deepcopy(expect(scim.get(path), 200))
        body["active"] = False
        expect(scim.put(path, body), 200)
    again = expect(scim.get(path), 200)
    assert again.get("active") is False
    assert again["userName"].lower() == user["userName"].lower()


# -- Group Push --------------------------------------------------------------------------------


def push_group(scim) -> dict:
    """[REF] "Create Groups": POST /Groups with a displayName and `members: []`."""
    return scim.create("/Groups", {"schemas": [GROUP], "displayName": unique("Okta Push "), "members": []})


def group_after_patch(scim, group_id: str, *operations) -> dict:
    """[REF]: a group PATCH answers 200 with the group (members may be null) or 204."""
    return patched(scim, scim.patch(f"/Groups/{group_id}", *operations), f"/Groups/{group_id}")


def test_group_push_creates_a_group_with_empty_members(scim, groups):
    """[REF] "Create Groups": the answer is 201 with the group's id and displayName."""
    sent_name = unique("Okta Push ")
    group = scim.create("/Groups", {"schemas": [GROUP], "displayName": sent_name, "members": []})
    assert group["displayName"] == sent_name
    assert not group.get("members")
    assert expect(scim.get(f"/Groups/{group['id']}"), 200)["displayName"] == sent_name


def test_group_push_renames_with_a_pathless_replace_of_id_and_display_name(scim, groups):
    """[REF] "Update a specific Group name": PATCH {"op":"replace","value":{"id":…,
    "displayName":…}} (sent on every membership update too) renames the group."""
    group = push_group(scim)
    name = unique("Okta Renamed ")
    after = group_after_patch(scim, group["id"], {"op": "replace", "value": {"id": group["id"], "displayName": name}})
    assert after["displayName"] == name
    assert after["id"] == group["id"]


def test_group_push_adds_members(scim, groups):
    """[REF] "Update specific Group membership": PATCH add path members with [{value, display}]."""
    group = push_group(scim)
    a, b = create_okta_user(scim), create_okta_user(scim)
    after = group_after_patch(
        scim,
        group["id"],
        {
            "op": "add",
            "path": "members",
            "value": [{"value": a["id"], "display": a["userName"]}, {"value": b["id"], "display": b["userName"]}],
        },
    )
    assert member_ids(after) == {a["id"], b["id"]}


def test_group_push_removes_one_member_by_value_filter(scim, groups):
    """[REF] "Update specific Group membership": one PATCH removes `members[value eq "…"]` and adds
    another member; only the named member leaves."""
    group = push_group(scim)
    a, b, c = create_okta_user(scim), create_okta_user(scim), create_okta_user(scim)
    group_after_patch(
        scim, group["id"], {"op": "add", "path": "members", "value": [{"value": a["id"]}, {"value": b["id"]}]}
    )
    after = group_after_patch(
        scim,
        group["id"],
        {"op": "remove", "path": f"members[value eq {quoted(a['id'])}]"},
        {"op": "add", "path": "members", "value": [{"value": c["id"], "display": c["userName"]}]},
    )
    assert member_ids(after) == {b["id"], c["id"]}


def test_group_push_replaces_all_members(scim, groups):
    """[REF] "Update specific Group membership": a replace of path members with the full list
    leaves exactly that list."""
    group = push_group(scim)
    a, b, c = create_okta_user(scim), create_okta_user(scim), create_okta_user(scim)
    group_after_patch(scim, group["id"], {"op": "add", "path": "members", "value": [{"value": a["id"]}]})
    after = group_after_patch(
        scim,
        group["id"],
        {
            "op": "replace",
            "path": "members",
            "value": [{"value": b["id"], "display": b["userName"]}, {"value": c["id"], "display": c["userName"]}],
        },
    )
    assert member_ids(after) == {b["id"], c["id"]}


def test_group_push_deletes_the_group(scim, groups):
    """[REF] "Delete a specific Group": DELETE /Groups/{id} answers 204; the group is gone (404)
    and its former members are untouched."""
    group = push_group(scim)
    member = create_okta_user(scim)
    group_after_patch(scim, group["id"], {"op": "add", "path": "members", "value": [{"value": member["id"]}]})
    expect(scim.delete(f"/Groups/{group['id']}"), 204)
    expect_error(scim.get(f"/Groups/{group['id']}"), 404)
    expect(scim.get(f"/Users/{member['id']}"), 200)
