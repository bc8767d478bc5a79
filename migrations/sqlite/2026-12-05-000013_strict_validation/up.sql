-- A tenant may opt into refusing values that break only a SHOULD of RFC 7643 (an email that
-- is not an RFC 5321 address, a phone number that is not an RFC 3966 URI); by default they are
-- stored as sent.
ALTER TABLE tenants ADD COLUMN strict_validation BOOLEAN NOT NULL DEFAULT FALSE;
