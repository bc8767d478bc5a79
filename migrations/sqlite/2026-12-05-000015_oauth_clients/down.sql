DROP TABLE oauth_audit;
DROP TABLE oauth_assertion_jtis;
DROP INDEX tokens_client;
ALTER TABLE tokens DROP COLUMN client_id;
DROP TABLE oauth_client_secrets;
DROP TABLE oauth_clients;
