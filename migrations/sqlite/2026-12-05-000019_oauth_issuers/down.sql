DROP TABLE oauth_issuers;
