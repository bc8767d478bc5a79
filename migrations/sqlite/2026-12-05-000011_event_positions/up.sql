-- Each tenant numbers its own events and audit entries (`tenant_seq`, 1, 2, 3, …): the ids a
-- tenant sees in the event feed and the audit log say nothing about other tenants' activity,
-- which the shared `seq` did. SQLite runs one write transaction at a time, so a number taken
-- at insert (the tenant's highest plus one, through the unique index) is also the order in which
-- rows become visible: a poller that has read up to N never meets a later N-1. Roster's inserts
-- take the number in the INSERT (db::records); the triggers number what comes without one (a
-- tenant's first row, where the highest is NULL, and any other writer).
ALTER TABLE events ADD COLUMN tenant_seq BIGINT;
UPDATE events SET tenant_seq = numbered.n
FROM (SELECT seq, row_number() OVER (PARTITION BY tenant_id ORDER BY seq) AS n FROM events) AS numbered
WHERE events.seq = numbered.seq;
DROP INDEX events_tenant_seq;
CREATE UNIQUE INDEX events_tenant_number ON events (tenant_id, tenant_seq);
CREATE TRIGGER events_numbered AFTER INSERT ON events WHEN NEW.tenant_seq IS NULL
BEGIN
    UPDATE events
    SET tenant_seq = (SELECT COALESCE(MAX(tenant_seq), 0) + 1 FROM events WHERE tenant_id = NEW.tenant_id)
    WHERE seq = NEW.seq;
END;

ALTER TABLE audit_log ADD COLUMN tenant_seq BIGINT;
UPDATE audit_log SET tenant_seq = numbered.n
FROM (SELECT seq, row_number() OVER (PARTITION BY tenant_id ORDER BY seq) AS n FROM audit_log) AS numbered
WHERE audit_log.seq = numbered.seq;
DROP INDEX audit_log_tenant_seq;
CREATE UNIQUE INDEX audit_log_tenant_number ON audit_log (tenant_id, tenant_seq);
CREATE TRIGGER audit_log_numbered AFTER INSERT ON audit_log WHEN NEW.tenant_seq IS NULL
BEGIN
    UPDATE audit_log
    SET tenant_seq = (SELECT COALESCE(MAX(tenant_seq), 0) + 1 FROM audit_log WHERE tenant_id = NEW.tenant_id)
    WHERE seq = NEW.seq;
END;
