-- Teams: a group is a team. Each member holds a team role there, and the
-- configured nouns may belong to one team (NULL: organisation-wide). A
-- deleted team leaves its things to the organisation, which only admins
-- configure, rather than deleting anything that pages.
ALTER TABLE group_members ADD COLUMN role TEXT NOT NULL DEFAULT 'RESPONDER';

ALTER TABLE integrations ADD COLUMN team_id BIGINT REFERENCES user_groups (id) ON DELETE SET NULL;
ALTER TABLE rulesets ADD COLUMN team_id BIGINT REFERENCES user_groups (id) ON DELETE SET NULL;
ALTER TABLE escalation_policies ADD COLUMN team_id BIGINT REFERENCES user_groups (id) ON DELETE SET NULL;
ALTER TABLE schedules ADD COLUMN team_id BIGINT REFERENCES user_groups (id) ON DELETE SET NULL;
ALTER TABLE heartbeat_monitors ADD COLUMN team_id BIGINT REFERENCES user_groups (id) ON DELETE SET NULL;
ALTER TABLE maintenance_windows ADD COLUMN team_id BIGINT REFERENCES user_groups (id) ON DELETE SET NULL;

CREATE INDEX integrations_team ON integrations (team_id);
CREATE INDEX rulesets_team ON rulesets (team_id);
CREATE INDEX escalation_policies_team ON escalation_policies (team_id);
CREATE INDEX schedules_team ON schedules (team_id);
CREATE INDEX heartbeat_monitors_team ON heartbeat_monitors (team_id);
CREATE INDEX maintenance_windows_team ON maintenance_windows (team_id);
