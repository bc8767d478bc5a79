DROP INDEX audit_log_tenant_user;
DROP INDEX events_tenant_user;
DROP INDEX users_tenant_state_pk;
DROP TABLE admin_sessions;
DROP TABLE admin_links;
