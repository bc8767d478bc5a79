DROP TABLE signing_keys;
DROP INDEX deliveries_awaiting;
ALTER TABLE deliveries DROP COLUMN part;
ALTER TABLE webhooks DROP COLUMN audience;
ALTER TABLE webhooks DROP COLUMN kind;
ALTER TABLE events DROP COLUMN txn;
