DROP TABLE oauth_refresh_tokens;
DROP TABLE oauth_codes;
DROP TABLE oauth_approvals;
ALTER TABLE oauth_clients DROP COLUMN redirect_uris;
DROP TABLE oauth_issuers;
