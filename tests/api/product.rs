//! The product's lifecycle page, sentence by sentence (docs/product.md): what coworkers see of a
//! person who is deactivated, a Former Member or deleted — in content, direct messages, group
//! conversations, search and groups — through the product API.

use chrono::Duration;
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{assert_scim_error, json, Backend, TestApp, TestDatabase};

const ROSTER: &str = "urn:ietf:params:scim:schemas:extension:roster:2.0:User";

struct Product<'a> {
    app: &'a TestApp,
    token: String,
}

impl<'a> Product<'a> {
    fn of(app: &'a TestApp) -> Product<'a> {
        Product { token: app.issue_token("default", "product", "content,admin"), app }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> reqwest::Response {
        let mut req = self.app.client.request(method, self.app.url(path)).bearer_auth(&self.token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send().await.unwrap()
    }

    async fn get(&self, path: &str) -> Value {
        let res = self.call(reqwest::Method::GET, path, None).await;
        assert_eq!(res.status(), 200, "GET {path}");
        json(res).await
    }

    async fn write(&self, body: Value) -> reqwest::Response {
        self.call(reqwest::Method::POST, "/api/v1/content", Some(body)).await
    }

    /// Writes a post, comment or message and returns it; fails unless 201.
    async fn wrote(&self, body: Value) -> Value {
        let res = self.write(body).await;
        assert_eq!(res.status(), 201);
        json(res).await
    }

    async fn content(&self, item: &Value) -> Value {
        self.get(&format!("/api/v1/content/{}", item["id"].as_str().unwrap())).await
    }

    async fn start(&self, title: &str, members: &[&String]) -> Value {
        let body = json!({"title": title, "memberIds": members});
        let res = self.call(reqwest::Method::POST, "/api/v1/conversations", Some(body)).await;
        assert_eq!(res.status(), 201);
        json(res).await
    }

    async fn say(&self, conversation: &Value, sender: &str, body: &str) -> reqwest::Response {
        let path = format!("/api/v1/conversations/{}/messages", conversation["id"].as_str().unwrap());
        self.call(reqwest::Method::POST, &path, Some(json!({"senderId": sender, "body": body}))).await
    }

    async fn messages(&self, conversation: &Value) -> Vec<Value> {
        let path = format!("/api/v1/conversations/{}/messages", conversation["id"].as_str().unwrap());
        self.get(&path).await["messages"].as_array().unwrap().clone()
    }

    async fn conversation(&self, conversation: &Value) -> Value {
        self.get(&format!("/api/v1/conversations/{}", conversation["id"].as_str().unwrap())).await
    }

    async fn search(&self, q: &str) -> Value {
        self.get(&format!("/api/v1/search?q={q}")).await
    }

    async fn sweep(&self) -> Value {
        json(self.call(reqwest::Method::POST, "/api/v1/admin/sweep", None).await).await
    }
}

async fn person(app: &TestApp, name: &str) -> String {
    let body = json!({"userName": name, "displayName": format!("{name} Person"),
        "emails": [{"value": format!("{name}@example.com"), "primary": true}]});
    app.create_user(body).await["id"].as_str().unwrap().to_owned()
}

async fn set_active(app: &TestApp, id: &str, active: bool) {
    let body = json!({"Operations": [{"op": "replace", "value": {"active": active}}]});
    assert_eq!(app.patch(&format!("/scim/v2/Users/{id}"), &body).await.status(), 200);
}

async fn become_former_member(app: &TestApp, id: &str) {
    let body = json!({"Operations": [{"op": "replace", "path": format!("{ROSTER}:formerMember"), "value": true}]});
    assert_eq!(app.patch(&format!("/scim/v2/Users/{id}"), &body).await.status(), 200);
}

async fn rename(app: &TestApp, id: &str, name: &str) {
    let body = json!({"Operations": [{"op": "replace", "path": "displayName", "value": name}]});
    assert_eq!(app.patch(&format!("/scim/v2/Users/{id}"), &body).await.status(), 200);
}

fn names(people: &Value) -> Vec<&str> {
    people.as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect()
}

fn bodies(messages: &[Value]) -> Vec<&str> {
    messages.iter().map(|m| m["body"].as_str().unwrap()).collect()
}

/// "Group chat conversations won't be disrupted": the deactivated member's messages stay, the
/// others keep posting, and the deactivated member (still a member) cannot post.
async fn group_chat_conversations_wont_be_disrupted(app: TestApp) {
    let product = Product::of(&app);
    let (ann, bob, cat) = (person(&app, "ann").await, person(&app, "bob").await, person(&app, "cat").await);
    let chat = product.start("launch", &[&ann, &bob, &cat]).await;
    assert_eq!(product.say(&chat, &ann, "ann was here").await.status(), 201);
    set_active(&app, &ann, false).await;
    assert_eq!(product.say(&chat, &bob, "bob keeps going").await.status(), 201);
    assert_eq!(product.say(&chat, &cat, "cat too").await.status(), 201);
    let refused = assert_scim_error(product.say(&chat, &ann, "one more").await, 403).await;
    assert!(refused["detail"].as_str().unwrap().contains("deactivated"), "{refused}");
    let messages = product.messages(&chat).await;
    assert_eq!(bodies(&messages), ["ann was here", "bob keeps going", "cat too"]);
    assert_eq!(messages[0]["sender"]["name"], "ann Person");
    assert_eq!(messages[0]["sender"]["deactivated"], true);
    let members = product.conversation(&chat).await["members"].clone();
    assert_eq!(names(&members).len(), 3, "a deactivated person stays a member through the grace period");
    // Someone who is not a member cannot post either.
    let dan = person(&app, "dan").await;
    assert_scim_error(product.say(&chat, &dan, "hello?").await, 403).await;
}

/// "… but no one would be able to send new messages directly to that person."
async fn no_one_can_send_new_messages_directly_to_a_deactivated_person(app: TestApp) {
    let product = Product::of(&app);
    let (ann, bob) = (person(&app, "ann").await, person(&app, "bob").await);
    product.wrote(json!({"kind": "message", "authorId": bob, "recipientId": ann, "body": "before"})).await;
    set_active(&app, &ann, false).await;
    let dm = product.write(json!({"kind": "message", "authorId": bob, "recipientId": ann, "body": "after"})).await;
    assert!(assert_scim_error(dm, 403).await["detail"].as_str().unwrap().contains("deactivated"));
    // Nor can they be put into a conversation, new or existing.
    let res =
        product.call(reqwest::Method::POST, "/api/v1/conversations", Some(json!({"memberIds": [ann, bob]}))).await;
    assert_scim_error(res, 403).await;
    let chat = product.start("team", &[&bob]).await;
    let path = format!("/api/v1/conversations/{}/members", chat["id"].as_str().unwrap());
    assert_scim_error(product.call(reqwest::Method::POST, &path, Some(json!({"userId": ann}))).await, 403).await;
    assert_eq!(names(&product.conversation(&chat).await["members"]), ["bob Person"]);
}

/// "Despite access being blocked, their profile and content (posts, messages, comments)
/// created by a deactivated user will remain visible to their coworkers."
async fn content_created_by_a_deactivated_user_remains_visible_to_coworkers(app: TestApp) {
    let product = Product::of(&app);
    let (ann, bob) = (person(&app, "ann").await, person(&app, "bob").await);
    let post = product.wrote(json!({"kind": "post", "authorId": ann, "body": "ann's post"})).await;
    let comment = product
        .wrote(json!({"kind": "comment", "authorId": ann, "body": "ann's comment", "parentId": post["id"]}))
        .await;
    let message = product.wrote(json!({"kind": "message", "authorId": ann, "recipientId": bob, "body": "hi"})).await;
    set_active(&app, &ann, false).await;
    for item in [&post, &comment, &message] {
        let seen = product.content(item).await;
        assert_eq!(seen["body"], item["body"]);
        assert_eq!(seen["author"]["id"], ann.as_str());
        assert!(seen["author"]["profile"].as_str().unwrap().ends_with(&format!("/Users/{ann}")));
    }
    assert_eq!(app.get_ok(&format!("/scim/v2/Users/{ann}")).await["displayName"], "ann Person");
}

/// "Users will see an indication that the profile has been deactivated": wherever the person
/// appears — author, recipient, conversation member and sender, search result, group member —
/// with the time since when.
async fn users_see_an_indication_that_the_profile_has_been_deactivated(app: TestApp) {
    let product = Product::of(&app);
    let (ann, bob) = (person(&app, "ann").await, person(&app, "bob").await);
    let post = product.wrote(json!({"kind": "post", "authorId": ann, "body": "ann's post"})).await;
    let to_ann = product.wrote(json!({"kind": "message", "authorId": bob, "recipientId": ann, "body": "hi ann"})).await;
    let chat = product.start("pair", &[&ann, &bob]).await;
    assert_eq!(product.say(&chat, &ann, "from ann").await.status(), 201);
    let group = json(
        app.post("/scim/v2/Groups", &json!({"displayName": "team", "members": [{"value": ann}, {"value": bob}]})).await,
    )
    .await;
    // Active: linked, not marked.
    let before = product.content(&post).await["author"].clone();
    assert_eq!(before["state"], "active");
    assert_eq!(before["deactivated"], false);
    assert!(before.get("deactivatedAt").is_none());

    set_active(&app, &ann, false).await;
    let since = app.get_ok(&format!("/scim/v2/Users/{ann}")).await[ROSTER]["deactivatedAt"].clone();
    let group_path = format!("/api/v1/groups/{}", group["id"].as_str().unwrap());
    let seen = [
        product.content(&post).await["author"].clone(),
        product.content(&to_ann).await["recipient"].clone(),
        product.conversation(&chat).await["members"][0].clone(),
        product.messages(&chat).await[0]["sender"].clone(),
        product.search("ann").await["people"][0].clone(),
        product.get(&group_path).await["members"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == ann.as_str())
            .unwrap()
            .clone(),
    ];
    for (i, person) in seen.iter().enumerate() {
        let expected = json!({"id": ann, "name": "ann Person", "profile": person["profile"], "state": "deactivated",
            "deactivated": true, "deactivatedAt": since});
        assert_eq!(person, &expected, "place {i}");
        assert!(person["profile"].as_str().unwrap().ends_with(&format!("/Users/{ann}")));
    }
    // Bob, active, beside them is not marked.
    assert_eq!(product.conversation(&chat).await["members"][1]["deactivated"], false);
}

/// "When searching for the user, their profile and contents they created are still visible."
async fn searching_still_shows_a_deactivated_persons_profile_and_content(app: TestApp) {
    let product = Product::of(&app);
    let ann = person(&app, "ann").await;
    product.wrote(json!({"kind": "post", "authorId": ann, "body": "quarterly zqplan"})).await;
    set_active(&app, &ann, false).await;
    let found = product.search("ann").await;
    assert_eq!(found["people"][0]["id"], ann.as_str());
    let found = product.search("zqplan").await;
    assert_eq!(found["content"][0]["author"]["state"], "deactivated");
}

/// "After 4 days, group memberships are automatically removed … Beyond 4 days, it will not be
/// possible to restore group or chat membership": the sweep ends conversation memberships with
/// the group memberships; the messages stay. Reactivated within the grace period, a person
/// keeps them.
async fn chat_membership_ends_with_the_grace_period_and_the_messages_stay(app: TestApp) {
    let product = Product::of(&app);
    let (ann, bob, cat) = (person(&app, "ann").await, person(&app, "bob").await, person(&app, "cat").await);
    let chat = product.start("team", &[&ann, &bob, &cat]).await;
    assert_eq!(product.say(&chat, &ann, "ann's words").await.status(), 201);
    // Reactivated within the grace period: still a member.
    set_active(&app, &cat, false).await;
    app.clock.advance(Duration::days(2));
    set_active(&app, &cat, true).await;
    set_active(&app, &ann, false).await;
    app.clock.advance(Duration::days(2));
    product.sweep().await;
    assert_eq!(names(&product.conversation(&chat).await["members"]).len(), 3, "inside the grace period");
    app.clock.advance(Duration::days(2) + Duration::seconds(1));
    product.sweep().await;
    assert_eq!(names(&product.conversation(&chat).await["members"]), ["bob Person", "cat Person"]);
    assert_eq!(bodies(&product.messages(&chat).await), ["ann's words"]);
    // Beyond the grace period, reactivation does not restore it.
    set_active(&app, &ann, true).await;
    assert_eq!(names(&product.conversation(&chat).await["members"]), ["bob Person", "cat Person"]);
    assert_scim_error(product.say(&chat, &ann, "back").await, 403).await;
}

/// "Content in posts or comments would continue to show the user's original name but would not
/// link back to the user's profile" — the name they had when they became a Former Member, on
/// posts, comments, direct messages and conversation messages alike.
async fn content_continues_to_show_the_original_name_without_a_link(app: TestApp) {
    let product = Product::of(&app);
    let (ann, bob) = (person(&app, "ann").await, person(&app, "bob").await);
    let post = product.wrote(json!({"kind": "post", "authorId": ann, "body": "ann's post"})).await;
    let comment =
        product.wrote(json!({"kind": "comment", "authorId": ann, "body": "a comment", "parentId": post["id"]})).await;
    let to_bob = product.wrote(json!({"kind": "message", "authorId": ann, "recipientId": bob, "body": "hi"})).await;
    let to_ann = product.wrote(json!({"kind": "message", "authorId": bob, "recipientId": ann, "body": "hey"})).await;
    let chat = product.start("pair", &[&ann, &bob]).await;
    assert_eq!(product.say(&chat, &ann, "from ann").await.status(), 201);
    // Renamed before leaving: the name frozen is the last one.
    rename(&app, &ann, "Ann Married-Name").await;
    set_active(&app, &ann, false).await;
    app.clock.advance(Duration::days(4));
    become_former_member(&app, &ann).await;
    let frozen = json!({"name": "Ann Married-Name", "state": "formerMember"});
    for item in [&post, &comment, &to_bob] {
        assert_eq!(product.content(item).await["author"], frozen);
    }
    // The frozen name signs what they wrote; as a recipient they are a Former Member.
    let former = json!({"name": "Former Member", "state": "formerMember"});
    assert_eq!(product.content(&to_ann).await["recipient"], former);
    assert!(product.content(&to_ann).await.get("recipientId").is_none(), "no link to the account");
    assert_eq!(product.messages(&chat).await[0]["sender"], frozen);
    assert_eq!(names(&product.conversation(&chat).await["members"]), ["bob Person"], "no longer a member");
    // The frozen name is the one value kept, and it goes with the account.
    let frozen_names = || {
        let query = diesel::QueryDsl::count(roster::db::schema::former_member_names::table);
        diesel::RunQueryDsl::get_result::<i64>(query, &mut app.connection()).unwrap()
    };
    assert_eq!(frozen_names(), 1);
    assert_eq!(app.delete(&format!("/scim/v2/Users/{ann}")).await.status(), 204);
    assert_eq!(frozen_names(), 0);
    assert_eq!(product.content(&to_ann).await["recipient"], json!({"name": "Deleted account", "state": "deleted"}));
}

/// The name kept is a name: a person who only received messages leaves none, and one without a
/// displayName is shown and frozen under `name.formatted`, or given and family name, never under
/// the userName (often an email address); one with no name at all leaves "Former Member".
async fn only_an_authors_name_is_kept_and_never_the_user_name(app: TestApp) {
    let product = Product::of(&app);
    let bob = person(&app, "bob").await;
    let create = |body: Value| async { app.create_user(body).await["id"].as_str().unwrap().to_owned() };
    let formatted = create(json!({"userName": "f@example.com", "name": {"formatted": "Fay Formatted"}})).await;
    let parts = create(json!({"userName": "p@example.com", "name": {"givenName": "Pat", "familyName": "Parts"}})).await;
    let nameless = create(json!({"userName": "n@example.com"})).await;
    let reader = create(json!({"userName": "r@example.com", "displayName": "Rita Reader"})).await;
    let mut items = Vec::new();
    for author in [&formatted, &parts, &nameless] {
        items.push(product.wrote(json!({"kind": "post", "authorId": author, "body": "a post"})).await);
    }
    let to_reader =
        product.wrote(json!({"kind": "message", "authorId": bob, "recipientId": reader, "body": "hi"})).await;
    let authors: Vec<Value> = {
        let mut out = Vec::new();
        for item in &items {
            out.push(product.content(item).await["author"]["name"].clone());
        }
        out
    };
    assert_eq!(authors, ["Fay Formatted", "Pat Parts", "n@example.com"]);
    for id in [&formatted, &parts, &nameless, &reader] {
        set_active(&app, id, false).await;
    }
    app.clock.advance(Duration::days(4));
    for id in [&formatted, &parts, &nameless, &reader] {
        become_former_member(&app, id).await;
    }
    let mut authors = Vec::new();
    for item in &items {
        authors.push(product.content(item).await["author"]["name"].clone());
    }
    assert_eq!(authors, ["Fay Formatted", "Pat Parts", "Former Member"]);
    assert_eq!(product.content(&to_reader).await["recipient"]["name"], "Former Member");
    let frozen_names = {
        let query = diesel::QueryDsl::count(roster::db::schema::former_member_names::table);
        diesel::RunQueryDsl::get_result::<i64>(query, &mut app.connection()).unwrap()
    };
    assert_eq!(frozen_names, 2, "the authors with a name; not the nameless one, not the reader");
}

/// "This will retain posts, comments and messages from the user, but will remove other
/// information … and the users will appear as Former Members": search finds the account only
/// as "Former Member", never by its old name.
async fn former_members_appear_as_former_members_and_keep_their_messages(app: TestApp) {
    let product = Product::of(&app);
    let (ann, bob) = (person(&app, "zqann").await, person(&app, "bob").await);
    let chat = product.start("pair", &[&ann, &bob]).await;
    assert_eq!(product.say(&chat, &ann, "kept words").await.status(), 201);
    set_active(&app, &ann, false).await;
    app.clock.advance(Duration::days(4));
    become_former_member(&app, &ann).await;
    assert!(product.search("zqann").await["people"].as_array().unwrap().is_empty());
    let found = product.search("former").await["people"].clone();
    assert_eq!(found, json!([{"name": "Former Member", "state": "formerMember"}]));
    assert_eq!(bodies(&product.messages(&chat).await), ["kept words"]);
    assert_eq!(product.say(&chat, &bob, "bob still talks").await.status(), 201);
}

/// A name follows the person while the account exists: renamed, their old posts, messages and
/// conversation messages show the new name (nothing keeps a stale copy).
async fn an_active_person_renamed_shows_the_current_name_on_old_content(app: TestApp) {
    let product = Product::of(&app);
    let (ann, bob) = (person(&app, "ann").await, person(&app, "bob").await);
    let post = product.wrote(json!({"kind": "post", "authorId": ann, "body": "old post"})).await;
    let chat = product.start("pair", &[&ann, &bob]).await;
    assert_eq!(product.say(&chat, &ann, "old message").await.status(), 201);
    rename(&app, &ann, "Ann Renamed").await;
    assert_eq!(product.content(&post).await["author"]["name"], "Ann Renamed");
    assert_eq!(product.messages(&chat).await[0]["sender"]["name"], "Ann Renamed");
    assert_eq!(product.conversation(&chat).await["members"][0]["name"], "Ann Renamed");
}

/// Deletion: "the user's posts, comments and messages are deleted permanently" — from every
/// conversation too, in the deletion's transaction; the conversations go on for the others.
async fn a_deletion_removes_the_persons_messages_from_every_conversation(app: TestApp) {
    let product = Product::of(&app);
    let (ann, bob) = (person(&app, "ann").await, person(&app, "bob").await);
    let one = product.start("one", &[&ann, &bob]).await;
    let two = product.start("two", &[&ann, &bob]).await;
    for chat in [&one, &two] {
        assert_eq!(product.say(chat, &ann, "from ann").await.status(), 201);
        assert_eq!(product.say(chat, &bob, "from bob").await.status(), 201);
    }
    assert_eq!(app.delete(&format!("/scim/v2/Users/{ann}")).await.status(), 204);
    for chat in [&one, &two] {
        assert_eq!(bodies(&product.messages(chat).await), ["from bob"]);
        assert_eq!(names(&product.conversation(chat).await["members"]), ["bob Person"]);
        assert_eq!(product.say(chat, &bob, "still here").await.status(), 201);
    }
    let mut conn = app.connection();
    let left: i64 = diesel::RunQueryDsl::get_result(
        diesel::QueryDsl::count(roster::db::schema::conversation_messages::table),
        &mut conn,
    )
    .unwrap();
    assert_eq!(left, 4, "no row of ann's messages is left");
}

/// "Their coworkers won't be able to see the account": a message someone sent to a person who
/// is deleted since shows the same neutral placeholder as recipient, wherever it is shown.
async fn coworkers_wont_see_a_deleted_account(app: TestApp) {
    let product = Product::of(&app);
    let (ann, bob) = (person(&app, "zqann").await, person(&app, "bob").await);
    let to_ann =
        product.wrote(json!({"kind": "message", "authorId": bob, "recipientId": ann, "body": "zqnote to ann"})).await;
    let group = json(
        app.post("/scim/v2/Groups", &json!({"displayName": "team", "members": [{"value": ann}, {"value": bob}]})).await,
    )
    .await;
    assert_eq!(app.delete(&format!("/scim/v2/Users/{ann}")).await.status(), 204);
    let placeholder = json!({"name": "Deleted account", "state": "deleted"});
    let seen = product.content(&to_ann).await;
    assert_eq!(seen["recipient"], placeholder);
    assert!(seen.get("recipientId").is_none());
    assert_eq!(product.search("zqnote").await["content"][0]["recipient"], placeholder);
    assert!(product.search("zqann").await["people"].as_array().unwrap().is_empty());
    let group = product.get(&format!("/api/v1/groups/{}", group["id"].as_str().unwrap())).await;
    assert_eq!(names(&group["members"]), ["bob Person"]);
}

/// "Any content from other users that is dependent on the deleted user's content (comments on
/// the deleted user's posts) will also be deleted."
async fn comments_on_a_deleted_persons_posts_are_deleted_too(app: TestApp) {
    let product = Product::of(&app);
    let (ann, bob) = (person(&app, "ann").await, person(&app, "bob").await);
    let post = product.wrote(json!({"kind": "post", "authorId": ann, "body": "ann's post"})).await;
    let reply =
        product.wrote(json!({"kind": "comment", "authorId": bob, "body": "reply", "parentId": post["id"]})).await;
    let own = product.wrote(json!({"kind": "post", "authorId": bob, "body": "bob's own"})).await;
    assert_eq!(app.delete(&format!("/scim/v2/Users/{ann}")).await.status(), 204);
    for gone in [&post, &reply] {
        let path = format!("/api/v1/content/{}", gone["id"].as_str().unwrap());
        assert_scim_error(product.call(reqwest::Method::GET, &path, None).await, 404).await;
    }
    assert_eq!(product.content(&own).await["author"]["name"], "bob Person");
}

/// Messages page by cursor, oldest first; a page ends where the next begins.
async fn conversation_messages_page_by_cursor(app: TestApp) {
    let product = Product::of(&app);
    let (ann, bob) = (person(&app, "ann").await, person(&app, "bob").await);
    let chat = product.start("busy", &[&ann, &bob]).await;
    for i in 0..5 {
        assert_eq!(product.say(&chat, if i % 2 == 0 { &ann } else { &bob }, &format!("m{i}")).await.status(), 201);
    }
    let path = format!("/api/v1/conversations/{}/messages", chat["id"].as_str().unwrap());
    let (mut after, mut seen) = (0, Vec::new());
    loop {
        let page = product.get(&format!("{path}?after={after}&limit=2")).await;
        let messages = page["messages"].as_array().unwrap().clone();
        if messages.is_empty() {
            assert_eq!(page["next"], after, "an empty page keeps the cursor");
            break;
        }
        assert!(messages.len() <= 2);
        seen.extend(messages.iter().map(|m| m["body"].as_str().unwrap().to_owned()));
        after = page["next"].as_i64().unwrap();
    }
    assert_eq!(seen, ["m0", "m1", "m2", "m3", "m4"]);
    assert_scim_error(product.call(reqwest::Method::GET, &format!("{path}?after=-1"), None).await, 400).await;
    let empty = product.say(&chat, &ann, "   ").await;
    assert_scim_error(empty, 400).await;
    let none = product.call(reqwest::Method::POST, "/api/v1/conversations", Some(json!({"memberIds": []}))).await;
    assert_scim_error(none, 400).await;
    let blank = json!({"title": "  ", "memberIds": [ann]});
    let blank = product.call(reqwest::Method::POST, "/api/v1/conversations", Some(blank)).await;
    assert!(assert_scim_error(blank, 400).await["detail"].as_str().unwrap().contains("title"));
}

/// Another tenant's conversations, people and groups are not there for a token of this one
/// (404, never 403), whatever ids it sends.
async fn conversations_are_tenant_isolated(app: TestApp) {
    let product = Product::of(&app);
    let (ann, bob) = (person(&app, "ann").await, person(&app, "bob").await);
    let chat = product.start("ours", &[&ann, &bob]).await;
    assert_eq!(product.say(&chat, &ann, "secret").await.status(), 201);
    let group =
        json(app.post("/scim/v2/Groups", &json!({"displayName": "team", "members": [{"value": ann}]})).await).await;
    roster::db::tenants::create(&mut app.connection(), "globex").unwrap();
    let other = Product { token: app.issue_token("globex", "product", "content"), app: &app };
    let eve = app
        .client
        .post(app.url("/scim/v2/Users"))
        .bearer_auth(app.issue_token("globex", "idp", "scim"))
        .json(&json!({"userName": "eve"}))
        .send()
        .await
        .unwrap();
    let eve = json(eve).await["id"].as_str().unwrap().to_owned();
    let id = chat["id"].as_str().unwrap();
    for (method, path, body) in [
        (reqwest::Method::GET, format!("/api/v1/conversations/{id}"), None),
        (reqwest::Method::GET, format!("/api/v1/conversations/{id}/messages"), None),
        (
            reqwest::Method::POST,
            format!("/api/v1/conversations/{id}/messages"),
            Some(json!({"senderId": eve, "body": "x"})),
        ),
        (reqwest::Method::POST, format!("/api/v1/conversations/{id}/members"), Some(json!({"userId": eve}))),
        (reqwest::Method::DELETE, format!("/api/v1/conversations/{id}/members/{ann}"), None),
        (reqwest::Method::GET, format!("/api/v1/groups/{}", group["id"].as_str().unwrap()), None),
    ] {
        assert_scim_error(other.call(method, &path, body).await, 404).await;
    }
    // Nor can this tenant's people be put into another tenant's conversation.
    let res = other.call(reqwest::Method::POST, "/api/v1/conversations", Some(json!({"memberIds": [eve, ann]}))).await;
    assert_scim_error(res, 404).await;
    assert_eq!(names(&product.conversation(&chat).await["members"]), ["ann Person", "bob Person"]);
    assert_eq!(bodies(&product.messages(&chat).await), ["secret"]);
    // A member leaves; leaving twice is 404.
    let path = format!("/api/v1/conversations/{id}/members/{bob}");
    assert_eq!(product.call(reqwest::Method::DELETE, &path, None).await.status(), 204);
    assert_scim_error(product.call(reqwest::Method::DELETE, &path, None).await, 404).await;
}

/// Removed means gone below HTTP: what a deleted person said in conversations leaves no bytes
/// in the database files, and a Former Member leaves only the frozen name.
async fn a_deleted_persons_conversation_messages_are_gone_from_the_disk(backend: Backend) {
    let Some(db) = TestDatabase::create_isolated(backend) else { return };
    let app = TestApp::spawn_with(db, |_| {}).await;
    let product = Product::of(&app);
    let (ann, bob) = (person(&app, "ann").await, person(&app, "bob").await);
    let chat = product.start("team", &[&ann, &bob]).await;
    assert_eq!(product.say(&chat, &ann, "zqgone-conversation-words").await.status(), 201);
    assert_eq!(product.say(&chat, &bob, "zqkept-conversation-words").await.status(), 201);
    assert_eq!(app.delete(&format!("/scim/v2/Users/{ann}")).await.status(), 204);
    crate::storage::gone_from_disk(&app, &["zqgone-conversation-words".to_owned()]).await;
    assert_eq!(bodies(&product.messages(&chat).await), ["zqkept-conversation-words"]);
}

/// Messages posted at once by several members are all there, each once, in one order that
/// paging follows: one conversation's messages are written one at a time.
async fn concurrent_messages_are_paged_each_once(app: TestApp) {
    let product = Product::of(&app);
    let (ann, bob) = (person(&app, "ann").await, person(&app, "bob").await);
    let chat = product.start("busy", &[&ann, &bob]).await;
    let posts = (0..20).map(|i| {
        let (sender, body) = (if i % 2 == 0 { ann.clone() } else { bob.clone() }, format!("m{i}"));
        let chat = &chat;
        let product = &product;
        async move { product.say(chat, &sender, &body).await.status().as_u16() }
    });
    assert!(futures_util::future::join_all(posts).await.iter().all(|s| *s == 201));
    let path = format!("/api/v1/conversations/{}/messages", chat["id"].as_str().unwrap());
    let (mut after, mut seen) = (0, Vec::new());
    loop {
        let page = product.get(&format!("{path}?after={after}&limit=3")).await;
        let messages = page["messages"].as_array().unwrap();
        if messages.is_empty() {
            break;
        }
        seen.extend(messages.iter().map(|m| m["body"].as_str().unwrap().to_owned()));
        after = page["next"].as_i64().unwrap();
    }
    seen.sort();
    let mut expected: Vec<String> = (0..20).map(|i| format!("m{i}")).collect();
    expected.sort();
    assert_eq!(seen, expected);
}

/// A message posted while its sender is being deleted lands before the deletion (and goes with
/// it), finds the sender deactivated (the deletion's first step) or finds no sender: 201, 403 or
/// 404, never a server error, and nothing of theirs is left.
async fn a_message_racing_the_deletion_of_its_sender_never_fails_the_server(app: TestApp) {
    let product = Product::of(&app);
    let bob = person(&app, "bob").await;
    for round in 0..10 {
        let ann = person(&app, &format!("ann{round}")).await;
        let chat = product.start("race", &[&ann, &bob]).await;
        let posts = futures_util::future::join_all((0..4).map(|_| product.say(&chat, &ann, "racing")));
        let path = format!("/scim/v2/Users/{ann}");
        let (deleted, posts) = tokio::join!(app.delete(&path), posts);
        assert_eq!(deleted.status(), 204);
        for res in posts {
            let status = res.status().as_u16();
            assert!([201, 403, 404].contains(&status), "round {round}: {status} {}", res.text().await.unwrap());
        }
        assert!(product.messages(&chat).await.is_empty(), "round {round}");
    }
}

/// With the tenant's archive export on, what a person said in conversations is in the export
/// written to the tenant's archive directory before the deletion, like everything else they wrote.
async fn the_archive_export_includes_conversation_messages(app: TestApp) {
    let dir = std::env::temp_dir().join(format!("roster_t_{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let change = roster::db::tenants::PolicyChange {
        archive_export: Some(true),
        archive_dir: Some(Some(dir.to_string_lossy().into_owned())),
        ..Default::default()
    };
    roster::db::tenants::set_policy(&mut app.connection(), "default", &change).unwrap();
    let product = Product::of(&app);
    let (ann, bob) = (person(&app, "ann").await, person(&app, "bob").await);
    let chat = product.start("team", &[&ann, &bob]).await;
    assert_eq!(product.say(&chat, &ann, "for the archive").await.status(), 201);
    product.wrote(json!({"kind": "post", "authorId": ann, "body": "a post"})).await;
    assert_eq!(app.delete(&format!("/scim/v2/Users/{ann}")).await.status(), 204);
    // The sweep's archive sink writes the export; only then has it left Roster.
    let admin = Product { token: app.issue_token("default", "sweeper", "admin"), app: &app };
    let swept = admin.app.client.post(app.url("/api/v1/admin/sweep")).bearer_auth(&admin.token).send().await.unwrap();
    assert!(swept.status().is_success(), "sweep: {}", swept.status());
    let text = std::fs::read_to_string(dir.join(format!("{ann}.jsonl"))).expect("the export file");
    let items: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let said = items.iter().find(|i| i["kind"] == "conversationMessage").expect("the conversation message");
    assert_eq!(said["body"], "for the archive");
    assert_eq!(said["conversationId"], chat["id"]);
    assert!(items.iter().any(|i| i["kind"] == "post"));
    std::fs::remove_dir_all(&dir).ok();
}

both_backends!(
    group_chat_conversations_wont_be_disrupted,
    no_one_can_send_new_messages_directly_to_a_deactivated_person,
    content_created_by_a_deactivated_user_remains_visible_to_coworkers,
    users_see_an_indication_that_the_profile_has_been_deactivated,
    searching_still_shows_a_deactivated_persons_profile_and_content,
    chat_membership_ends_with_the_grace_period_and_the_messages_stay,
    content_continues_to_show_the_original_name_without_a_link,
    former_members_appear_as_former_members_and_keep_their_messages,
    only_an_authors_name_is_kept_and_never_the_user_name,
    an_active_person_renamed_shows_the_current_name_on_old_content,
    a_deletion_removes_the_persons_messages_from_every_conversation,
    coworkers_wont_see_a_deleted_account,
    comments_on_a_deleted_persons_posts_are_deleted_too,
    conversation_messages_page_by_cursor,
    conversations_are_tenant_isolated,
    concurrent_messages_are_paged_each_once,
    a_message_racing_the_deletion_of_its_sender_never_fails_the_server,
    the_archive_export_includes_conversation_messages,
);
both_backends!(by_backend: a_deleted_persons_conversation_messages_are_gone_from_the_disk);
