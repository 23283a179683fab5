package auth

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/uptrace/bun"
	"golang.org/x/crypto/bcrypt"

	"github.com/klaxonhq/klaxon/audit"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/invalid"
)

// ExternalIdentity is a person an identity provider has vouched for, and
// what its claims map to here.
type ExternalIdentity struct {
	// Method names the way they signed in, for the audit log ("OIDC").
	Method string
	Email  string
	Name   string
	// Role is the role of a user created at this sign-in. With
	// RoleFromClaims it is also set on an existing user at each sign-in,
	// so the provider stays the one place roles are granted.
	Role           db.Role
	RoleFromClaims bool
	// Teams are the team roles the provider's groups grant, by team name.
	// Only the teams named in ManagedTeams are kept in step: a membership
	// of one of them that Teams does not grant is removed, and every
	// other team is left as it is.
	Teams        map[string]db.TeamRole
	ManagedTeams []string
}

// ExternalSignIn is what a sign-in through an identity provider did.
type ExternalSignIn struct {
	User *db.User
	// Code is the one-time login code the app exchanges for a session.
	Code    string
	Created bool
	// KeptLastAdmin is set when the claims would have demoted the last
	// admin, which was refused: the role was kept.
	KeptLastAdmin bool
}

// loginCodeTTL is how long the app has to exchange a login code: it is
// redirected with it at once, so a minute covers a slow page load and
// little else.
const loginCodeTTL = time.Minute

// ssoActor is the actor of the changes an identity provider's claims make.
const ssoActor = "sso"

// ErrInvalidLoginCode is a login code that is unknown, used or expired;
// it is also ErrUnauthenticated.
var ErrInvalidLoginCode = fmt.Errorf("%w: invalid or expired login code", ErrUnauthenticated)

// SignInExternal signs in a person the identity provider vouched for:
// it creates their user on the first sign-in, keeps their role and
// managed teams in step with the claims, records the sign-in, and issues
// a login code, all in one transaction.
func (s *Service) SignInExternal(ctx context.Context, id ExternalIdentity) (*ExternalSignIn, error) {
	email := normalizeEmail(id.Email)
	if !id.Role.Valid() {
		return nil, fmt.Errorf("sign in %s: role %q is not a role", email, id.Role)
	}
	// A user made here can never sign in with a password: the hash is
	// of random bytes nobody was shown.
	unusable, err := s.unusablePasswordHash()
	if err != nil {
		return nil, err
	}
	ctx = audit.WithSystemActor(ctx, ssoActor)
	out := &ExternalSignIn{}
	err = s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		now := s.now()
		u, created, err := s.findOrCreateExternalUser(ctx, tx, now, email, id, unusable)
		if err != nil {
			return err
		}
		out.Created = created
		// The break-glass admin's role stays what it is: it is the way in
		// when the provider is wrong, and the provider must not be able to
		// take it away.
		if !created && id.RoleFromClaims && u.Role != id.Role && !s.isBreakGlass(u) {
			if out.KeptLastAdmin, err = s.setExternalRole(ctx, tx, now, u, id.Role); err != nil {
				return err
			}
		}
		if err := syncManagedTeams(ctx, tx, now, u.ID, id.Teams, id.ManagedTeams); err != nil {
			return err
		}
		if err := audit.Record(ctx, tx, now, audit.User, u.ID, audit.SignedIn, nil, signInRecord{Method: id.Method}); err != nil {
			return err
		}
		code, err := issueLoginCode(ctx, tx, now, u.ID)
		if err != nil {
			return err
		}
		out.User, out.Code = u, code
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sign in %s: %w", email, err)
	}
	return out, nil
}

type signInRecord struct {
	Method string `json:"method"`
}

func (s *Service) unusablePasswordHash() (string, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("generate unusable password: %w", err)
	}
	// bcrypt reads at most 72 bytes; the encoded 32 random bytes are 43.
	hash, err := bcrypt.GenerateFromPassword([]byte(base64.RawURLEncoding.EncodeToString(raw)), s.passwordCost)
	if err != nil {
		return "", fmt.Errorf("hash unusable password: %w", err)
	}
	return string(hash), nil
}

// findOrCreateExternalUser finds the user by email, or creates them. Two
// first sign-ins of one person at once create one user: the insert
// skips an email already taken and the row is read back.
func (s *Service) findOrCreateExternalUser(ctx context.Context, tx bun.Tx, now time.Time, email string, id ExternalIdentity, passwordHash string) (*db.User, bool, error) {
	u := new(db.User)
	err := tx.NewSelect().Model(u).Where("email = ?", email).Scan(ctx)
	if err == nil {
		return u, false, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, false, fmt.Errorf("find user: %w", err)
	}
	name, role := id.Name, id.Role
	u = &db.User{CreatedAt: now, UpdatedAt: now}
	if err := s.apply(u, UserInput{Email: &email, Name: &name, Role: &role}); err != nil {
		return nil, false, err
	}
	u.PasswordHash = passwordHash
	inserted, err := insertUnlessTaken(ctx, tx, u, "email", email)
	if err != nil {
		return nil, false, fmt.Errorf("create user: %w", err)
	}
	if !inserted {
		return u, false, nil
	}
	if err := audit.Record(ctx, tx, now, audit.User, u.ID, audit.Created, nil, recordOfUser(u)); err != nil {
		return nil, false, err
	}
	return u, true, nil
}

// insertUnlessTaken inserts row unless another row already has value in
// the unique column; then it reads that row into row instead. Either way
// row ends up with its id.
func insertUnlessTaken(ctx context.Context, tx bun.Tx, row any, column, value string) (inserted bool, err error) {
	res, err := tx.NewInsert().Model(row).On("CONFLICT (" + column + ") DO NOTHING").Returning("id").Exec(ctx)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, err
	}
	if n == 0 {
		return false, tx.NewSelect().Model(row).Where("? = ?", bun.Ident(column), value).Scan(ctx)
	}
	return true, nil
}

// setExternalRole gives u the role the claims map to, unless that would
// leave no admin: then it keeps the role and says so.
func (s *Service) setExternalRole(ctx context.Context, tx bun.Tx, now time.Time, u *db.User, role db.Role) (keptLastAdmin bool, err error) {
	if u.Role == db.RoleAdmin {
		if err := ensureAnotherAdmin(ctx, tx, u.ID); err != nil {
			var fieldErr *invalid.Field
			if errors.As(err, &fieldErr) {
				return true, nil
			}
			return false, err
		}
	}
	before := recordOfUser(u)
	u.Role, u.UpdatedAt = role, now
	_, err = tx.NewUpdate().Model(u).Column("role", "updated_at").WherePK().Exec(ctx)
	if err != nil {
		return false, fmt.Errorf("set role of user %d: %w", u.ID, err)
	}
	return false, audit.Record(ctx, tx, now, audit.User, u.ID, audit.Updated, before, recordOfUser(u))
}

// membershipRecord is what the audit log keeps of one member of a team
// when sign-in changes it.
type membershipRecord struct {
	UserID int         `json:"userId"`
	Role   db.TeamRole `json:"role"`
}

// syncManagedTeams makes the user's memberships of the managed teams
// what grants says, creating a granted team that does not exist yet.
func syncManagedTeams(ctx context.Context, tx bun.Tx, now time.Time, userID int, grants map[string]db.TeamRole, managed []string) error {
	names := slices.Clone(managed)
	slices.Sort(names)
	names = slices.Compact(names)
	for _, name := range names {
		want, granted := grants[name]
		if granted && !want.Valid() {
			return fmt.Errorf("team %q: %q is not a team role", name, want)
		}
		g := new(db.Group)
		err := tx.NewSelect().Model(g).Where("name = ?", name).Scan(ctx)
		switch {
		case errors.Is(err, sql.ErrNoRows) && !granted:
			continue
		case errors.Is(err, sql.ErrNoRows):
			if g, err = createTeam(ctx, tx, now, name); err != nil {
				return err
			}
		case err != nil:
			return fmt.Errorf("find team %q: %w", name, err)
		}
		if err := syncMembership(ctx, tx, now, g.ID, userID, want, granted); err != nil {
			return err
		}
	}
	return nil
}

// createTeam makes a team the claims name that does not exist yet. A
// team created beside it by another sign-in is taken as it is.
func createTeam(ctx context.Context, tx bun.Tx, now time.Time, name string) (*db.Group, error) {
	clean, err := invalid.Name("name", name)
	if err != nil {
		return nil, fmt.Errorf("team %q: %w", name, err)
	}
	g := &db.Group{Name: clean, CreatedAt: now}
	inserted, err := insertUnlessTaken(ctx, tx, g, "name", clean)
	if err != nil {
		return nil, fmt.Errorf("create team %q: %w", name, err)
	}
	if !inserted {
		return g, nil
	}
	if err := recordGroup(ctx, tx, now, g, audit.Created, nil); err != nil {
		return nil, err
	}
	return g, nil
}

func syncMembership(ctx context.Context, tx bun.Tx, now time.Time, groupID, userID int, want db.TeamRole, granted bool) error {
	m := new(db.GroupMember)
	err := tx.NewSelect().Model(m).Where("group_id = ? AND user_id = ?", groupID, userID).Scan(ctx)
	member := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("membership of user %d in team %d: %w", userID, groupID, err)
	}
	switch {
	case granted && !member:
		m = &db.GroupMember{GroupID: groupID, UserID: userID, Role: want}
		if _, err := tx.NewInsert().Model(m).On("CONFLICT (group_id, user_id) DO UPDATE").Set("role = EXCLUDED.role").Exec(ctx); err != nil {
			return fmt.Errorf("add user %d to team %d: %w", userID, groupID, err)
		}
		return audit.Record(ctx, tx, now, audit.Group, groupID, audit.MemberAdded, nil, membershipRecord{UserID: userID, Role: want})
	case granted && m.Role != want:
		before := membershipRecord{UserID: userID, Role: m.Role}
		_, err := tx.NewUpdate().Model((*db.GroupMember)(nil)).Set("role = ?", want).
			Where("group_id = ? AND user_id = ?", groupID, userID).Exec(ctx)
		if err != nil {
			return fmt.Errorf("set role of user %d in team %d: %w", userID, groupID, err)
		}
		return audit.Record(ctx, tx, now, audit.Group, groupID, audit.Updated, before, membershipRecord{UserID: userID, Role: want})
	case !granted && member:
		_, err := tx.NewDelete().Model((*db.GroupMember)(nil)).Where("group_id = ? AND user_id = ?", groupID, userID).Exec(ctx)
		if err != nil {
			return fmt.Errorf("remove user %d from team %d: %w", userID, groupID, err)
		}
		return audit.Record(ctx, tx, now, audit.Group, groupID, audit.MemberRemoved, membershipRecord{UserID: userID, Role: m.Role}, nil)
	}
	return nil
}

// issueLoginCode stores the hash of a new login code for the user and
// returns the code. Codes past their time are swept here, so the table
// holds no more than the last minute's sign-ins.
func issueLoginCode(ctx context.Context, tx bun.Tx, now time.Time, userID int) (string, error) {
	if _, err := tx.NewDelete().Model((*db.LoginCode)(nil)).Where("expires_at <= ?", now).Exec(ctx); err != nil {
		return "", fmt.Errorf("sweep login codes: %w", err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("generate login code: %w", err)
	}
	code := base64.RawURLEncoding.EncodeToString(raw)
	row := &db.LoginCode{CodeHash: hashSecret(code), UserID: userID, CreatedAt: now, ExpiresAt: now.Add(loginCodeTTL)}
	if _, err := tx.NewInsert().Model(row).Exec(ctx); err != nil {
		return "", fmt.Errorf("store login code: %w", err)
	}
	return code, nil
}

// ExchangeLoginCode turns a login code into a session, once: the code is
// deleted in the same transaction that reads it, so of two exchanges of
// one code at most one succeeds. Failed exchanges count against the
// client's address like failed passwords.
func (s *Service) ExchangeLoginCode(ctx context.Context, code string) (*Session, error) {
	if s.tokens == nil {
		return nil, errors.New("exchange login code: this service cannot issue tokens")
	}
	var keys []string
	if addr := clientAddrFrom(ctx); addr != "" {
		keys = append(keys, "address "+addr)
	}
	attempt, err := s.throttle.reserve(s.now(), keys...)
	if err != nil {
		return nil, err
	}
	// A good code gives the attempt back rather than clearing the
	// address's count: only failures are worth remembering.
	defer attempt.release()
	var u *db.User
	err = s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		row := new(db.LoginCode)
		err := tx.NewSelect().Model(row).Where("code_hash = ?", hashSecret(code)).Scan(ctx)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrInvalidLoginCode
		}
		if err != nil {
			return fmt.Errorf("find login code: %w", err)
		}
		res, err := tx.NewDelete().Model(row).WherePK().Exec(ctx)
		if err != nil {
			return fmt.Errorf("use login code: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return ErrInvalidLoginCode
		}
		if !s.now().Before(row.ExpiresAt) {
			return ErrInvalidLoginCode
		}
		u, err = userByID(ctx, tx, row.UserID)
		return err
	})
	if errors.Is(err, ErrInvalidLoginCode) || errors.Is(err, db.ErrNotFound) {
		attempt.failed()
		return nil, ErrInvalidLoginCode
	}
	if err != nil {
		return nil, fmt.Errorf("exchange login code: %w", err)
	}
	token, exp, err := s.tokens.Issue(u)
	if err != nil {
		return nil, fmt.Errorf("exchange login code: %w", err)
	}
	return &Session{Token: token, ExpiresAt: exp, User: u}, nil
}
