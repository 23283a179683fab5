package alerting

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/rules"
)

var (
	// ErrUnknownToken means no integration has the token a webhook used
	// (it never existed, or it was rotated out).
	ErrUnknownToken = errors.New("alerting: unknown integration token")
	// ErrIntegrationDisabled means the integration exists but is switched off.
	ErrIntegrationDisabled = errors.New("alerting: integration is disabled")
)

// IntegrationInput is what createIntegration and updateIntegration take;
// nil means "default" on create and "unchanged" on update.
type IntegrationInput struct {
	Name      *string
	Type      *rules.IntegrationType
	Enabled   *bool
	RulesetID *int
	Mapping   *rules.Mapping
}

// URL is where the integration's sender posts.
func (s *Service) URL(integ *db.Integration) string {
	return s.publicURL + "/webhooks/" + integ.Token
}

func (s *Service) Integrations(ctx context.Context) ([]*db.Integration, error) {
	var list []*db.Integration
	if err := s.db.NewSelect().Model(&list).Order("id").Scan(ctx); err != nil {
		return nil, fmt.Errorf("list integrations: %w", err)
	}
	return list, nil
}

func (s *Service) Integration(ctx context.Context, id int) (*db.Integration, error) {
	return loadIntegration(ctx, s.db, id)
}

func loadIntegration(ctx context.Context, idb bun.IDB, id int) (*db.Integration, error) {
	integ := new(db.Integration)
	if err := idb.NewSelect().Model(integ).Where("id = ?", id).Scan(ctx); err != nil {
		return nil, fmt.Errorf("load integration %d: %w", id, db.Classify(err))
	}
	return integ, nil
}

// CreateIntegration stores a new integration with a fresh token. Without
// a mapping or a ruleset it takes its type's preset, creating a ruleset of
// its own from the preset so the admin can edit it afterwards.
func (s *Service) CreateIntegration(ctx context.Context, in IntegrationInput) (*db.Integration, error) {
	if in.Name == nil {
		return nil, db.Invalid("name", "is required")
	}
	if in.Type == nil {
		return nil, db.Invalid("type", "is required")
	}
	presetMapping, presetRules, ok := rules.Preset(*in.Type)
	if !ok {
		return nil, db.Invalid("type", fmt.Sprintf("unknown integration type %q", *in.Type))
	}
	now := s.clock()
	integ := &db.Integration{Type: *in.Type, Enabled: true, Mapping: presetMapping, CreatedAt: now, UpdatedAt: now}
	if err := applyIntegration(integ, in); err != nil {
		return nil, err
	}
	token, err := newToken()
	if err != nil {
		return nil, err
	}
	integ.Token = token
	err = s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if in.RulesetID != nil {
			if err := rulesetExists(ctx, tx, *in.RulesetID); err != nil {
				return err
			}
		} else {
			rs, err := insertRuleset(ctx, tx, now, integ.Name+" rules", "Created from the "+string(integ.Type)+" preset.", presetRules)
			if err != nil {
				return err
			}
			integ.RulesetID = &rs.ID
		}
		if _, err := tx.NewInsert().Model(integ).Exec(ctx); err != nil {
			return fmt.Errorf("create integration: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return integ, nil
}

func (s *Service) UpdateIntegration(ctx context.Context, id int, in IntegrationInput) (*db.Integration, error) {
	if in.Type != nil {
		return nil, db.Invalid("type", "cannot be changed; create a new integration instead")
	}
	var integ *db.Integration
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		if integ, err = loadIntegration(ctx, tx, id); err != nil {
			return err
		}
		if err := applyIntegration(integ, in); err != nil {
			return err
		}
		if in.RulesetID != nil {
			if err := rulesetExists(ctx, tx, *in.RulesetID); err != nil {
				return err
			}
		}
		integ.UpdatedAt = s.clock()
		if _, err := tx.NewUpdate().Model(integ).WherePK().Exec(ctx); err != nil {
			return fmt.Errorf("update integration %d: %w", id, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return integ, nil
}

// DeleteIntegration removes the integration with its alerts and inbound log.
func (s *Service) DeleteIntegration(ctx context.Context, id int) error {
	res, err := s.db.NewDelete().Model((*db.Integration)(nil)).Where("id = ?", id).Exec(ctx)
	if err != nil {
		return fmt.Errorf("delete integration %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("delete integration %d: %w", id, db.ErrNotFound)
	}
	return nil
}

// RotateIntegrationToken replaces the token; the old URL stops working at once.
func (s *Service) RotateIntegrationToken(ctx context.Context, id int) (*db.Integration, error) {
	token, err := newToken()
	if err != nil {
		return nil, err
	}
	res, err := s.db.NewUpdate().Model((*db.Integration)(nil)).
		Set("token = ?", token).Set("updated_at = ?", s.clock()).
		Where("id = ?", id).Exec(ctx)
	if err != nil {
		return nil, fmt.Errorf("rotate token of integration %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, fmt.Errorf("rotate token of integration %d: %w", id, db.ErrNotFound)
	}
	return s.Integration(ctx, id)
}

func applyIntegration(integ *db.Integration, in IntegrationInput) error {
	if in.Name != nil {
		name := strings.TrimSpace(*in.Name)
		if name == "" || len(name) > 200 {
			return db.Invalid("name", "must be 1 to 200 characters")
		}
		integ.Name = name
	}
	if in.Enabled != nil {
		integ.Enabled = *in.Enabled
	}
	if in.RulesetID != nil {
		integ.RulesetID = in.RulesetID
	}
	if in.Mapping != nil {
		if err := in.Mapping.Validate(); err != nil {
			return err
		}
		integ.Mapping = *in.Mapping
	}
	return nil
}

func newToken() (string, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("generate integration token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(raw), nil
}
