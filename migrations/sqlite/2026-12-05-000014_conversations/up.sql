-- Group conversations of the product API, and the one name the product keeps of a Former
-- Member (docs/product.md).

CREATE TABLE conversations (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    title TEXT,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX conversations_tenant ON conversations (tenant_id);

-- Who may read and post. A member leaves by removal, by the sweep after the grace period, by
-- becoming a Former Member or by deletion (src/lifecycle.rs).
CREATE TABLE conversation_members (
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    user_pk BIGINT NOT NULL REFERENCES users (pk) ON DELETE CASCADE,
    added_at TIMESTAMP NOT NULL,
    PRIMARY KEY (conversation_id, user_pk)
);
CREATE INDEX conversation_members_user ON conversation_members (user_pk);

-- `seq` orders a conversation's messages and is the paging cursor.
CREATE TABLE conversation_messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    sender_pk BIGINT NOT NULL REFERENCES users (pk) ON DELETE CASCADE,
    body TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX conversation_messages_conversation ON conversation_messages (conversation_id, seq);
CREATE INDEX conversation_messages_sender ON conversation_messages (sender_pk);

-- Content by its recipient: deleting a person sets the key to NULL (its foreign key), which
-- without this index scans all content while the person's row is locked.
CREATE INDEX content_recipient ON content (recipient_pk);

-- The name a Former Member's content shows: the person's name at the transition, kept only
-- when something they wrote or sent is still there to show it.
CREATE TABLE former_member_names (
    user_pk BIGINT PRIMARY KEY NOT NULL REFERENCES users (pk) ON DELETE CASCADE,
    name TEXT NOT NULL
);

-- Content showed the name its author had when writing it. It now shows the author's current
-- name, and a Former Member's frozen one: the Former Members of before keep, as that name, the
-- one their newest item was written under, and the copies go.
INSERT INTO former_member_names (user_pk, name)
SELECT u.pk, (SELECT c.author_name FROM content c WHERE c.author_pk = u.pk ORDER BY c.created_at DESC, c.id DESC LIMIT 1)
FROM users u
WHERE u.lifecycle_state = 'formerMember' AND EXISTS (SELECT 1 FROM content c WHERE c.author_pk = u.pk);
ALTER TABLE content DROP COLUMN author_name;
