-- Events expire: each tenant keeps its events this many days (NULL: for good), and the sweep
-- purges older ones. 90 days unless the tenant says otherwise.
ALTER TABLE tenants ADD COLUMN event_retention_days INTEGER DEFAULT 90;
-- The archive sink: the directory on the server that receives the export of a deleted account
-- (one JSON Lines file per account), and how long an export may wait for it before it is
-- destroyed and an alert raised.
ALTER TABLE tenants ADD COLUMN archive_dir TEXT;
ALTER TABLE tenants ADD COLUMN archive_hold_hours INTEGER NOT NULL DEFAULT 168;

-- Exports of deleted accounts waiting for their destination: sealed (XChaCha20-Poly1305, the
-- key in server_settings), removed once written. `destination` names the kind of sink
-- ('directory'), so that another kind (a webhook endpoint) can be added beside it.
CREATE TABLE archive_exports (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    destination TEXT NOT NULL,
    sealed TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX archive_exports_tenant ON archive_exports (tenant_id, seq);

-- The events whose payload carries an account's identifiers are found by account, to remove
-- them, through `events_tenant_user` (migration 000017): no index of their own, so that no
-- event write maintains one more.

-- Earlier releases wrote the whole export of a deleted account into its `user.exported` event,
-- where it stayed for good. The account is deleted: only its id stays.
UPDATE events SET payload = json_object('id', json_extract(payload, '$.id'))
WHERE kind = 'user.exported';
