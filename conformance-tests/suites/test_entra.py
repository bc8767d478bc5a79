"""What Microsoft Entra ID sends and checks.

Sources:
- [GUIDE] "Tutorial: Develop and plan provisioning for a SCIM endpoint in Microsoft Entra ID"
  https://learn.microsoft.com/entra/identity/app-provisioning/use-scim-to-provision-users-and-groups
  (its request/response examples are named below by their headings).
- [ISSUES] "Known issues and resolutions with SCIM 2.0 protocol compliance of the Microsoft Entra
  user provisioning service"
  https://learn.microsoft.com/entra/identity/app-provisioning/application-provisioning-config-problem-scim-compatibility
  Without the `aadOptscim062020` tenant-URL flag Entra sends capitalised ops, "True"/"False"
  strings and a non-standard member removal; with it, the RFC forms plus path-less replaces with
  dotted keys.
- [VALIDATION] Microsoft's gallery validation tests (SCIM-Validation-Test-Overview.md in
  AzureAD/SCIMReferenceCode): null update, pagination, manager set/change/remove.
"""

import uuid

import pytest

from scim import (
    ENTERPRISE,
    GROUP,
    USER,
    deletes,
    describe,
    expect,
    expect_error,
    expect_list,
    get_attr,
    is_empty,
    member_ids,
    patched,
    quoted,
    resources,
    typed,
)


def entra_user() -> dict:
    """[GUIDE] "Create User": the body Entra POSTs."""
    uid = uuid.uuid4()
    return {
        "schemas": [USER, ENTERPRISE],
        "externalId": str(uuid.uuid4()),
        "userName": f"Test_User_{uid}@contoso.example",
        "active": True,
        "emails": [{"primary": True, "type": "work", "value": f"Test_User_{uuid.uuid4()}@testuser.example"}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
        "roles": [],
    }


MICROSOFT_GROUP_SCHEMA = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"


def entra_group(microsoft_schema: bool = False) -> dict:
    """[GUIDE] "Create Group": Entra creates groups without members. Its example also lists
    Microsoft's own schema URI; only test_create_group_answers_201 sends that, so that the
    membership tests do not all hinge on it."""
    return {
        "schemas": [GROUP] + ([MICROSOFT_GROUP_SCHEMA] if microsoft_schema else []),
        "externalId": str(uuid.uuid4()),
        "displayName": f"Entra Group {uuid.uuid4()}",
        "meta": {"resourceType": "Group"},
    }


def user_after(scim, user_id: str, *operations) -> dict:
    return patched(scim, scim.patch(f"/Users/{user_id}", *operations), f"/Users/{user_id}")


def group_after(scim, group_id: str, *operations) -> dict:
    """[GUIDE] "Group Operations": a group PATCH should answer 204 (200 is accepted)."""
    return patched(scim, scim.patch(f"/Groups/{group_id}", *operations), f"/Groups/{group_id}")


def find(scim, filter_: str, endpoint: str = "/Users", **params) -> list[dict]:
    return resources(expect_list(scim.get(endpoint, params={"filter": filter_, **params})))


def work_email(user: dict) -> str | None:
    work = typed(user.get("emails"), "work")
    return work[0].get("value") if work else None


# -- Test Connection, create, matching -----------------------------------------------------------


@pytest.mark.parametrize("attribute", ["userName", "externalId"])
def test_test_connection_filter_on_a_random_guid_answers_an_empty_list(scim, attribute):
    """[GUIDE] General: "Test Connection" and [GUIDE] "Get User by query - Zero results": a filter
    on the matching attribute with a random GUID answers 200 with an empty ListResponse, never 404
    or 400 (gallery rule: "return a successful response with zero results")."""
    r = scim.get("/Users", params={"filter": f"{attribute} eq {quoted(str(uuid.uuid4()))}"})
    body = expect_list(r)
    assert body["totalResults"] == 0 and resources(body) == [], f"{describe(r)}: expected an empty list"


def test_create_user_answers_201_with_the_user(scim):
    """[GUIDE] "Create User" and "Get User": POST /Users answers 201 with an id, the externalId,
    userName, name, active and the work email; GET /Users/{id} returns the same."""
    sent = entra_user()
    user = scim.create("/Users", sent)
    for got in (user, expect(scim.get(f"/Users/{user['id']}"), 200)):
        assert got["externalId"] == sent["externalId"]
        assert got["userName"].lower() == sent["userName"].lower()
        assert get_attr(got, "name.familyName") == "familyName"
        assert got.get("active") is True
        assert work_email(got) == sent["emails"][0]["value"]


def test_values_are_stored_as_sent(scim):
    """[GUIDE] General: "Values sent should be stored in the same format they were sent ... A phone
    number sent as 55555555555 shouldn't be saved/returned as +5 (555) 555-5555"."""
    sent = entra_user()
    sent["phoneNumbers"] = [{"type": "work", "value": "55555555555"}]
    sent["title"] = "  Senior   Engineer "
    user = scim.create("/Users", sent)
    got = expect(scim.get(f"/Users/{user['id']}"), 200)
    assert typed(got.get("phoneNumbers"), "work")[0]["value"] == "55555555555"
    assert got.get("title") == sent["title"]


@pytest.mark.parametrize("quoting", ["quoted", "unquoted"])
@pytest.mark.parametrize("attribute", ["userName", "externalId"])
def test_user_is_matched_by_its_matching_attribute(scim, attribute, quoting):
    """[GUIDE] "Get User by query" and requirements ("queried with their userName and externalId").
    Microsoft's examples also leave the value unquoted (`externalId eq jyoung`; the reference
    Postman collection's `name.FamilyName eq Employee`): both forms find exactly the user."""
    user = scim.create("/Users", entra_user())
    value = user[attribute]
    literal = quoted(value) if quoting == "quoted" else value
    found = find(scim, f"{attribute} eq {literal}")
    assert [u.get("id") for u in found] == [user["id"]]


def test_user_is_matched_by_its_work_email(scim):
    """[GUIDE] "/Users": attributes used for uniqueness must be filterable, e.g.
    `emails[type eq "work"].value eq "user@contoso.com"`."""
    user = scim.create("/Users", entra_user())
    found = find(scim, f'emails[type eq "work"].value eq {quoted(work_email(user))}')
    assert [u.get("id") for u in found] == [user["id"]]


# -- PATCH without the aadOptscim062020 flag -----------------------------------------------------


def test_without_flag_replace_of_multi_valued_and_name_properties(scim):
    """[GUIDE] "Update User [Multi-valued properties]": `Replace` of `emails[type eq "work"].value`
    and of `name.familyName` in one PATCH."""
    user = scim.create("/Users", entra_user())
    after = user_after(
        scim,
        user["id"],
        {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "updatedEmail@microsoft.example"},
        {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
    )
    assert work_email(after) == "updatedEmail@microsoft.example"
    assert len(typed(after.get("emails"), "work")) == 1, "the work email must be replaced, not added"
    assert get_attr(after, "name.familyName") == "updatedFamilyName"
    assert get_attr(after, "name.givenName") == "givenName"


def test_without_flag_replace_of_user_name(scim):
    """[GUIDE] "Update User [Single-valued properties]": `Replace` of userName."""
    user = scim.create("/Users", entra_user())
    name = f"{uuid.uuid4()}@testuser.example"
    after = user_after(scim, user["id"], {"op": "Replace", "path": "userName", "value": name})
    assert after["userName"].lower() == name.lower()
    assert [u.get("id") for u in find(scim, f"userName eq {quoted(name)}")] == [user["id"]]


def test_without_flag_disable_and_enable_with_string_booleans(scim):
    """[ISSUES] "Requests made to disable users", without flag: `{"op":"Replace","path":"active",
    "value":"False"}`, and the same with "True" to enable."""
    user = scim.create("/Users", entra_user())
    assert user_after(scim, user["id"], {"op": "Replace", "path": "active", "value": "False"}).get("active") is False
    assert user_after(scim, user["id"], {"op": "Replace", "path": "active", "value": "True"}).get("active") is True


def test_without_flag_add_of_a_single_value_string_attribute(scim):
    """[ISSUES] "Requests made to add a single-value string attribute", without flag:
    `{"op":"Add","path":"nickName","value":"Babs"}`."""
    user = scim.create("/Users", entra_user())
    assert user_after(scim, user["id"], {"op": "Add", "path": "nickName", "value": "Babs"}).get("nickName") == "Babs"


def test_without_flag_replace_of_multiple_attributes(scim, enterprise_declared):
    """[ISSUES] "Requests to replace multiple attributes", without flag: one capitalised `Replace`
    per attribute, including a work email, externalId and (when the server declares the
    enterprise extension) the fully qualified employeeNumber."""
    user = scim.create("/Users", entra_user())
    ops = [
        {"op": "Replace", "path": "displayName", "value": "Pvlo"},
        {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "TestBcwqnm@test.microsoft.example"},
        {"op": "Replace", "path": "name.givenName", "value": "Gtfd"},
        {"op": "Replace", "path": "name.familyName", "value": "Pkqf"},
        {"op": "Replace", "path": "externalId", "value": f"Eqpj-{uuid.uuid4()}"},
    ]
    if enterprise_declared:
        ops.append({"op": "Replace", "path": f"{ENTERPRISE}:employeeNumber", "value": "Eqpj"})
    after = user_after(scim, user["id"], *ops)
    assert after.get("displayName") == "Pvlo"
    assert work_email(after) == "TestBcwqnm@test.microsoft.example"
    assert get_attr(after, "name.givenName") == "Gtfd"
    assert get_attr(after, "name.familyName") == "Pkqf"
    assert after.get("externalId") == ops[4]["value"]
    if enterprise_declared:
        assert get_attr(after, f"{ENTERPRISE}:employeeNumber") == "Eqpj"


# -- PATCH with the aadOptscim062020 flag --------------------------------------------------------


def test_with_flag_disable_and_enable_with_booleans(scim):
    """[ISSUES] "Requests made to disable users", with flag: `{"op":"replace","path":"active",
    "value":false}` ([GUIDE] "Disable User"), then true."""
    user = scim.create("/Users", entra_user())
    assert user_after(scim, user["id"], {"op": "replace", "path": "active", "value": False}).get("active") is False
    assert user_after(scim, user["id"], {"op": "replace", "path": "active", "value": True}).get("active") is True


def test_with_flag_add_of_a_single_value_string_attribute(scim):
    """[ISSUES] "Requests made to add a single-value string attribute", with flag."""
    user = scim.create("/Users", entra_user())
    assert user_after(scim, user["id"], {"op": "add", "path": "nickName", "value": "Babs"}).get("nickName") == "Babs"


def test_with_flag_replace_of_multiple_attributes_on_a_user_without_email(scim, enterprise_declared):
    """[ISSUES] "Requests to replace multiple attributes", with flag: a replace of
    `emails[type eq "work"].value` on a user that has no email yet (the email is created), and a
    path-less replace whose value has dotted keys (`name.givenName`) and a fully qualified
    enterprise key."""
    sent = entra_user()
    del sent["emails"]
    user = scim.create("/Users", sent)
    value = {"displayName": "Bjfe", "name.givenName": "Kkom", "name.familyName": "Unua"}
    if enterprise_declared:
        value[f"{ENTERPRISE}:employeeNumber"] = "Aklq"
    after = user_after(
        scim,
        user["id"],
        {"op": "replace", "path": 'emails[type eq "work"].value', "value": "TestMhvaes@test.microsoft.example"},
        {"op": "replace", "value": value},
    )
    assert work_email(after) == "TestMhvaes@test.microsoft.example"
    assert after.get("displayName") == "Bjfe"
    assert get_attr(after, "name.givenName") == "Kkom"
    assert get_attr(after, "name.familyName") == "Unua"
    assert "name.givenName" not in after, "a dotted key must set name.givenName, not a new attribute"
    if enterprise_declared:
        assert get_attr(after, f"{ENTERPRISE}:employeeNumber") == "Aklq"


@pytest.mark.parametrize("op", ["add", "replace", "Add", "Replace"])
def test_work_email_path_on_a_user_without_emails_creates_it(scim, op):
    """[GUIDE] attribute mapping `mail → emails[type eq "work"].value`: Entra sends an add or a
    replace of that path (either, per Microsoft Q&A 1373350) to a user without emails; the server
    creates the work email."""
    sent = entra_user()
    del sent["emails"]
    user = scim.create("/Users", sent)
    after = user_after(
        scim, user["id"], {"op": op, "path": 'emails[type eq "work"].value', "value": "new@contoso.example"}
    )
    assert work_email(after) == "new@contoso.example"


def test_enterprise_manager_is_set_changed_and_removed(scim, enterprise):
    """[VALIDATION] SCIM_Update_Manager_Test: set the manager (`add` of
    `urn:…:enterprise:2.0:User:manager` with the manager's id as a plain string, as Entra sends
    it), change it (`replace`), remove it (`replace` with an empty value)."""
    first, second = scim.create("/Users", entra_user()), scim.create("/Users", entra_user())
    user = scim.create("/Users", entra_user())
    path = f"{ENTERPRISE}:manager"
    after = user_after(scim, user["id"], {"op": "add", "path": path, "value": first["id"]})
    assert get_attr(after, f"{path}.value") == first["id"]
    after = user_after(scim, user["id"], {"op": "replace", "path": path, "value": second["id"]})
    assert get_attr(after, f"{path}.value") == second["id"]
    after = user_after(scim, user["id"], {"op": "replace", "path": path, "value": ""})
    assert is_empty(get_attr(after, path)), f"manager not removed: {get_attr(after, path)}"


def test_enterprise_manager_is_removed_with_a_remove_operation(scim, enterprise):
    """[VALIDATION] User_Update_Manager_Test phase 3 ("remove manager"): `remove` of the manager
    path leaves no manager."""
    manager, user = scim.create("/Users", entra_user()), scim.create("/Users", entra_user())
    path = f"{ENTERPRISE}:manager"
    user_after(scim, user["id"], {"op": "add", "path": path, "value": manager["id"]})
    after = user_after(scim, user["id"], {"op": "remove", "path": path})
    assert is_empty(get_attr(after, path))


# -- Soft delete, restore, hard delete -----------------------------------------------------------


def test_soft_deleted_user_stays_readable_by_id_and_filter(scim):
    """[GUIDE] requirements, "Soft-deleting a user active=false": "The user object should be
    returned in a request whether or not the user is active"; by id, by userName and by
    externalId."""
    user = scim.create("/Users", entra_user())
    user_after(scim, user["id"], {"op": "Replace", "path": "active", "value": False})
    assert expect(scim.get(f"/Users/{user['id']}"), 200).get("active") is False
    for attribute in ("userName", "externalId"):
        found = find(scim, f"{attribute} eq {quoted(user[attribute])}")
        assert [(u.get("id"), u.get("active")) for u in found] == [(user["id"], False)], f"by {attribute}"


def test_restore_reactivates_a_soft_deleted_user(scim):
    """[GUIDE] requirements, "restoring the user active=true": the same user is active again with
    its profile intact."""
    user = scim.create("/Users", entra_user())
    user_after(scim, user["id"], {"op": "Replace", "path": "active", "value": "False"})
    after = user_after(scim, user["id"], {"op": "Replace", "path": "active", "value": "True"})
    assert after.get("active") is True
    assert after["userName"].lower() == user["userName"].lower()
    assert work_email(after) == work_email(user)


def test_hard_delete_answers_204_and_then_404(scim):
    """[GUIDE] "Delete User": DELETE answers 204; afterwards the user is not returned by id (404)
    nor by filter ("The only time the user shouldn't be returned is when it's hard deleted")."""
    user = scim.create("/Users", entra_user())
    if not deletes(scim, f"/Users/{user['id']}"):
        pytest.skip("the server does not offer DELETE on users (Entra's Delete_User_Test is optional)")
    expect_error(scim.get(f"/Users/{user['id']}"), 404)
    assert find(scim, f"userName eq {quoted(user['userName'])}") == []
    assert find(scim, f"externalId eq {quoted(user['externalId'])}") == []


def test_hard_deleted_user_can_be_provisioned_again(scim):
    """[VALIDATION] Restore_User_Test (unassign → delete → reassign): after a hard delete, Entra
    creates the user again with the same userName and externalId; that answers 201 with a new id."""
    sent = entra_user()
    user = scim.create("/Users", sent)
    if not deletes(scim, f"/Users/{user['id']}"):
        pytest.skip("the server does not offer DELETE on users")
    again = scim.create("/Users", sent)
    assert again["id"] != user["id"]
    assert again["userName"].lower() == sent["userName"].lower()


# -- Groups --------------------------------------------------------------------------------------


def test_create_group_answers_201(scim, groups):
    """[GUIDE] "Create Group": the body exactly as Entra's example sends it, Microsoft's
    `…/ADSCIM/2.0/Group` schema URI included, answers 201 with an id, the displayName and the
    externalId."""
    sent = entra_group(microsoft_schema=True)
    group = scim.create("/Groups", sent)
    assert group["displayName"] == sent["displayName"]
    assert group.get("externalId") == sent["externalId"]


def test_group_display_name_is_unique(scim, groups):
    """[GUIDE] "/Groups": "Groups must have uniqueness on the 'displayName' value to match with
    Microsoft Entra ID" (not an RFC requirement, an Entra one): a second group with the same
    displayName answers 409 (RFC 7644 §3.3: scimType uniqueness)."""
    sent = entra_group()
    scim.create("/Groups", sent)
    again = dict(sent, externalId=str(uuid.uuid4()))
    r = scim.post("/Groups", again)
    if r.status_code == 201:
        scim.own(f"/Groups/{r.json()['id']}")
    expect_error(r, 409, "uniqueness")


def test_get_group_excludes_members(scim, groups):
    """[GUIDE] "Get Group" and requirements: GET /Groups/{id}?excludedAttributes=members answers
    the group without its members."""
    group = scim.create("/Groups", entra_group())
    member = scim.create("/Users", entra_user())
    group_after(scim, group["id"], {"op": "Add", "path": "members", "value": [{"$ref": None, "value": member["id"]}]})
    got = expect(scim.get(f"/Groups/{group['id']}", params={"excludedAttributes": "members"}), 200)
    assert got["id"] == group["id"] and got["displayName"] == group["displayName"]
    assert "members" not in got, "excludedAttributes=members must leave members out"


def test_get_group_by_display_name_excludes_members(scim, groups):
    """[GUIDE] "Get Group by displayName": `excludedAttributes=members&filter=displayName eq "…"`
    finds exactly the group, without members."""
    group = scim.create("/Groups", entra_group())
    member = scim.create("/Users", entra_user())
    group_after(scim, group["id"], {"op": "Add", "path": "members", "value": [{"value": member["id"]}]})
    found = find(scim, f"displayName eq {quoted(group['displayName'])}", "/Groups", excludedAttributes="members")
    assert [g.get("id") for g in found] == [group["id"]]
    assert "members" not in found[0]


def test_update_group_display_name(scim, groups):
    """[GUIDE] "Update Group [Non-member attributes]": `Replace` of displayName."""
    group = scim.create("/Groups", entra_group())
    name = f"{uuid.uuid4()}updatedDisplayName"
    assert (
        group_after(scim, group["id"], {"op": "Replace", "path": "displayName", "value": name})["displayName"] == name
    )


def test_update_group_add_members(scim, groups):
    """[GUIDE] "Update Group [Add Members]": `Add` of members with `"$ref": null`."""
    group = scim.create("/Groups", entra_group())
    a, b = scim.create("/Users", entra_user()), scim.create("/Users", entra_user())
    after = group_after(
        scim,
        group["id"],
        {
            "op": "Add",
            "path": "members",
            "value": [{"$ref": None, "value": a["id"]}, {"$ref": None, "value": b["id"]}],
        },
    )
    assert member_ids(after) == {a["id"], b["id"]}


def test_without_flag_member_removal_removes_only_that_member(scim, groups):
    """[ISSUES] "Requests made to remove a group member", without flag (also [GUIDE] "Update Group
    [Remove Members]"): `{"op":"Remove","path":"members","value":[{"value":id}]}` removes that
    member and no other (a naive server empties the group)."""
    group = scim.create("/Groups", entra_group())
    a, b, c = (scim.create("/Users", entra_user()) for _ in range(3))
    group_after(scim, group["id"], {"op": "Add", "path": "members", "value": [{"value": u["id"]} for u in (a, b, c)]})
    after = group_after(scim, group["id"], {"op": "Remove", "path": "members", "value": [{"value": b["id"]}]})
    assert member_ids(after) == {a["id"], c["id"]}


def test_with_flag_member_removal_by_value_filter(scim, groups):
    """[ISSUES] "Requests made to remove a group member", with flag:
    `{"op":"remove","path":"members[value eq \\"…\\"]"}`."""
    group = scim.create("/Groups", entra_group())
    a, b = scim.create("/Users", entra_user()), scim.create("/Users", entra_user())
    group_after(scim, group["id"], {"op": "add", "path": "members", "value": [{"value": a["id"]}, {"value": b["id"]}]})
    after = group_after(scim, group["id"], {"op": "remove", "path": f"members[value eq {quoted(a['id'])}]"})
    assert member_ids(after) == {b["id"]}


def test_delete_group(scim, groups):
    """[GUIDE] "Delete Group": 204, then the group is gone (404, and not found by displayName)."""
    group = scim.create("/Groups", entra_group())
    expect(scim.delete(f"/Groups/{group['id']}"), 204)
    expect_error(scim.get(f"/Groups/{group['id']}"), 404)
    assert find(scim, f"displayName eq {quoted(group['displayName'])}", "/Groups") == []


# -- Gallery validation checks -------------------------------------------------------------------


def test_users_paginate_by_five_with_matching_start_index(scim):
    """[VALIDATION] SCIM_User_Pagination_Test: with at least 11 users, GET
    /Users?startIndex=N&count=5 answers 200 on every page with startIndex == page*5+1 and at most
    five users; walking the pages meets every user once (RFC 7644 §3.4.2.4)."""
    ours = {scim.create("/Users", entra_user())["id"] for _ in range(11)}
    seen: list[str] = []
    page, total = 0, None
    while True:
        start = page * 5 + 1
        r = scim.get("/Users", params={"startIndex": start, "count": 5})
        body = expect_list(r)
        assert body.get("startIndex") == start, f"{describe(r)}: startIndex must be {start}"
        assert len(resources(body)) <= 5, f"{describe(r)}: more than count=5 users"
        total = body["totalResults"] if total is None else total
        seen += [u.get("id") for u in resources(body)]
        page += 1
        if start + 5 > total or not resources(body) or page >= 40:
            break
    assert page >= 3, "11 users at five a page take at least three pages"
    if total <= 200:  # a full walk is only cheap on a small server
        assert len(seen) == len(set(seen)), "a user appeared on two pages"
        assert ours <= set(seen), "a user was on no page"


def test_null_update_clears_optional_attributes(scim):
    """[VALIDATION] SCIM_Null_Update_Test: a PATCH replacing optional attributes with "" leaves
    them empty; a second PATCH with null keeps them empty; and null clears a value that was set
    (RFC 7643 §2.5: unassigned, null and empty are the same state)."""
    sent = entra_user()
    sent.update({"title": "Engineer", "nickName": "Babs", "displayName": "To Be Cleared"})
    user = scim.create("/Users", sent)
    attributes = ("title", "nickName", "displayName")
    after = user_after(scim, user["id"], *({"op": "replace", "path": a, "value": ""} for a in attributes))
    assert all(is_empty(after.get(a)) for a in attributes), f"'' did not clear: {[after.get(a) for a in attributes]}"
    after = user_after(scim, user["id"], *({"op": "replace", "path": a, "value": None} for a in attributes))
    assert all(is_empty(after.get(a)) for a in attributes), f"null did not keep them empty: {after}"
    user_after(scim, user["id"], {"op": "replace", "path": "title", "value": "Again"})
    after = user_after(scim, user["id"], {"op": "replace", "path": "title", "value": None})
    assert is_empty(after.get("title")), f"null did not clear a set title: {after.get('title')!r}"


def test_create_with_string_true_active_answers_201_and_a_boolean(scim):
    """Microsoft's reference SCIM test collection (AzureAD/SCIMReferenceCode PostmanCollection.json,
    request 'Post emp1 with string "True"'), the create-time twin of the [ISSUES] string booleans:
    `"active":"True"` on create answers 201 with active the boolean true."""
    sent = entra_user()
    sent["active"] = "True"
    user = scim.create("/Users", sent)
    assert user.get("active") is True
    assert expect(scim.get(f"/Users/{user['id']}"), 200).get("active") is True
