package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"github.com/klaxonhq/klaxon/invalid"
	"net/mail"
	"strings"
	"time"

	"github.com/uptrace/bun"
	"golang.org/x/crypto/bcrypt"

	"github.com/klaxonhq/klaxon/audit"
	"github.com/klaxonhq/klaxon/db"
)

const minPasswordLen = 8

// Service manages users, groups and sessions.
type Service struct {
	db     *db.DB
	tokens *Tokens
	now    func() time.Time
	// passwordCost is the bcrypt cost of new password hashes.
	passwordCost int
	// dummyHash is compared against when a login names no user, so a
	// failed login takes as long whether or not the account exists. It is
	// ready before the first login: made on first use, it made the first
	// unknown email slower than the rest, which told it apart.
	dummyHash []byte
	throttle  *loginThrottle
	// passwordLoginOff and breakGlassEmail are set by SetPasswordLogin.
	passwordLoginOff bool
	breakGlassEmail  string
}

// defaultDummyHash is a bcrypt hash at bcrypt.DefaultCost of a password
// no account has, made once and kept here so that a service has its dummy
// without spending a hash at every start. Comparing against it takes as
// long as against any hash of that cost, which is all it is for.
const defaultDummyHash = "$2a$10$eHQf/bAcjV0JHA5qwmfdz./UH8OchJXVRSTtxvbETQF/CHoUeLwQW"

// NewService builds the service; tokens may be nil in tools that manage
// users but never sign anyone in.
func NewService(d *db.DB, tokens *Tokens, now func() time.Time) (*Service, error) {
	// Stored times are UTC in whole microseconds, as both engines keep them.
	clock := func() time.Time { return now().UTC().Truncate(time.Microsecond) }
	return &Service{
		db: d, tokens: tokens, now: clock, passwordCost: bcrypt.DefaultCost,
		dummyHash: []byte(defaultDummyHash), throttle: newLoginThrottle(DefaultLoginLimits()),
	}, nil
}

// SetPasswordCost sets the bcrypt cost of the password hashes made from
// now on (bcrypt.DefaultCost unless set); hashes already stored keep
// theirs. A lower cost is for tests that sign many users in. The dummy
// hash is made at the new cost here, before any login needs it.
func (s *Service) SetPasswordCost(cost int) error {
	if cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		return fmt.Errorf("password cost must be %d to %d", bcrypt.MinCost, bcrypt.MaxCost)
	}
	dummy := []byte(defaultDummyHash)
	if cost != bcrypt.DefaultCost {
		var err error
		if dummy, err = bcrypt.GenerateFromPassword([]byte("no account has this password"), cost); err != nil {
			return fmt.Errorf("make dummy password hash: %w", err)
		}
	}
	s.passwordCost, s.dummyHash = cost, dummy
	return nil
}

// SetLoginLimits replaces the back-off on failed sign-ins; nil turns it
// off.
func (s *Service) SetLoginLimits(limits *LoginLimits) {
	if limits == nil {
		s.throttle = nil
		return
	}
	s.throttle = newLoginThrottle(*limits)
}

// Session is a signed-in user and their token.
type Session struct {
	Token     string
	ExpiresAt time.Time
	User      *db.User
}

// Login checks a password and issues a session token.
func (s *Service) Login(ctx context.Context, email, password string) (*Session, error) {
	if s.tokens == nil {
		return nil, errors.New("login: this service cannot issue tokens")
	}
	email = normalizeEmail(email)
	keys := []string{"account " + email}
	if addr := clientAddrFrom(ctx); addr != "" {
		keys = append(keys, "address "+addr)
	}
	attempt, err := s.throttle.reserve(s.now(), keys...)
	if err != nil {
		return nil, err
	}
	defer attempt.release()
	var u db.User
	err = s.db.NewSelect().Model(&u).Where("email = ?", email).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		bcrypt.CompareHashAndPassword(s.dummyHash, []byte(password))
		attempt.failed()
		return nil, s.refusal()
	}
	if err != nil {
		return nil, fmt.Errorf("login: %w", err)
	}
	if u.PasswordHash == "" || bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(password)) != nil {
		attempt.failed()
		return nil, s.refusal()
	}
	if s.passwordLoginRefused(&u) {
		attempt.failed()
		return nil, ErrPasswordLoginDisabled
	}
	attempt.succeeded()
	token, exp, err := s.tokens.Issue(&u)
	if err != nil {
		return nil, fmt.Errorf("login: %w", err)
	}
	return &Session{Token: token, ExpiresAt: exp, User: &u}, nil
}

// Authenticate turns a bearer token into the current user record, so that
// a changed role or a deleted user takes effect at once.
func (s *Service) Authenticate(ctx context.Context, token string) (*db.User, error) {
	u, _, err := s.AuthenticateUntil(ctx, token)
	return u, err
}

// AuthenticateUntil is Authenticate that also says when the token expires,
// for connections that outlive a request. The token is a session token
// or an API key.
func (s *Service) AuthenticateUntil(ctx context.Context, token string) (*db.User, time.Time, error) {
	if strings.HasPrefix(token, apiKeyPrefix) {
		return s.authenticateAPIKey(ctx, token)
	}
	if s.tokens == nil {
		return nil, time.Time{}, ErrUnauthenticated
	}
	claims, err := s.tokens.verify(token)
	if err != nil {
		return nil, time.Time{}, err
	}
	u, err := s.User(ctx, claims.userID)
	if errors.Is(err, db.ErrNotFound) {
		return nil, time.Time{}, fmt.Errorf("%w: user no longer exists", ErrUnauthenticated)
	}
	if err != nil {
		return nil, time.Time{}, err
	}
	// A token from before nonces were issued carries none and is refused:
	// upgrading signs everyone out once.
	if u.SessionNonce == "" || subtle.ConstantTimeCompare([]byte(claims.nonce), []byte(u.SessionNonce)) != 1 {
		return nil, time.Time{}, fmt.Errorf("%w: issued to another user", ErrUnauthenticated)
	}
	if claims.version != u.TokenVersion {
		return nil, time.Time{}, fmt.Errorf("%w: signed out", ErrUnauthenticated)
	}
	return u, claims.expires, nil
}

// SignOut ends every session of the user: all their tokens, on every
// device, stop working at once. API keys are revoked on their own.
func (s *Service) SignOut(ctx context.Context, userID int) error {
	return s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		u, err := userByID(ctx, tx, userID)
		if err != nil {
			return fmt.Errorf("sign out: %w", err)
		}
		before := recordOfUser(u)
		u.UpdatedAt = s.now()
		if err := bumpTokenVersion(ctx, tx, u); err != nil {
			return err
		}
		return audit.Record(ctx, tx, u.UpdatedAt, audit.User, userID, audit.SignedOut, before, recordOfUser(u))
	})
}

// bumpTokenVersion ends every session of u, recording u.UpdatedAt as the
// time, and reads the new version back into u.
func bumpTokenVersion(ctx context.Context, tx bun.Tx, u *db.User) error {
	_, err := tx.NewUpdate().Model((*db.User)(nil)).
		Set("token_version = token_version + 1").Set("updated_at = ?", u.UpdatedAt).
		Where("id = ?", u.ID).Exec(ctx)
	if err != nil {
		return fmt.Errorf("end sessions of user %d: %w", u.ID, err)
	}
	if err := tx.NewSelect().Model(u).Column("token_version").WherePK().Scan(ctx); err != nil {
		return fmt.Errorf("end sessions of user %d: %w", u.ID, err)
	}
	return nil
}

// UserInput is what createUser and updateUser take; nil means unchanged.
type UserInput struct {
	Email    *string
	Name     *string
	Password *string
	Role     *db.Role
}

func (s *Service) User(ctx context.Context, id int) (*db.User, error) {
	return userByID(ctx, s.db, id)
}

func userByID(ctx context.Context, idb bun.IDB, id int) (*db.User, error) {
	return db.LoadByID[db.User](ctx, idb, id, "user")
}

func (s *Service) Users(ctx context.Context) ([]*db.User, error) {
	var users []*db.User
	if err := s.db.NewSelect().Model(&users).Order("id").Scan(ctx); err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return users, nil
}

// UsersByID loads the users with the given ids, in no particular order.
func (s *Service) UsersByID(ctx context.Context, ids []int) ([]*db.User, error) {
	var users []*db.User
	if len(ids) == 0 {
		return users, nil
	}
	if err := s.db.NewSelect().Model(&users).Where("id IN (?)", bun.In(ids)).Scan(ctx); err != nil {
		return nil, fmt.Errorf("load users: %w", err)
	}
	return users, nil
}

func (s *Service) CreateUser(ctx context.Context, in UserInput) (*db.User, error) {
	if in.Email == nil {
		return nil, invalid.New("email", "is required")
	}
	if in.Password == nil {
		return nil, invalid.New("password", "is required")
	}
	if in.Role == nil {
		role := db.RoleViewer
		in.Role = &role
	}
	now := s.now()
	u := &db.User{CreatedAt: now, UpdatedAt: now}
	if err := s.apply(u, in); err != nil {
		return nil, err
	}
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewInsert().Model(u).Exec(ctx); err != nil {
			if db.IsConstraint(err) {
				return invalid.New("email", "is already in use")
			}
			return fmt.Errorf("create user: %w", err)
		}
		return audit.Record(ctx, tx, now, audit.User, u.ID, audit.Created, nil, recordOfUser(u))
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

func (s *Service) UpdateUser(ctx context.Context, id int, in UserInput) (*db.User, error) {
	var updated *db.User
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		u, err := userByID(ctx, tx, id)
		if err != nil {
			return err
		}
		before := recordOfUser(u)
		demotesAdmin := u.Role == db.RoleAdmin && in.Role != nil && *in.Role != db.RoleAdmin
		if err := s.apply(u, in); err != nil {
			return err
		}
		if demotesAdmin {
			if err := ensureAnotherAdmin(ctx, tx, id); err != nil {
				return err
			}
		}
		u.UpdatedAt = s.now()
		// The token version is only ever bumped in the database, never
		// written from what was read, so an update made beside a sign-out
		// cannot bring the ended sessions back.
		if _, err := tx.NewUpdate().Model(u).WherePK().ExcludeColumn("token_version").Exec(ctx); err != nil {
			if db.IsConstraint(err) {
				return invalid.New("email", "is already in use")
			}
			return fmt.Errorf("update user %d: %w", id, err)
		}
		// A new password ends every session, the caller's own included: a
		// session begun with the old password, perhaps by whoever
		// learned it, must not outlive it. The caller signs in again.
		if in.Password != nil {
			if err := bumpTokenVersion(ctx, tx, u); err != nil {
				return err
			}
		}
		updated = u
		return audit.Record(ctx, tx, u.UpdatedAt, audit.User, id, audit.Updated, before, recordOfUser(u))
	})
	return updated, err
}

func (s *Service) DeleteUser(ctx context.Context, id int) error {
	return s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		u, err := userByID(ctx, tx, id)
		if err != nil {
			return err
		}
		if u.Role == db.RoleAdmin {
			if err := ensureAnotherAdmin(ctx, tx, id); err != nil {
				return err
			}
		}
		if _, err := tx.NewDelete().Model(u).WherePK().Exec(ctx); err != nil {
			return fmt.Errorf("delete user %d: %w", id, err)
		}
		return audit.Record(ctx, tx, s.now(), audit.User, id, audit.Deleted, recordOfUser(u), nil)
	})
}

// ensureAnotherAdmin refuses to leave the system without an administrator.
func ensureAnotherAdmin(ctx context.Context, tx bun.Tx, exceptID int) error {
	n, err := tx.NewSelect().Model((*db.User)(nil)).Where("role = ? AND id <> ?", db.RoleAdmin, exceptID).Count(ctx)
	if err != nil {
		return fmt.Errorf("count admins: %w", err)
	}
	if n == 0 {
		return invalid.New("role", "the last admin cannot be removed or demoted")
	}
	return nil
}

func (s *Service) apply(u *db.User, in UserInput) error {
	if in.Email != nil {
		email := normalizeEmail(*in.Email)
		if addr, err := mail.ParseAddress(email); err != nil || addr.Address != email {
			return invalid.New("email", "is not a valid email address")
		}
		u.Email = email
	}
	if in.Name != nil {
		name := strings.TrimSpace(*in.Name)
		if len(name) > 200 {
			return invalid.New("name", "must be at most 200 characters")
		}
		u.Name = name
	}
	if in.Role != nil {
		if !in.Role.Valid() {
			return invalid.New("role", "must be ADMIN, RESPONDER or VIEWER")
		}
		u.Role = *in.Role
	}
	if in.Password != nil {
		if len(*in.Password) < minPasswordLen {
			return invalid.New("password", fmt.Sprintf("must be at least %d characters", minPasswordLen))
		}
		if len(*in.Password) > 72 {
			return invalid.New("password", "must be at most 72 bytes")
		}
		hash, err := bcrypt.GenerateFromPassword([]byte(*in.Password), s.passwordCost)
		if err != nil {
			return fmt.Errorf("hash password: %w", err)
		}
		u.PasswordHash = string(hash)
	}
	return nil
}

// DefaultAdminEmail is the first admin's email when none is configured.
const DefaultAdminEmail = "admin@localhost"

// EnsureAdmin creates the first admin when the database has no user at
// all. With an empty password it generates one and returns it so the
// caller can show it once; otherwise generated is empty.
func (s *Service) EnsureAdmin(ctx context.Context, email, password string) (created *db.User, generated string, err error) {
	n, err := s.db.NewSelect().Model((*db.User)(nil)).Count(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("count users: %w", err)
	}
	if n > 0 {
		return nil, "", nil
	}
	if email == "" {
		email = DefaultAdminEmail
	}
	if password == "" {
		raw := make([]byte, 18)
		if _, err := rand.Read(raw); err != nil {
			return nil, "", fmt.Errorf("generate admin password: %w", err)
		}
		password = base64.RawURLEncoding.EncodeToString(raw)
		generated = password
	}
	role := db.RoleAdmin
	name := "Administrator"
	u, err := s.CreateUser(ctx, UserInput{Email: &email, Name: &name, Password: &password, Role: &role})
	if err != nil {
		return nil, "", fmt.Errorf("create first admin: %w", err)
	}
	return u, generated, nil
}

func normalizeEmail(email string) string {
	return strings.ToLower(strings.TrimSpace(email))
}
