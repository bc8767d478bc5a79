#!/usr/bin/env python3
"""Writes the upgrade fixtures of one Roster release: an SQLite database file, a PostgreSQL dump and
a manifest of what they hold, each written by that release's own `roster` binary through its HTTP
API and command line, for `tests/api/upgrade.rs` to migrate with the current code.

    git worktree add ../roster-c9fb648 c9fb648
    (cd ../roster-c9fb648 && cargo build --bin roster)
    scripts/make-upgrade-fixtures.py --roster ../roster-c9fb648/target/debug/roster --release c9fb648

Every release that changes the schema adds its own fixtures this way (tests/fixtures/README.md).
A later release may extend `populate` with what its schema adds, as long as the calls it makes
exist in that release. Needs Python 3 (standard library only), and for PostgreSQL `createdb`,
`dropdb` and `pg_dump` reaching `--postgres` (default the tests' server) with rights to create a
database.
"""

import argparse
import base64
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROSTER = "urn:ietf:params:scim:schemas:extension:roster:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


class Server:
    """One `roster serve` of the release, on a free loopback port, with its key generated and
    kept in the database (no ROSTER_TOKEN_SECRET): the fixture then holds the key its tokens
    were signed with, as a deployment without `token_secret` does."""

    def __init__(self, binary, database_url):
        self.binary = binary
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ROSTER_")}
        self.env["ROSTER_DATABASE_URL"] = database_url
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.base = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [binary, "serve", "--listen", f"127.0.0.1:{port}", "--sweep-interval-secs", "0", "--workers", "1"],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(300):
            try:
                with urllib.request.urlopen(self.base + "/healthz", timeout=1):
                    return
            except OSError:
                if self.process.poll() is not None:
                    sys.exit(f"roster serve exited with {self.process.returncode}")
                time.sleep(0.1)
        sys.exit("roster serve did not answer /healthz")

    def cli(self, *args):
        out = subprocess.run([self.binary, *args], env=self.env, capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"roster {' '.join(args)} failed: {out.stderr}")
        return out.stdout.strip()

    def call(self, method, path, token, body=None, expect=(200,)):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {token}")
        if data is not None:
            req.add_header("Content-Type", "application/scim+json")
        try:
            with urllib.request.urlopen(req, timeout=30) as res:
                status, text = res.status, res.read().decode()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read().decode()
        if status not in expect:
            sys.exit(f"{method} {path}: {status} {text}")
        return json.loads(text) if text else None

    def raw(self, method, path, data=None, headers=None):
        """One request without following redirects; returns status, headers and body."""
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers or {})
        opener = urllib.request.build_opener(NoRedirect)
        try:
            with opener.open(req, timeout=30) as res:
                return res.status, res.headers, res.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read().decode()

    def stop(self):
        # SIGTERM: a graceful shutdown, so SQLite checkpoints and closes its WAL.
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    """The panel's sign-in answers 303 with the session cookie: read it, do not follow."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class Receiver:
    """A webhook endpoint on loopback that answers 204 to every delivery and keeps the
    `webhook-id` of each, so the fixture holds deliveries the release completed."""

    def __init__(self):
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("content-length") or 0))
                received.append(self.headers.get("webhook-id"))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/hook"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def stop(self):
        self.http.shutdown()
        self.http.server_close()


def table(text):
    """The tab-separated listing a `roster … list` command prints, as one dict per row."""
    lines = text.splitlines()
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"))) for line in lines[1:]]


def fields(text):
    """`key: value` or `key<TAB>value` lines, as `roster client create` and `roster webhook add`
    print them."""
    pairs = (re.split(r":\s+|\t", line, maxsplit=1) for line in text.splitlines())
    return {pair[0]: pair[1] for pair in pairs if len(pair) == 2}


def jti(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["jti"]


def populate(server, receiver, archive_dir):
    """Users in every lifecycle state, groups, sessions, content, conversations, events, audit
    entries and tokens in two tenants whose writes interleave; from 3cdfb82 on also webhooks and
    their deliveries (to `receiver`), an OAuth client, an export waiting for the archive and Admin
    Panel sessions. Returns the manifest: what a client saw."""
    cli = server.cli
    # Options a release lacks are refused by its command line: ask its help what it knows.
    commands = cli("--help")
    modern = "webhook" in commands
    cli("tenant", "create", "acme")
    cli("tenant", "set", "acme", "--delete-policy", "deactivate-only")
    # No grace while the states that need it passed are written; 4 days again at the end, so the
    # one deactivated last still has memberships pending removal.
    cli("tenant", "set", "default", "--grace-days", "0")
    tokens = {
        "scim": cli("token", "issue", "--tenant", "default", "--name", "okta-prod", "--scope", "scim"),
        "product": cli("token", "issue", "--tenant", "default", "--name", "product",
                       "--scope", "sessions,content,events,admin"),
        "revoked": cli("token", "issue", "--tenant", "default", "--name", "retired-idp", "--scope", "scim"),
        "acme_scim": cli("token", "issue", "--tenant", "acme", "--name", "acme-idp", "--scope", "scim"),
        "acme_product": cli("token", "issue", "--tenant", "acme", "--name", "acme-product",
                            "--scope", "sessions,content,events,admin"),
    }
    cli("token", "revoke", jti(tokens["revoked"]))
    scim, product = tokens["scim"], tokens["product"]
    webhooks = {}
    if modern:
        # Every event of default from here on, and acme's deactivations only.
        webhooks["default"] = fields(cli("webhook", "add", "--tenant", "default", "--url", receiver.url,
                                         "--allow-private"))
        webhooks["acme"] = fields(cli("webhook", "add", "--tenant", "acme", "--url", receiver.url,
                                      "--events", "user.deactivated", "--allow-private"))

    def create_user(token, name, extra=None):
        body = {"schemas": [USER, ENTERPRISE], "userName": name, "externalId": f"ext-{name}",
                "displayName": f"{name.split('.')[0].title()} Example",
                "name": {"givenName": name.split(".")[0].title(), "familyName": "Example"},
                "title": "Engineer", "emails": [{"value": f"{name}@example.com", "type": "work", "primary": True}],
                "phoneNumbers": [{"value": "+1-555-0100", "type": "work"}],
                ENTERPRISE: {"department": "R&D", "employeeNumber": str(len(name))}}
        body.update(extra or {})
        return server.call("POST", "/scim/v2/Users", token, body, expect=(201,))["id"]

    def patch_user(token, uid, operations):
        return server.call("PATCH", f"/scim/v2/Users/{uid}", token, {"schemas": [PATCH], "Operations": operations})

    users = {}
    users["alice.active"] = create_user(scim, "alice.active", {
        "addresses": [{"type": "work", "streetAddress": "1 Main St", "locality": "Springfield", "country": "US"}],
        "preferredLanguage": "en-GB", "timezone": "Europe/London"})
    users["ann.acme"] = create_user(tokens["acme_scim"], "ann.acme")
    users["bob.deactivated"] = create_user(scim, "bob.deactivated")
    users["carol.membershipsremoved"] = create_user(scim, "carol.membershipsremoved")
    users["zed.softdeleted"] = create_user(tokens["acme_scim"], "zed.softdeleted")
    users["dave.formermember"] = create_user(scim, "dave.formermember")
    users["erin.deleted"] = create_user(scim, "erin.deleted")
    users["frank.reactivated"] = create_user(scim, "frank.reactivated")

    def create_group(token, name, members):
        body = {"schemas": [GROUP], "displayName": name, "externalId": f"ext-{name}",
                "members": [{"value": users[m]} for m in members]}
        return server.call("POST", "/scim/v2/Groups", token, body, expect=(201,))["id"]

    groups = {
        "Engineering": create_group(scim, "Engineering",
                                    ["alice.active", "bob.deactivated", "carol.membershipsremoved", "dave.formermember"]),
        "Everyone": create_group(scim, "Everyone", ["alice.active", "erin.deleted", "frank.reactivated"]),
        "Acme staff": create_group(tokens["acme_scim"], "Acme staff", ["ann.acme", "zed.softdeleted"]),
    }

    sessions = {}
    for name in ["alice.active", "bob.deactivated", "carol.membershipsremoved", "dave.formermember"]:
        opened = server.call("POST", "/api/v1/sessions", product, {"userId": users[name]}, expect=(201,))
        sessions[name] = {"id": opened["id"], "token": opened["token"]}

    def write(token, kind, author, body, **extra):
        item = {"kind": kind, "authorId": users[author], "body": body, **extra}
        return server.call("POST", "/api/v1/content", token, item, expect=(201,))["id"]

    content = {}
    content["alice-post"] = write(product, "post", "alice.active", "Quarterly plan")
    content["bob-comment"] = write(product, "comment", "bob.deactivated", "Looks good", parentId=content["alice-post"])
    content["dave-post"] = write(product, "post", "dave.formermember", "Handover notes")
    content["erin-post"] = write(product, "post", "erin.deleted", "Erin's last post")
    content["alice-message"] = write(product, "message", "alice.active", "Welcome back",
                                     recipientId=users["frank.reactivated"])
    content["ann-post"] = write(tokens["acme_product"], "post", "ann.acme", "Acme news")

    conversations = {}
    if modern:
        def converse(token, title, members, messages):
            body = {"title": title, "memberIds": [users[m] for m in members]}
            cid = server.call("POST", "/api/v1/conversations", token, body, expect=(201,))["id"]
            for sender, text in messages:
                server.call("POST", f"/api/v1/conversations/{cid}/messages", token,
                            {"senderId": users[sender], "body": text}, expect=(201,))
            return cid

        # Everyone in it meets a different fate below: bob stays a member through his grace period,
        # dave leaves it as a Former Member and keeps his name on his message, erin's message goes
        # with her deletion.
        conversations["Launch"] = converse(
            product, "Launch", ["alice.active", "bob.deactivated", "dave.formermember", "erin.deleted",
                                "frank.reactivated"],
            [("alice.active", "Kick-off at ten"), ("bob.deactivated", "On my way"),
             ("dave.formermember", "Slides are in the handover notes"), ("erin.deleted", "Running late"),
             ("frank.reactivated", "Saved you a seat")])
        conversations["Acme desk"] = converse(tokens["acme_product"], "Acme desk", ["ann.acme", "zed.softdeleted"],
                                              [("ann.acme", "Desk moves on Friday"), ("zed.softdeleted", "Noted")])

    oauth = {}
    if modern:
        # The longest secret lifetime the release allows, so the fixture's client outlives its tests.
        created = fields(cli("client", "create", "--tenant", "default", "--name", "entra-prod", "--scope", "scim",
                             "--secret-expires", "1098d"))
        basic = base64.b64encode(f"{created['client_id']}:{created['client_secret']}".encode()).decode()
        status, _, text = server.raw("POST", "/oauth/token", b"grant_type=client_credentials&scope=scim",
                                     {"Authorization": f"Basic {basic}",
                                      "Content-Type": "application/x-www-form-urlencoded"})
        if status != 200:
            sys.exit(f"POST /oauth/token: {status} {text}")
        answer = json.loads(text)
        server.call("GET", "/scim/v2/Users?count=0", answer["access_token"])
        oauth = {"client_id": created["client_id"], "client_secret": created["client_secret"],
                 "token": {k: v for k, v in answer.items() if k != "access_token"}}

    # Okta's form, then Entra's: op and booleans in the case each sends.
    patch_user(scim, users["carol.membershipsremoved"], [{"op": "replace", "value": {"active": False}}])
    patch_user(scim, users["dave.formermember"], [{"op": "Replace", "path": "active", "value": "False"}])
    sweep = server.call("POST", "/api/v1/admin/sweep", product)
    patch_user(scim, users["dave.formermember"], [{"op": "replace", "path": f"{ROSTER}:formerMember", "value": True}])
    # Active under deactivate-then-delete: deactivated and deleted in one transaction.
    server.call("DELETE", f"/scim/v2/Users/{users['erin.deleted']}", scim, expect=(204,))
    patch_user(scim, users["frank.reactivated"], [{"op": "replace", "path": "active", "value": False}])
    patch_user(scim, users["frank.reactivated"], [{"op": "replace", "path": "active", "value": True}])
    # acme deletes under deactivate-only: this release only deactivates, and records nothing else.
    server.call("DELETE", f"/scim/v2/Users/{users['zed.softdeleted']}", tokens["acme_scim"], expect=(204,))
    if modern:
        # acme keeps its events 30 days and exports an account to its archive directory before
        # deleting it; the sweep that would write the export does not run here, so it waits in
        # the database. acme deletes under deactivate-then-delete just for yan.
        cli("tenant", "set", "acme", "--event-retention", "30d", "--archive-dir", archive_dir,
            "--archive-export", "true", "--archive-hold", "48h", "--delete-policy", "deactivate-then-delete")
        users["yan.archived"] = create_user(tokens["acme_scim"], "yan.archived")
        content["yan-post"] = write(tokens["acme_product"], "post", "yan.archived", "Archive me")
        server.call("DELETE", f"/scim/v2/Users/{users['yan.archived']}", tokens["acme_scim"], expect=(204,))
        cli("tenant", "set", "acme", "--delete-policy", "deactivate-only")
    cli("tenant", "set", "default", "--grace-days", "4")
    patch_user(scim, users["bob.deactivated"], [{"op": "Replace", "path": "active", "value": "False"}])

    product_of = {"default": product, "acme": tokens["acme_product"]}
    admin = {}
    if modern:
        # One link spent on a session (its cookie), one left unspent; both for 24 hours.
        def link(tenant, name):
            url = cli("admin", "link", "--tenant", tenant, "--name", name, "--expires", "24h",
                      "--public-url", server.base)
            return urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["token"][0]

        spent = link("default", "fixture-admin")
        status, headers, text = server.raw("POST", "/admin/signin", urllib.parse.urlencode({"token": spent}).encode(),
                                           {"Content-Type": "application/x-www-form-urlencoded"})
        if status != 303:
            sys.exit(f"POST /admin/signin: {status} {text}")
        cookie = headers["Set-Cookie"].split(";")[0]
        status, _, page = server.raw("GET", "/admin/people", headers={"Cookie": cookie})
        if status != 200:
            sys.exit(f"GET /admin/people: {status}")
        admin = {"cookie": cookie, "people": page.count('href="/admin/people/'),
                 "unspent_link": link("acme", "acme-admin"),
                 "sessions": table(cli("admin", "sessions"))}

        # Done once each webhook has delivered every event it asked for: default's was added
        # before the first event, acme's takes its deactivations. The server looks for work every
        # second (it was told of none: the webhooks came from the command line).
        def wanted(tenant):
            feed = server.call("GET", "/api/v1/events?after=0&limit=1000", product_of[tenant])["events"]
            return sorted(e["id"] for e in feed if tenant == "default" or e["type"] == "user.deactivated")

        def delivered(tenant):
            log = table(cli("webhook", "deliveries", "--tenant", tenant, "--limit", "1000"))
            return sorted(int(d["event"]) for d in log if d["status"] == "delivered")

        for _ in range(600):
            if all(delivered(tenant) == wanted(tenant) for tenant in webhooks):
                break
            time.sleep(0.1)
        else:
            sys.exit("the webhooks' deliveries did not all arrive within a minute")
        for tenant, hook in webhooks.items():
            hook["deliveries"] = sorted(
                ({"event": int(d["event"]), "status": d["status"]}
                 for d in table(cli("webhook", "deliveries", "--tenant", tenant, "--limit", "1000"))),
                key=lambda d: d["event"])
        if len(receiver.received) != sum(len(h["deliveries"]) for h in webhooks.values()):
            sys.exit(f"the receiver got {len(receiver.received)} requests for the deliveries listed")

    def read(token, path, expect=(200,)):
        return server.call("GET", path, token, expect=expect)

    def tenant_of(name):
        return "acme" if name in ("ann.acme", "zed.softdeleted", "yan.archived") else "default"

    token_of = {"default": scim, "acme": tokens["acme_scim"]}
    acme_content = ("ann-post", "yan-post")
    extra = {}
    if modern:
        extra = {
            # When the last write was made: a reader may set its clock back to it, to use what
            # had not expired yet (the admin session, the unspent link, the export's hold).
            "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "conversations": {
                title: {"id": cid, "tenant": "acme" if title == "Acme desk" else "default",
                        "seen": read(product_of["acme" if title == "Acme desk" else "default"],
                                     f"/api/v1/conversations/{cid}"),
                        "messages": read(product_of["acme" if title == "Acme desk" else "default"],
                                         f"/api/v1/conversations/{cid}/messages")}
                for title, cid in conversations.items()},
            "oauth": oauth,
            "webhooks": webhooks,
            "admin": admin,
            "tenants": {t["name"]: t for t in table(cli("tenant", "list"))},
        }
    return extra | {
        # Links in what was seen start with this origin; a reader compares them with its own.
        "origin": server.base,
        "tokens": tokens,
        "users": {name: {"id": uid, "tenant": tenant_of(name),
                         "seen": read(token_of[tenant_of(name)], f"/scim/v2/Users/{uid}", expect=(200, 404))}
                  for name, uid in users.items()},
        "groups": {name: {"id": gid, "seen": read(token_of["acme" if name == "Acme staff" else "default"],
                                                   f"/scim/v2/Groups/{gid}")}
                   for name, gid in groups.items()},
        "sessions": sessions,
        "content": {key: {"id": cid, "seen": read(product_of["acme" if key in acme_content else "default"],
                                                   f"/api/v1/content/{cid}", expect=(200, 404))}
                    for key, cid in content.items()},
        "sweep": sweep,
        "events": {tenant: read(product_of[tenant], "/api/v1/events?after=0&limit=1000")["events"]
                   for tenant in ("default", "acme")},
        "audit": {tenant: read(product_of[tenant], "/api/v1/audit?after=0&limit=1000")["entries"]
                  for tenant in ("default", "acme")},
    }


def write(binary, database_url):
    """Populates the database at `database_url` with a server of the release, beside a webhook
    receiver and an archive directory that live only as long as the writing (the sweep that would
    use the directory does not run: the export stays in the database)."""
    receiver = Receiver()
    archive_dir = tempfile.mkdtemp(prefix="roster-fixture-archive-")
    try:
        server = Server(binary, database_url)
        try:
            return populate(server, receiver, archive_dir)
        finally:
            server.stop()
    finally:
        receiver.stop()
        shutil.rmtree(archive_dir)


def sqlite_fixture(binary, out):
    folder = tempfile.mkdtemp(prefix="roster-fixture-")
    path = os.path.join(folder, "roster.db")
    try:
        manifest = write(binary, path)
        db = sqlite3.connect(path)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        # Rewritten without free pages, so the committed file stays small.
        db.execute("VACUUM")
        db.close()
        target = os.path.join(out, "roster.db")
        shutil.copyfile(path, target)
        os.chmod(target, 0o600)
        return manifest
    finally:
        shutil.rmtree(folder)


def postgres_fixture(binary, out, server_url, release):
    name = f"roster_fixture_{release}"
    parsed = urllib.parse.urlsplit(server_url)
    database_url = urllib.parse.urlunsplit(parsed._replace(path=f"/{name}"))
    subprocess.run(["dropdb", "--if-exists", "--maintenance-db", server_url, name], check=True)
    subprocess.run(["createdb", "--maintenance-db", server_url, name], check=True)
    try:
        manifest = write(binary, database_url)
        with open(os.path.join(out, "postgres.sql"), "w") as dump:
            subprocess.run(["pg_dump", "--format=plain", "--no-owner", "--no-privileges", "--dbname", database_url],
                           stdout=dump, check=True)
        return manifest
    finally:
        subprocess.run(["dropdb", "--if-exists", "--maintenance-db", server_url, name], check=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--roster", required=True, help="the release's roster binary")
    parser.add_argument("--release", required=True, help="the release's commit, names the fixture folder")
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432/postgres",
                        help="a database on the PostgreSQL server to create the fixture database beside")
    parser.add_argument("--out", help="default tests/fixtures/<release>")
    args = parser.parse_args()
    out = args.out or os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", args.release)
    os.makedirs(out, exist_ok=True)
    manifest = {
        "release": args.release,
        "sqlite": sqlite_fixture(args.roster, out),
        "postgres": postgres_fixture(args.roster, out, args.postgres, args.release),
    }
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
