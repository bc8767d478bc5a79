ALTER TABLE content ADD COLUMN author_name TEXT NOT NULL DEFAULT '';
UPDATE content SET author_name = COALESCE(
    (SELECT f.name FROM former_member_names f WHERE f.user_pk = content.author_pk),
    (SELECT COALESCE(u.display_name, u.user_name) FROM users u WHERE u.pk = content.author_pk)
);
DROP TABLE former_member_names;
DROP INDEX content_recipient;
DROP TABLE conversation_messages;
DROP TABLE conversation_members;
DROP TABLE conversations;
