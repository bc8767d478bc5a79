-- Each tenant numbers its own events and audit entries (`tenant_seq`, 1, 2, 3, …), and numbers
-- them in the order they became visible. `seq` is drawn when a transaction inserts its row, and
-- transactions commit out of order: a poller that had read past `seq` N never saw an N-1 that
-- committed later, and a tenant could count other tenants' activity in the gaps of the shared
-- sequence.
--
-- Writers insert with no number, so the write path takes no lock beyond its own rows, and
-- writes as many index entries as before (the numbered index is partial). Readers
-- number first (`roster_number_events`, `roster_number_audit`): under a per-tenant advisory lock
-- held to the end of its transaction, every committed, unnumbered row of the tenant gets the
-- next numbers, in `seq` order. A row that commits later is numbered by a later call, after
-- every number already given, so a reader that has seen up to N only ever meets rows above N.
ALTER TABLE events ADD COLUMN tenant_seq BIGINT;
UPDATE events SET tenant_seq = numbered.n
FROM (SELECT seq, row_number() OVER (PARTITION BY tenant_id ORDER BY seq) AS n FROM events) AS numbered
WHERE events.seq = numbered.seq;
DROP INDEX events_tenant_seq;
CREATE UNIQUE INDEX events_tenant_number ON events (tenant_id, tenant_seq) WHERE tenant_seq IS NOT NULL;
CREATE INDEX events_unnumbered ON events (tenant_id, seq) WHERE tenant_seq IS NULL;

ALTER TABLE audit_log ADD COLUMN tenant_seq BIGINT;
UPDATE audit_log SET tenant_seq = numbered.n
FROM (SELECT seq, row_number() OVER (PARTITION BY tenant_id ORDER BY seq) AS n FROM audit_log) AS numbered
WHERE audit_log.seq = numbered.seq;
DROP INDEX audit_log_tenant_seq;
CREATE UNIQUE INDEX audit_log_tenant_number ON audit_log (tenant_id, tenant_seq) WHERE tenant_seq IS NOT NULL;
CREATE INDEX audit_log_unnumbered ON audit_log (tenant_id, seq) WHERE tenant_seq IS NULL;

-- Each statement of these (volatile) functions sees what committed before it started, so the
-- highest number is read after the lock is held: numbers never repeat or go backwards. The lock
-- goes with the calling statement's transaction.
CREATE FUNCTION roster_number_events(p_tenant TEXT) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    top BIGINT;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM events WHERE tenant_id = p_tenant AND tenant_seq IS NULL) THEN
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('roster.events:' || p_tenant, 0));
    SELECT COALESCE(MAX(tenant_seq), 0) INTO top FROM events WHERE tenant_id = p_tenant;
    UPDATE events SET tenant_seq = top + todo.n
    FROM (SELECT seq, row_number() OVER (ORDER BY seq) AS n
          FROM events WHERE tenant_id = p_tenant AND tenant_seq IS NULL) AS todo
    WHERE events.seq = todo.seq;
END
$$;

CREATE FUNCTION roster_number_audit(p_tenant TEXT) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    top BIGINT;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM audit_log WHERE tenant_id = p_tenant AND tenant_seq IS NULL) THEN
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('roster.audit:' || p_tenant, 0));
    SELECT COALESCE(MAX(tenant_seq), 0) INTO top FROM audit_log WHERE tenant_id = p_tenant;
    UPDATE audit_log SET tenant_seq = top + todo.n
    FROM (SELECT seq, row_number() OVER (ORDER BY seq) AS n
          FROM audit_log WHERE tenant_id = p_tenant AND tenant_seq IS NULL) AS todo
    WHERE audit_log.seq = todo.seq;
END
$$;
