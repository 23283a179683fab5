-- A started sign-in remembers the address it came from, so that one
-- client cannot fill the table by starting sign-ins it never finishes.
ALTER TABLE sso_logins ADD COLUMN client_addr TEXT NOT NULL DEFAULT '';
CREATE INDEX sso_logins_client ON sso_logins (client_addr, expires_at);
