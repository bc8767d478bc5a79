#!/usr/bin/env python3
"""One kill -9 durability run against `roster serve`; scripts/durability.sh runs it repeatedly on
SQLite and PostgreSQL.

The run:
 1. issues a token (`roster token issue`) and starts `roster serve` on the given database;
 2. drives concurrent load from several workers for a few seconds: creates, PATCHes (profile
    changes, `active` false/true in the RFC, Entra and path-less forms, profile and state in one
    operation), PUTs, session openings and deletes;
 3. sends SIGKILL to the server in the middle of the load;
 4. restarts it on the same database and checks what was acknowledged (2xx).

Each user is written by one worker only, so the writes to a user have a definite order. A request
that got no answer (the one a worker had in flight at the kill) may or may not have been applied:
it is "unknown", and the user's state must then equal either the state after the acknowledged
writes or that state with the unknown write applied whole. Checks after the restart:
 * every acknowledged create exists (by id, and by userName through a filter), every
   acknowledged delete is gone (404 and no userName match), and every user's tracked attributes
   equal the result of its acknowledged writes in order (an acknowledged PATCH is visible unless a
   later acknowledged write replaced it);
 * no transition is half-applied: `active` agrees with lifecycleState, a deactivated user has
   deactivatedAt and every session opened before the deactivation is closed, an active one has no
   deactivatedAt; sessions opened and not since revoked are still open;
 * the event feed and the audit log, replayed user by user, give each user's actual state; every
   acknowledged create, delete and deactivation has its event.

Prints one JSON object: the counts and the first violations. Exit status 1 when any violation was
found, 2 when the run itself failed.
"""

import argparse
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

ROSTER = "urn:ietf:params:scim:schemas:extension:roster:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
TRACKED = ("exists", "userName", "nickName", "title", "givenName", "active")


class RunFailed(Exception):
    pass


# ---------------------------------------------------------------------------
# The server


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def roster_env(db_url, port=None):
    env = dict(os.environ)
    env["ROSTER_DATABASE_URL"] = db_url
    env["ROSTER_SWEEP_INTERVAL_SECS"] = "0"
    env.setdefault("RUST_LOG", "warn")
    if port is not None:
        env["ROSTER_LISTEN"] = f"127.0.0.1:{port}"
    return env


def issue_token(binary, db_url):
    out = subprocess.run(
        [binary, "token", "issue", "--tenant", "default", "--name", "durability",
         "--scope", "scim,sessions,events,admin"],
        env=roster_env(db_url), capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise RunFailed(f"token issue failed: {out.stderr.strip()}")
    return out.stdout.strip().splitlines()[-1].strip()


class Server:
    def __init__(self, binary, db_url, log_path):
        self.binary, self.db_url, self.log_path = binary, db_url, log_path
        self.proc = None
        self.port = None

    def start(self):
        self.port = free_port()
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([self.binary, "serve"], env=roster_env(self.db_url, self.port),
                                     stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RunFailed(f"roster serve exited with {self.proc.returncode}; see {self.log_path}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    conn.close()
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RunFailed("roster serve did not answer /healthz within 120 s")

    def kill(self):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=35)
            except subprocess.TimeoutExpired:
                self.kill()


class Client:
    def __init__(self, port, token):
        self.port, self.token = port, token
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def call(self, method, path, body=None):
        headers = {"Authorization": f"Bearer {self.token}"}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/scim+json"
            data = json.dumps(body)
        self.conn.request(method, path, body=data, headers=headers)
        res = self.conn.getresponse()
        raw = res.read()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode("utf-8", "replace")
        return res.status, parsed

    def close(self):
        self.conn.close()


# ---------------------------------------------------------------------------
# The model: what each user should look like after its writes


def apply_write(state, write):
    """The tracked state after `write`, which is applied whole."""
    kind = write["kind"]
    if kind == "create":
        return {"exists": True, "userName": write["userName"], "nickName": None, "title": None,
                "givenName": write["givenName"], "active": write["active"]}
    if kind == "delete":
        return {"exists": False}
    if kind == "put":
        return dict(write["set"], exists=True, userName=state["userName"])
    if kind == "patch":
        new = dict(state)
        new.update(write["set"])
        return new
    return state  # sessions change no tracked attribute


def observed(user_json):
    """The tracked attributes of a user as GET shows it."""
    if user_json is None:
        return {"exists": False}
    return {
        "exists": True,
        "userName": user_json.get("userName"),
        "nickName": user_json.get("nickName"),
        "title": user_json.get("title"),
        "givenName": (user_json.get("name") or {}).get("givenName"),
        "active": user_json.get("active"),
    }


def written_fields(write):
    if write["kind"] in ("create", "delete"):
        return set(TRACKED)
    return set(write.get("set", ()))


def deactivates(write):
    return write["kind"] == "delete" or (write["kind"] in ("patch", "put") and write["set"].get("active") is False)


class User:
    def __init__(self, user_name):
        self.user_name = user_name
        self.id = None
        self.acked = []       # acknowledged writes, in order
        self.pending = None   # the write that got no answer, if any
        self.sessions = []    # (token, number of acked writes before it)
        self.state = {"exists": False}
        self.refusals = []    # unexpected 4xx answers


# ---------------------------------------------------------------------------
# Load


class Load:
    def __init__(self, port, token, tag, seed):
        self.port, self.token, self.tag = port, token, tag
        self.users = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.requests = 0
        self.server_errors = []
        self.seed = seed

    def worker(self, wid):
        rng = random.Random(self.seed * 1000 + wid)
        client = Client(self.port, self.token)
        live, n = [], 0
        try:
            while not self.stop.is_set():
                if not live or rng.random() < 0.2:
                    n += 1
                    user = User(f"dur-{self.tag}-{wid}-{n}")
                    with self.lock:
                        self.users.append(user)
                    write = self.create_write(rng, user)
                else:
                    user = rng.choice(live)
                    write = self.next_write(rng, user)
                try:
                    status, body = client.call(*write["request"])
                except (OSError, http.client.HTTPException):
                    user.pending = write
                    return
                with self.lock:
                    self.requests += 1
                if 200 <= status < 300:
                    self.acknowledge(user, write, body)
                    if write["kind"] == "create":
                        live.append(user)
                    elif write["kind"] == "delete":
                        live.remove(user)
                elif status >= 500:
                    # Not acknowledged and not certainly refused: the user's last write is unknown.
                    with self.lock:
                        self.server_errors.append({"request": write["request"][:2], "status": status, "body": body})
                    user.pending = write
                    if user in live:
                        live.remove(user)
                else:
                    expected = write["kind"] == "session" and user.state.get("active") is False
                    if not expected:
                        user.refusals.append({"request": write["request"], "status": status, "body": body})
        finally:
            client.close()

    def create_write(self, rng, user):
        given = f"G{rng.randrange(10**6)}"
        active = rng.random() < 0.9
        body = {"schemas": [USER_SCHEMA], "userName": user.user_name, "active": active,
                "name": {"givenName": given, "familyName": "Durable"},
                "emails": [{"value": f"{user.user_name}@example.com", "type": "work", "primary": True}]}
        return {"kind": "create", "userName": user.user_name, "givenName": given, "active": active,
                "request": ("POST", "/scim/v2/Users", body)}

    def next_write(self, rng, user):
        uid = user.id
        path = f"/scim/v2/Users/{uid}"
        v = f"v{rng.randrange(10**9)}"

        def patch(ops, sets):
            return {"kind": "patch", "set": sets,
                    "request": ("PATCH", path, {"schemas": [PATCH_OP], "Operations": ops})}

        r = rng.random()
        if r < 0.18:
            return patch([{"op": "replace", "path": "nickName", "value": v}], {"nickName": v})
        if r < 0.30:
            return patch([{"op": "replace", "value": {"title": v, "name.givenName": "G" + v}}],
                         {"title": v, "givenName": "G" + v})
        if r < 0.38:
            return patch([{"op": "add", "path": "title", "value": v},
                          {"op": "replace", "path": "nickName", "value": "N" + v}],
                         {"title": v, "nickName": "N" + v})
        if r < 0.48:
            form = rng.randrange(3)
            if form == 0:
                ops = [{"op": "replace", "path": "active", "value": False}]
            elif form == 1:
                ops = [{"op": "Replace", "path": "active", "value": "False"}]  # Entra
            else:
                ops = [{"op": "replace", "value": {"active": False}}]
            return patch(ops, {"active": False})
        if r < 0.55:
            # A profile change and the deactivation in one request: both or neither.
            return patch([{"op": "replace", "value": {"active": False, "nickName": v}}],
                         {"active": False, "nickName": v})
        if r < 0.65:
            if rng.random() < 0.5:
                ops = [{"op": "replace", "path": "active", "value": True}]
            else:
                ops = [{"op": "Replace", "value": {"active": "True"}}]
            return patch(ops, {"active": True})
        if r < 0.72:
            active = rng.random() < 0.5
            body = {"schemas": [USER_SCHEMA], "userName": user.user_name, "active": active, "title": v,
                    "name": {"givenName": "P" + v, "familyName": "Durable"}}
            return {"kind": "put", "set": {"active": active, "title": v, "givenName": "P" + v, "nickName": None},
                    "request": ("PUT", path, body)}
        if r < 0.90:
            return {"kind": "session", "request": ("POST", "/api/v1/sessions", {"userId": uid})}
        return {"kind": "delete", "request": ("DELETE", path, None)}

    def acknowledge(self, user, write, body):
        if write["kind"] == "create":
            user.id = body["id"]
        if write["kind"] == "session":
            user.sessions.append((body["token"], len(user.acked)))
        user.acked.append(write)
        user.state = apply_write(user.state, write)


# ---------------------------------------------------------------------------
# Checks after the restart


def fetch_all(client, path_fmt, key, cursor_of):
    after, out = 0, []
    while True:
        status, body = client.call("GET", path_fmt.format(after=after))
        if status != 200:
            raise RunFailed(f"GET {path_fmt}: {status} {body}")
        items = body[key]
        if not items:
            return out
        out.extend(items)
        after = cursor_of(body, items)


def list_users(client):
    users, start = [], 1
    while True:
        status, body = client.call("GET", f"/scim/v2/Users?startIndex={start}&count=1000")
        if status != 200:
            raise RunFailed(f"GET /Users: {status} {body}")
        users.extend(body["Resources"])
        if not body["Resources"] or start + len(body["Resources"]) > body["totalResults"]:
            return users
        start += len(body["Resources"])


def replay(entries, state_of):
    """Each user's state after the entries (in order): 'active', 'deactivated', ..., or 'gone'."""
    final = {}
    for entry in entries:
        uid, state = state_of(entry)
        if uid is not None and state is not None:
            final[uid] = state
    return final


EVENT_STATE = {"user.deactivated": "deactivated", "user.reactivated": "active",
               "user.former_member": "formerMember", "user.deleted": "gone"}


def event_state(event):
    kind = event["type"]
    if kind == "user.created":
        return event["userId"], event["data"].get("state")
    return event["userId"], EVENT_STATE.get(kind)


def audit_state(entry):
    if entry["action"] in ("create", "deactivate", "reactivate", "former_member", "delete"):
        return entry["userId"], entry["after"] or "gone"
    return None, None


def verify(client, load):
    violations, verified, superseded, unknown, unknown_applied = [], 0, 0, 0, 0

    def violation(kind, user, **detail):
        violations.append(dict(kind=kind, userName=user.user_name if user else None,
                               id=user.id if user else None, **detail))

    listed = {u["id"]: u for u in list_users(client)}
    events = fetch_all(client, "/api/v1/events?after={after}&limit=1000", "events", lambda b, _: b["next"])
    audit = fetch_all(client, "/api/v1/audit?after={after}&limit=1000", "entries", lambda _, items: items[-1]["id"])
    event_final = replay(events, event_state)
    audit_final = replay(audit, audit_state)
    events_by_user = {}
    for e in events:
        events_by_user.setdefault(e["userId"], []).append(e["type"])

    for user in load.users:
        if user.pending is not None:
            unknown += 1
        # What the user looks like now, by id and by userName.
        by_id = None
        if user.id is not None:
            status, body = client.call("GET", f"/scim/v2/Users/{user.id}")
            if status == 200:
                by_id = body
            elif status != 404:
                violation("unexpected-status", user, status=status, body=body)
                continue
        flt = urllib.parse.quote(f'userName eq "{user.user_name}"')
        status, body = client.call("GET", f"/scim/v2/Users?filter={flt}")
        if status != 200:
            violation("filter-failed", user, status=status, body=body)
            continue
        matches = body["Resources"]
        if len(matches) > 1:
            violation("duplicate-userName", user, count=len(matches))
        by_name = matches[0] if matches else None
        if user.id is None and by_name is not None:
            user.id = by_name["id"]  # an unacknowledged create that was applied
            by_id = by_name
        if (by_id is None) != (by_name is None) or (by_id and by_name and by_id["id"] != by_name["id"]):
            violation("id-and-userName-disagree", user, by_id=by_id is not None, by_name=by_name is not None)

        # The acknowledged writes, applied in order, or those and the unknown one.
        actual = observed(by_id)
        candidates = [user.state]
        if user.pending is not None:
            candidates.append(apply_write(user.state, user.pending))
            if actual == candidates[1] != candidates[0]:
                unknown_applied += 1
        if actual not in candidates:
            violation("state", user, actual=actual, expected=candidates,
                      acked=[w["kind"] for w in user.acked], pending=user.pending and user.pending["kind"])
        else:
            # Each acknowledged write shows, or every field it set was set again by a later
            # acknowledged write (or by the unknown one, when that was applied).
            writes = [w for w in user.acked if w["kind"] != "session"]
            overwritten_by = writes + ([user.pending] if actual != user.state else [])
            for i, w in enumerate(writes):
                later = set()
                for after in overwritten_by[i + 1:]:
                    later |= written_fields(after)
                if written_fields(w) <= later:
                    superseded += 1
                else:
                    verified += 1

        # No half-applied lifecycle transition.
        if by_id is not None:
            life = by_id.get(ROSTER) or {}
            state = life.get("lifecycleState")
            if by_id.get("active") is True and (state != "active" or "deactivatedAt" in life):
                violation("active-but-not-active", user, lifecycle=life)
            if by_id.get("active") is False and (state not in ("deactivated", "formerMember")
                                                 or "deactivatedAt" not in life):
                violation("inactive-without-deactivation", user, lifecycle=life)
        actual_state = "gone" if by_id is None else (by_id.get(ROSTER) or {}).get("lifecycleState")

        # Sessions: closed by every later deactivation or delete, otherwise still open.
        for token, before in user.sessions:
            status, body = client.call("POST", "/api/v1/sessions/introspect", {"token": token})
            if status != 200:
                violation("introspect-failed", user, status=status, body=body)
                continue
            revoked_later = any(deactivates(w) for w in user.acked[before:])
            if actual_state != "active" or revoked_later:
                expected = False
            else:
                expected = True
            if body.get("active") is not expected:
                violation("session", user, expected_open=expected, state=actual_state,
                          acked=[w["kind"] for w in user.acked])
            else:
                verified += 1

        # The event feed and the audit log agree with the state, and name every acknowledged
        # create, delete and deactivation.
        if user.id is not None:
            expected_final = actual_state
            if event_final.get(user.id, "gone") != expected_final:
                violation("events-vs-state", user, events=events_by_user.get(user.id), state=actual_state)
            if audit_final.get(user.id, "gone") != expected_final:
                violation("audit-vs-state", user, audit_state=audit_final.get(user.id), state=actual_state)
            kinds = events_by_user.get(user.id, [])
            if any(w["kind"] == "create" for w in user.acked) and "user.created" not in kinds:
                violation("missing-created-event", user)
            if any(w["kind"] == "delete" for w in user.acked) and "user.deleted" not in kinds:
                violation("missing-deleted-event", user)
            deactivations, state = 0, {"exists": False}
            for w in user.acked:
                new = apply_write(state, w)
                if state.get("active") is True and (new.get("active") is False or w["kind"] == "delete"):
                    deactivations += 1
                state = new
            found = kinds.count("user.deactivated")
            could_add = 1 if user.pending is not None and deactivates(user.pending) else 0
            if not deactivations <= found <= deactivations + could_add:
                violation("deactivation-events", user, acked_transitions=deactivations, events=found)
        for refusal in user.refusals:
            violation("refused", user, **refusal)

    # Nothing exists that the feed does not know, and the reverse.
    for uid, u in listed.items():
        state = u.get(ROSTER, {}).get("lifecycleState")
        if event_final.get(uid) != state:
            violations.append({"kind": "listed-vs-events", "id": uid, "state": state,
                               "events": event_final.get(uid)})
    for uid, state in event_final.items():
        if state != "gone" and uid not in listed:
            violations.append({"kind": "event-without-user", "id": uid, "events": state})

    acked = sum(len(u.acked) for u in load.users)
    return {"acknowledged": acked, "verified": verified, "superseded": superseded, "unknown": unknown,
            "unknown_applied": unknown_applied,
            "violations": len(violations), "users": len(load.users), "listed": len(listed),
            "events": len(events), "audit": len(audit), "details": violations[:10]}


# ---------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", required=True)
    ap.add_argument("--database-url", required=True)
    ap.add_argument("--workdir", required=True, help="where the server log goes")
    ap.add_argument("--seconds", type=float, default=6.0, help="load before and around the kill")
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--label", default="")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(10**6)
    rng = random.Random(seed)
    log = os.path.join(args.workdir, "server.log")
    server = Server(args.binary, args.database_url, log)
    result = {"label": args.label, "seed": seed}
    try:
        token = issue_token(args.binary, args.database_url)
        server.start()
        load = Load(server.port, token, f"{seed}", seed)
        threads = [threading.Thread(target=load.worker, args=(w,), daemon=True) for w in range(args.workers)]
        started = time.time()
        for t in threads:
            t.start()
        kill_at = args.seconds * rng.uniform(0.4, 0.8)
        time.sleep(kill_at)
        server.kill()
        result["killed_after_s"] = round(time.time() - started, 2)
        result["requests_before_kill"] = load.requests
        load.stop.set()
        for t in threads:
            t.join(timeout=60)
        if any(t.is_alive() for t in threads):
            raise RunFailed("a load worker did not stop")
        server.start()
        client = Client(server.port, token)
        result.update(verify(client, load))
        client.close()
        result["server_errors"] = load.server_errors[:5]
        result["server_error_count"] = len(load.server_errors)
    except RunFailed as e:
        result["error"] = str(e)
        print(json.dumps(result))
        server.kill()
        return 2
    finally:
        server.stop()
    print(json.dumps(result))
    return 1 if result["violations"] else 0


if __name__ == "__main__":
    sys.exit(main())
