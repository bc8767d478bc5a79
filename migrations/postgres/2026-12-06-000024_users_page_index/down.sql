DROP INDEX users_tenant_pk;
CREATE INDEX users_tenant_pk ON users (tenant_id, pk);
