-- Who changed the configuration, when, and what changed. actor_user_id is
-- not a foreign key: entries outlive the users who made them, and actor
-- keeps the email as it was.
CREATE TABLE audit_log (
	id INTEGER PRIMARY KEY,
	at TIMESTAMP NOT NULL,
	actor_user_id INTEGER,
	actor TEXT NOT NULL,
	entity_type TEXT NOT NULL,
	entity_id INTEGER NOT NULL,
	action TEXT NOT NULL,
	changes TEXT NOT NULL
);
-- Listing is newest first by id: over everything (the primary key), over
-- one kind of entity, or over one entity.
CREATE INDEX audit_log_type ON audit_log (entity_type, id);
CREATE INDEX audit_log_entity ON audit_log (entity_type, entity_id, id);
