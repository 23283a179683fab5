package contacts

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/invalid"
	"github.com/klaxonhq/klaxon/notifiers"
)

const (
	// verificationTTL is how long a code is good for: long enough to
	// switch to a mail client, short enough that an old message is
	// useless.
	verificationTTL = 15 * time.Minute
	// verificationResendAfter stops a user, or a script with their
	// token, from bombing a number with codes.
	verificationResendAfter = time.Minute
	// verificationMaxAttempts bounds guessing: five tries at a six-digit
	// code leave one chance in 200,000.
	verificationMaxAttempts = 5
)

// SendContactVerification sends a fresh six-digit code to a contact method
// that needs one, replacing any code sent before.
func (s *Store) SendContactVerification(ctx context.Context, id int) error {
	now := s.clock()
	cm, err := s.ContactMethodByID(ctx, s.db, id)
	if err != nil {
		return err
	}
	switch {
	case !cm.Type.NeedsVerification():
		return invalid.New("id", fmt.Sprintf("%s contact methods need no verification", cm.Type))
	case cm.Verified:
		return invalid.New("id", "this contact method is already verified")
	}
	if !s.channels.Enabled(cm.Type) {
		return invalid.New("id", fmt.Sprintf("the %s channel is not configured on this server", cm.Type))
	}
	code, err := verificationCode()
	if err != nil {
		return err
	}
	// The code is stored before it is sent, so a code that arrives is
	// always one that works; the resend limit is checked in the same
	// transaction so two quick requests cannot both send.
	err = s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		prev := new(db.ContactVerification)
		err := tx.NewSelect().Model(prev).Where("contact_method_id = ?", id).Scan(ctx)
		switch {
		case err == nil:
			if wait := prev.SentAt.Add(verificationResendAfter).Sub(now); wait > 0 {
				return &db.RateLimitError{Wait: wait, Reason: "a code was sent to this contact method less than a minute ago"}
			}
		case !errors.Is(db.Classify(err), db.ErrNotFound):
			return fmt.Errorf("load verification of contact method %d: %w", id, err)
		}
		v := &db.ContactVerification{
			ContactMethodID: id, CodeHash: hashVerificationCode(id, code), SentAt: now, ExpiresAt: now.Add(verificationTTL),
		}
		_, err = tx.NewInsert().Model(v).
			On("CONFLICT (contact_method_id) DO UPDATE").
			Set("code_hash = EXCLUDED.code_hash, attempts = 0, sent_at = EXCLUDED.sent_at, expires_at = EXCLUDED.expires_at").
			Exec(ctx)
		if err != nil {
			return fmt.Errorf("store verification code of contact method %d: %w", id, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sendCtx, cancel := context.WithTimeout(ctx, notifiers.SendTimeout)
	defer cancel()
	_, err = s.channels.Send(sendCtx, cm.Type, notifiers.Message{Destination: cm.Value, VerificationCode: code})
	if err != nil {
		s.log.WarnContext(ctx, "verification code not delivered", "contact_method", id, "type", cm.Type, "err", err)
		if notifiers.IsPermanent(err) {
			return invalid.New("id", "the code could not be delivered to this contact method; check its value")
		}
		return fmt.Errorf("send verification code to contact method %d: %w", id, err)
	}
	return nil
}

// VerifyContactMethod marks the method verified when code is the one last
// sent to it and still valid. Each wrong code counts against the limit.
func (s *Store) VerifyContactMethod(ctx context.Context, id int, code string) (*db.ContactMethod, error) {
	now := s.clock()
	code = strings.TrimSpace(code)
	var cm *db.ContactMethod
	var refusal error
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		if cm, err = s.ContactMethodByID(ctx, tx, id); err != nil {
			return err
		}
		if cm.Verified {
			return nil
		}
		v := new(db.ContactVerification)
		err = tx.NewSelect().Model(v).Where("contact_method_id = ?", id).Scan(ctx)
		if errors.Is(db.Classify(err), db.ErrNotFound) {
			return invalid.New("code", "no code was sent to this contact method; ask for one first")
		}
		if err != nil {
			return fmt.Errorf("load verification of contact method %d: %w", id, err)
		}
		switch {
		case !now.Before(v.ExpiresAt):
			return invalid.New("code", "this code has expired; ask for a new one")
		case v.Attempts >= verificationMaxAttempts:
			return invalid.New("code", "too many wrong codes; ask for a new one")
		}
		if subtle.ConstantTimeCompare([]byte(hashVerificationCode(id, code)), []byte(v.CodeHash)) != 1 {
			// The failed attempt must be counted even though the call
			// fails, so it commits and the refusal is returned after.
			if _, err := tx.NewUpdate().Model((*db.ContactVerification)(nil)).Set("attempts = attempts + 1").
				Where("contact_method_id = ?", id).Exec(ctx); err != nil {
				return fmt.Errorf("count verification attempt of contact method %d: %w", id, err)
			}
			refusal = invalid.New("code", "wrong code")
			return nil
		}
		cm.Verified = true
		if _, err := tx.NewUpdate().Model(cm).Column("verified").WherePK().Exec(ctx); err != nil {
			// The database holds each verified number to one user
			// (contact_methods_verified_number): an SMS reply acts as
			// whoever verified the number it comes from.
			if db.IsConstraint(err) {
				return invalid.New("id", "this number is already verified by another Klaxon user; it can be verified by one user at a time, so they (or an admin) must remove it first")
			}
			return fmt.Errorf("verify contact method %d: %w", id, err)
		}
		if _, err := tx.NewDelete().Model(v).WherePK().Exec(ctx); err != nil {
			return fmt.Errorf("drop verification code of contact method %d: %w", id, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if refusal != nil {
		return nil, refusal
	}
	return cm, nil
}

// verificationCode is six uniformly random digits.
func verificationCode() (string, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		return "", fmt.Errorf("generate verification code: %w", err)
	}
	return fmt.Sprintf("%06d", n.Int64()), nil
}

// hashVerificationCode binds the code to its method, so a code read out
// of one method's row proves nothing for another.
func hashVerificationCode(contactMethodID int, code string) string {
	sum := sha256.Sum256([]byte(strconv.Itoa(contactMethodID) + ":" + code))
	return hex.EncodeToString(sum[:])
}
