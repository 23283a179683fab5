package contacts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"regexp"
	"strings"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/egress"
	"github.com/klaxonhq/klaxon/invalid"
	"github.com/klaxonhq/klaxon/notifiers"
)

// ContactMethodInput is what createContactMethod and updateContactMethod
// take; nil means "default" on create and "unchanged" on update. UserID
// and Type are fixed once the method exists.
type ContactMethodInput struct {
	UserID   *int
	Name     *string
	Type     *db.ContactType
	Value    *string
	Disabled *bool
}

// NotificationRuleInput is what createNotificationRule takes. The rule
// belongs to the contact method's owner.
type NotificationRuleInput struct {
	ContactMethodID int
	DelayMinutes    int
}

// maxRuleDelay is the longest a notification rule may wait: a day.
const maxRuleDelay = 1440

// ContactMethods returns the user's contact methods, oldest first.
func (s *Store) ContactMethods(ctx context.Context, userID int) ([]*db.ContactMethod, error) {
	var list []*db.ContactMethod
	if err := s.db.NewSelect().Model(&list).Where("user_id = ?", userID).Order("id").Scan(ctx); err != nil {
		return nil, fmt.Errorf("list contact methods of user %d: %w", userID, err)
	}
	return list, nil
}

func (s *Store) ContactMethod(ctx context.Context, id int) (*db.ContactMethod, error) {
	return s.ContactMethodByID(ctx, s.db, id)
}

// ContactMethodByID reads the method through idb, so the engine can read
// it inside its own transaction; a missing method is db.ErrNotFound.
func (s *Store) ContactMethodByID(ctx context.Context, idb bun.IDB, id int) (*db.ContactMethod, error) {
	cm := new(db.ContactMethod)
	if err := idb.NewSelect().Model(cm).Where("id = ?", id).Scan(ctx); err != nil {
		return nil, fmt.Errorf("load contact method %d: %w", id, db.Classify(err))
	}
	return cm, nil
}

// CreateContactMethod adds a contact method to a user; an address or
// number starts unverified and is not notified until verified.
func (s *Store) CreateContactMethod(ctx context.Context, in ContactMethodInput) (*db.ContactMethod, error) {
	switch {
	case in.UserID == nil:
		return nil, invalid.New("userId", "is required")
	case in.Type == nil:
		return nil, invalid.New("type", "is required")
	case in.Value == nil:
		return nil, invalid.New("value", "is required")
	}
	cm := &db.ContactMethod{UserID: *in.UserID, Type: *in.Type, CreatedAt: s.clock()}
	if err := s.applyContactMethod(cm, in); err != nil {
		return nil, err
	}
	cm.Verified = !cm.Type.NeedsVerification()
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if err := db.RequireRows(ctx, tx, (*db.User)(nil), "userId", "user", []int{cm.UserID}); err != nil {
			return err
		}
		if _, err := tx.NewInsert().Model(cm).Exec(ctx); err != nil {
			if db.IsConstraint(err) {
				return invalid.New("value", "this user already has this contact method")
			}
			return fmt.Errorf("create contact method: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return cm, nil
}

// UpdateContactMethod changes a method's name, value or disabled flag. A
// new value must be verified again.
func (s *Store) UpdateContactMethod(ctx context.Context, id int, in ContactMethodInput) (*db.ContactMethod, error) {
	if in.UserID != nil {
		return nil, invalid.New("userId", "cannot be changed")
	}
	var cm *db.ContactMethod
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		if cm, err = s.ContactMethodByID(ctx, tx, id); err != nil {
			return err
		}
		if in.Type != nil && *in.Type != cm.Type {
			return invalid.New("type", "cannot be changed; add a new contact method instead")
		}
		oldValue := cm.Value
		if err := s.applyContactMethod(cm, in); err != nil {
			return err
		}
		if cm.Value != oldValue && cm.Type.NeedsVerification() {
			cm.Verified = false
			if _, err := tx.NewDelete().Model((*db.ContactVerification)(nil)).Where("contact_method_id = ?", cm.ID).Exec(ctx); err != nil {
				return fmt.Errorf("drop verification code of contact method %d: %w", id, err)
			}
		}
		if _, err := tx.NewUpdate().Model(cm).WherePK().Exec(ctx); err != nil {
			if db.IsConstraint(err) {
				return invalid.New("value", "this user already has this contact method")
			}
			return fmt.Errorf("update contact method %d: %w", id, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return cm, nil
}

// DeleteContactMethod removes the method with its notification rules.
func (s *Store) DeleteContactMethod(ctx context.Context, id int) error {
	return db.DeleteByID[db.ContactMethod](ctx, s.db, id, "contact method")
}

func (s *Store) applyContactMethod(cm *db.ContactMethod, in ContactMethodInput) error {
	if !cm.Type.Valid() {
		return invalid.New("type", fmt.Sprintf("unknown contact type %q", cm.Type))
	}
	if in.Name != nil {
		name := strings.TrimSpace(*in.Name)
		if len(name) > 200 {
			return invalid.New("name", "must be at most 200 characters")
		}
		cm.Name = name
	}
	if in.Value != nil {
		value, err := s.ContactValue(cm.Type, *in.Value)
		if err != nil {
			return err
		}
		cm.Value = value
	}
	if in.Disabled != nil {
		cm.Disabled = *in.Disabled
	}
	return nil
}

var (
	e164      = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
	ntfyTopic = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	// slackID is a Slack member (U, W) or conversation (C, G, D) id.
	slackID = regexp.MustCompile(`^[UWCGD][A-Z0-9]{6,20}$`)
)

// ContactValue checks value as an address of type t and returns it in
// its stored form: an email address; an E.164 phone number (spaces,
// dashes, dots and parentheses are dropped); an https URL (http only to
// an address in the outbound allow list) whose host is not plainly a
// local address; a bare ntfy topic or topic URL; or a browser's push
// subscription JSON.
func (s *Store) ContactValue(t db.ContactType, value string) (string, error) {
	value = strings.TrimSpace(value)
	if value == "" {
		return "", invalid.New("value", "is required")
	}
	if len(value) > 2000 {
		return "", invalid.New("value", "must be at most 2000 characters")
	}
	switch t {
	case db.ContactEmail:
		addr, err := mail.ParseAddress(value)
		if err != nil || addr.Address != value {
			return "", invalid.New("value", "is not a valid email address")
		}
		return value, nil
	case db.ContactSMS, db.ContactVoice:
		phone := strings.Map(func(r rune) rune {
			if strings.ContainsRune(" -.()", r) {
				return -1
			}
			return r
		}, value)
		if !e164.MatchString(phone) {
			return "", invalid.New("value", "must be a phone number in international format, like +15551234567")
		}
		return phone, nil
	case db.ContactNtfy:
		if ntfyTopic.MatchString(value) {
			return value, nil
		}
		if err := s.webURL(value, "must be an ntfy topic name or its https URL"); err != nil {
			return "", err
		}
		return value, nil
	case db.ContactPush:
		sub, canonical, err := notifiers.NormalizePushSubscription(value)
		if err != nil {
			return "", invalid.New("value", "is not a push subscription: "+err.Error())
		}
		if err := s.webURL(sub.Endpoint, "push subscription endpoint must be an https URL"); err != nil {
			return "", err
		}
		return canonical, nil
	case db.ContactSlackApp:
		if !slackID.MatchString(value) {
			return "", invalid.New("value", "must be a Slack member id (U…, W…) or channel id (C…, G…, D…), as Slack shows under \"Copy member ID\" or the channel's details")
		}
		return value, nil
	case db.ContactSlack, db.ContactTeams, db.ContactWebhook, db.ContactMattermost:
		if err := s.webURL(value, "must be an https URL"); err != nil {
			return "", err
		}
		return value, nil
	}
	return "", invalid.New("type", fmt.Sprintf("unknown contact type %q", t))
}

// webURL accepts https URLs, and http ones to addresses the operator
// allowed (receivers on the premises, local testing); notWeb is the
// reason given for anything else. Credentials in a URL are refused so
// they never show up where the value is displayed. A host that is plainly
// an address the senders would refuse (127.0.0.1, 10.0.0.5, localhost,
// [::1]) is refused here too, with the reason: the senders' own check
// when they connect is the one that holds, since a name can resolve to
// anything later.
func (s *Store) webURL(value, notWeb string) error {
	u, err := url.Parse(value)
	if err != nil || u.Host == "" || u.User != nil || (u.Scheme != "https" && u.Scheme != "http") {
		return invalid.New("value", notWeb)
	}
	guard := s.channels.Guard()
	var refused *egress.RefusedError
	if err := guard.CheckURL(value); errors.As(err, &refused) {
		return invalid.New("value", fmt.Sprintf("points at a %s address, which Klaxon does not send to; an operator can allow its range with KLAXON_OUTBOUND_ALLOW", refused.Class))
	}
	if u.Scheme == "http" && !guard.Listed(value) {
		return invalid.New("value", notWeb)
	}
	return nil
}

// NotificationRules returns the user's rules by delay, then age.
func (s *Store) NotificationRules(ctx context.Context, userID int) ([]*db.NotificationRule, error) {
	var list []*db.NotificationRule
	err := s.db.NewSelect().Model(&list).Where("user_id = ?", userID).Order("delay_minutes", "id").Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("list notification rules of user %d: %w", userID, err)
	}
	return list, nil
}

func (s *Store) NotificationRule(ctx context.Context, id int) (*db.NotificationRule, error) {
	rule := new(db.NotificationRule)
	if err := s.db.NewSelect().Model(rule).Where("id = ?", id).Scan(ctx); err != nil {
		return nil, fmt.Errorf("load notification rule %d: %w", id, db.Classify(err))
	}
	return rule, nil
}

// CreateNotificationRule adds a rule for the contact method's owner. A
// second rule for the same method and delay is refused.
func (s *Store) CreateNotificationRule(ctx context.Context, in NotificationRuleInput) (*db.NotificationRule, error) {
	if in.DelayMinutes < 0 || in.DelayMinutes > maxRuleDelay {
		return nil, invalid.New("delayMinutes", fmt.Sprintf("must be between 0 and %d", maxRuleDelay))
	}
	rule := &db.NotificationRule{ContactMethodID: in.ContactMethodID, DelayMinutes: in.DelayMinutes, CreatedAt: s.clock()}
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		cm, err := s.ContactMethodByID(ctx, tx, in.ContactMethodID)
		if err != nil {
			if isNotFound(err) {
				return invalid.New("contactMethodId", fmt.Sprintf("contact method %d does not exist", in.ContactMethodID))
			}
			return err
		}
		rule.UserID = cm.UserID
		if _, err := tx.NewInsert().Model(rule).Exec(ctx); err != nil {
			if db.IsConstraint(err) {
				return invalid.New("delayMinutes", "this contact method already has a rule with this delay")
			}
			return fmt.Errorf("create notification rule: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return rule, nil
}

func (s *Store) DeleteNotificationRule(ctx context.Context, id int) error {
	return db.DeleteByID[db.NotificationRule](ctx, s.db, id, "notification rule")
}

// RegisterPushSubscription stores a browser's push subscription as a PUSH
// method of userID. A browser keeps its endpoint across sign-ins, so the
// endpoint moves to whoever registered it last: on a shared machine the
// previous user's pages must stop arriving there.
func (s *Store) RegisterPushSubscription(ctx context.Context, userID int, sub notifiers.PushSubscription, name string) (*db.ContactMethod, error) {
	raw, err := json.Marshal(sub)
	if err != nil {
		return nil, fmt.Errorf("encode push subscription: %w", err)
	}
	value, err := s.ContactValue(db.ContactPush, string(raw))
	if err != nil {
		return nil, err
	}
	name = strings.TrimSpace(name)
	if name == "" {
		name = "Browser"
	}
	if len(name) > 200 {
		return nil, invalid.New("name", "must be at most 200 characters")
	}
	endpoint := sub.Endpoint
	var cm *db.ContactMethod
	err = s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var existing []*db.ContactMethod
		if err := tx.NewSelect().Model(&existing).Where("type = ?", db.ContactPush).Order("id").Scan(ctx); err != nil {
			return fmt.Errorf("list push subscriptions: %w", err)
		}
		for _, m := range existing {
			var stored notifiers.PushSubscription
			if json.Unmarshal([]byte(m.Value), &stored) != nil || stored.Endpoint != endpoint {
				continue
			}
			if m.UserID == userID && cm == nil {
				cm = m
				continue
			}
			if err := db.DeleteByID[db.ContactMethod](ctx, tx, m.ID, "push subscription"); err != nil {
				return err
			}
		}
		if cm != nil {
			cm.Value, cm.Name, cm.Disabled, cm.Verified = value, name, false, true
			if _, err := tx.NewUpdate().Model(cm).WherePK().Exec(ctx); err != nil {
				return fmt.Errorf("update push subscription %d: %w", cm.ID, err)
			}
			return nil
		}
		cm = &db.ContactMethod{UserID: userID, Name: name, Type: db.ContactPush, Value: value, Verified: true, CreatedAt: s.clock()}
		if _, err := tx.NewInsert().Model(cm).Exec(ctx); err != nil {
			return fmt.Errorf("store push subscription: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return cm, nil
}

func isNotFound(err error) bool { return errors.Is(err, db.ErrNotFound) }
