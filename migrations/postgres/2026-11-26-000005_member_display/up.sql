-- The member's display name as the client sent it (Okta sends one with every member).
ALTER TABLE group_members ADD COLUMN display TEXT;
