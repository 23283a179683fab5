package integrations

import (
	"context"
	"fmt"
	"time"

	"github.com/klaxonhq/klaxon/invalid"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/audit"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/rules"
)

// RulesetInput is what createRuleset and updateRuleset take; nil means
// "empty" on create and "unchanged" on update.
type RulesetInput struct {
	// Team is the owning team; on update, unset keeps it.
	Team        db.TeamChange
	Name        *string
	Description *string
	Rules       []rules.Rule // nil keeps the rules on update
}

func (s *Store) Rulesets(ctx context.Context) ([]*db.Ruleset, error) {
	var list []*db.Ruleset
	err := s.db.NewSelect().Model(&list).
		Relation("Rules", func(q *bun.SelectQuery) *bun.SelectQuery { return q.Order("position") }).
		Order("id").Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("list rulesets: %w", err)
	}
	return list, nil
}

func (s *Store) Ruleset(ctx context.Context, id int) (*db.Ruleset, error) {
	return s.RulesetByID(ctx, s.db, id)
}

// RulesetByID reads the ruleset with its rules in order through idb.
func (s *Store) RulesetByID(ctx context.Context, idb bun.IDB, id int) (*db.Ruleset, error) {
	rs := new(db.Ruleset)
	err := idb.NewSelect().Model(rs).
		Relation("Rules", func(q *bun.SelectQuery) *bun.SelectQuery { return q.Order("position") }).
		Where("ruleset.id = ?", id).Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("load ruleset %d: %w", id, db.Classify(err))
	}
	return rs, nil
}

func (s *Store) CreateRuleset(ctx context.Context, in RulesetInput) (*db.Ruleset, error) {
	if in.Name == nil {
		return nil, invalid.New("name", "is required")
	}
	name, desc, err := rulesetText(in, "", "")
	if err != nil {
		return nil, err
	}
	if err := rules.ValidateRules(in.Rules); err != nil {
		return nil, err
	}
	var rs *db.Ruleset
	err = s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		rs, err = insertRuleset(ctx, tx, s.clock(), in.Team.TeamID, name, desc, in.Rules)
		return err
	})
	if err != nil {
		return nil, err
	}
	return rs, nil
}

func (s *Store) UpdateRuleset(ctx context.Context, id int, in RulesetInput) (*db.Ruleset, error) {
	// Webhooks must follow the change from the next message on.
	defer s.onChange()
	if in.Rules != nil {
		if err := rules.ValidateRules(in.Rules); err != nil {
			return nil, err
		}
	}
	var rs *db.Ruleset
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		if rs, err = s.RulesetByID(ctx, tx, id); err != nil {
			return err
		}
		before := recordOfRuleset(rs)
		if rs.Name, rs.Description, err = rulesetText(in, rs.Name, rs.Description); err != nil {
			return err
		}
		in.Team.Apply(&rs.TeamID)
		rs.UpdatedAt = s.clock()
		if _, err := tx.NewUpdate().Model(rs).WherePK().Exec(ctx); err != nil {
			return fmt.Errorf("update ruleset %d: %w", id, err)
		}
		if in.Rules != nil {
			if _, err := tx.NewDelete().Model((*db.Rule)(nil)).Where("ruleset_id = ?", id).Exec(ctx); err != nil {
				return fmt.Errorf("replace rules of ruleset %d: %w", id, err)
			}
			if rs.Rules, err = insertRules(ctx, tx, id, in.Rules); err != nil {
				return err
			}
		}
		return audit.Record(ctx, tx, rs.UpdatedAt, audit.Ruleset, id, audit.Updated, before, recordOfRuleset(rs))
	})
	if err != nil {
		return nil, err
	}
	return rs, nil
}

// DeleteRuleset refuses while an integration still uses the ruleset, so
// no integration silently loses its rules.
func (s *Store) DeleteRuleset(ctx context.Context, id int) error {
	// Webhooks must follow the change from the next message on.
	defer s.onChange()
	return s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		users, err := tx.NewSelect().Model((*db.Integration)(nil)).Where("ruleset_id = ?", id).Count(ctx)
		if err != nil {
			return fmt.Errorf("delete ruleset %d: %w", id, err)
		}
		if users > 0 {
			return invalid.New("id", fmt.Sprintf("ruleset %d is used by %d integration(s)", id, users))
		}
		rs, err := s.RulesetByID(ctx, tx, id)
		if err != nil {
			return fmt.Errorf("delete: %w", err)
		}
		if err := db.DeleteByID[db.Ruleset](ctx, tx, id, "ruleset"); err != nil {
			return err
		}
		return audit.Record(ctx, tx, s.clock(), audit.Ruleset, id, audit.Deleted, recordOfRuleset(rs), nil)
	})
}

func rulesetExists(ctx context.Context, tx bun.Tx, id int) error {
	return db.RequireRows(ctx, tx, (*db.Ruleset)(nil), "rulesetId", "ruleset", []int{id})
}

// insertRuleset stores a new ruleset and records its creation, whether an
// admin made it or an integration made it from its preset.
func insertRuleset(ctx context.Context, tx bun.Tx, now time.Time, teamID *int, name, desc string, specs []rules.Rule) (*db.Ruleset, error) {
	rs := &db.Ruleset{Name: name, TeamID: teamID, Description: desc, CreatedAt: now, UpdatedAt: now}
	if _, err := tx.NewInsert().Model(rs).Exec(ctx); err != nil {
		return nil, fmt.Errorf("create ruleset: %w", err)
	}
	var err error
	if rs.Rules, err = insertRules(ctx, tx, rs.ID, specs); err != nil {
		return nil, err
	}
	if err := audit.Record(ctx, tx, now, audit.Ruleset, rs.ID, audit.Created, nil, recordOfRuleset(rs)); err != nil {
		return nil, err
	}
	return rs, nil
}

func insertRules(ctx context.Context, tx bun.Tx, rulesetID int, specs []rules.Rule) ([]*db.Rule, error) {
	stored := make([]*db.Rule, len(specs))
	for i, spec := range specs {
		match := spec.Match
		if match == "" {
			match = rules.MatchAll
		}
		conditions := spec.Conditions
		if conditions == nil {
			conditions = []rules.Condition{}
		}
		if err := checkRoute(ctx, tx, fmt.Sprintf("rules[%d].route", i), spec.Route); err != nil {
			return nil, err
		}
		stored[i] = &db.Rule{RulesetID: rulesetID, Position: i, Name: spec.Name, MatchMode: match, Conditions: conditions, Action: spec.Action, Route: spec.Route}
	}
	if len(stored) == 0 {
		return stored, nil
	}
	if _, err := tx.NewInsert().Model(&stored).Exec(ctx); err != nil {
		return nil, fmt.Errorf("store rules of ruleset %d: %w", rulesetID, err)
	}
	return stored, nil
}

func rulesetText(in RulesetInput, name, desc string) (string, string, error) {
	if in.Name != nil {
		var err error
		if name, err = invalid.Name("name", *in.Name); err != nil {
			return "", "", err
		}
	}
	if in.Description != nil {
		desc = *in.Description
		if err := invalid.Description("description", desc); err != nil {
			return "", "", err
		}
	}
	return name, desc, nil
}

// checkRoute makes sure everything a rule routes to exists.
func checkRoute(ctx context.Context, tx bun.Tx, field string, route rules.Route) error {
	if route.EscalationPolicyID != 0 {
		err := db.RequireRows(ctx, tx, (*db.EscalationPolicy)(nil), field+".escalationPolicyId", "escalation policy", []int{route.EscalationPolicyID})
		if err != nil {
			return err
		}
	}
	if err := db.RequireRows(ctx, tx, (*db.User)(nil), field+".recipientUserIds[]", "user", route.RecipientUserIDs); err != nil {
		return err
	}
	return db.RequireRows(ctx, tx, (*db.Group)(nil), field+".recipientGroupIds[]", "group", route.RecipientGroupIDs)
}
