DROP TABLE tokens;
DROP TABLE server_settings;
DROP TABLE tenants;
