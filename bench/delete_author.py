#!/usr/bin/env python3
"""Times deleting an account that wrote N items (docs/lifecycle.md: deletion removes everything the
account wrote, in one transaction). Usage:

    bench/delete_author.py BASE_URL TOKEN [N]

BASE_URL is the server's root (http://127.0.0.1:8080); TOKEN needs scopes scim and content.
Writes N posts (a tenth of them with a comment by the same author) through /api/v1/content,
deactivates the author, then times DELETE /scim/v2/Users/{id} and checks the content is gone.
"""
import concurrent.futures
import json
import sys
import time
import urllib.request
import uuid


def call(method, url, token, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Authorization", f"Bearer {token}")
    req.add_header("Content-Type", "application/scim+json")
    try:
        with urllib.request.urlopen(req) as res:
            text = res.read()
            return res.status, json.loads(text) if text else None
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def main():
    base, token = sys.argv[1].rstrip("/"), sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 10_000
    status, user = call("POST", f"{base}/scim/v2/Users", token, {"userName": f"author-{uuid.uuid4().hex[:8]}"})
    assert status == 201, (status, user)
    author = user["id"]

    def write(i):
        status, post = call("POST", f"{base}/api/v1/content", token, {"kind": "post", "authorId": author, "body": f"post {i}"})
        assert status == 201, (status, post)
        if i % 10 == 0:
            status, _ = call("POST", f"{base}/api/v1/content", token,
                             {"kind": "comment", "authorId": author, "body": f"comment {i}", "parentId": post["id"]})
            assert status == 201
        return post["id"]

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(write, range(n)))
    written = time.monotonic() - started
    items = n + n // 10
    status, _ = call("PATCH", f"{base}/scim/v2/Users/{author}", token,
                     {"Operations": [{"op": "replace", "path": "active", "value": False}]})
    assert status == 200
    started = time.monotonic()
    status, _ = call("DELETE", f"{base}/scim/v2/Users/{author}", token)
    took = time.monotonic() - started
    assert status == 204, status
    for post in (ids[0], ids[-1]):
        assert call("GET", f"{base}/api/v1/content/{post}", token)[0] == 404
    print(f"wrote {items} items in {written:.1f} s; DELETE of their author took {took * 1000:.0f} ms")


if __name__ == "__main__":
    main()
