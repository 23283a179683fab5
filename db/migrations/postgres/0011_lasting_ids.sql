-- PostgreSQL's sequences never hand out an id twice already; SQLite's
-- tables are rebuilt to the same effect in its 0011.
--
-- A user gets a random session nonce, which every session token carries
-- and must match, so a token can only ever name the user it was issued
-- to. The default is evaluated for each existing user.
ALTER TABLE users ADD COLUMN session_nonce TEXT NOT NULL DEFAULT md5(gen_random_uuid()::text);
