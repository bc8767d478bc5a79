-- The archive sink's second kind of destination: a URL that receives the export of a deleted
-- account as a signed POST (Standard Webhooks signatures), with the tenant's signing secret
-- sealed the way webhook secrets are (XChaCha20-Poly1305, the key in server_settings). A tenant
-- has one kind of destination at a time: setting the URL clears the directory and back.
ALTER TABLE tenants ADD COLUMN archive_url TEXT;
-- http, and addresses of loopback and private networks, only when allowed (as a webhook's
-- --allow-private).
ALTER TABLE tenants ADD COLUMN archive_allow_private BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE tenants ADD COLUMN archive_secret TEXT;

-- Tries of an export sent to a URL: how many, when the next one is due (NULL: at once; also the
-- lease a sender takes while its request is out), and the last failure, for the operator.
ALTER TABLE archive_exports ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE archive_exports ADD COLUMN next_attempt_at TIMESTAMP;
ALTER TABLE archive_exports ADD COLUMN last_error TEXT;
