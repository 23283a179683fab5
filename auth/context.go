package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/klaxonhq/klaxon/audit"
	"github.com/klaxonhq/klaxon/db"
)

var (
	// ErrUnauthenticated means the caller did not prove who they are.
	ErrUnauthenticated = errors.New("auth: not authenticated")
	// ErrInvalidCredentials is a failed login; it is also ErrUnauthenticated.
	ErrInvalidCredentials = fmt.Errorf("%w: invalid email or password", ErrUnauthenticated)
	// ErrForbidden means the caller is known but their role does not allow this.
	ErrForbidden = errors.New("auth: forbidden")
)

type userKey struct{}

// WithUser returns a context carrying the authenticated caller, who is
// also the actor of the changes made with it.
func WithUser(ctx context.Context, u *db.User) context.Context {
	if u != nil {
		ctx = audit.WithActor(ctx, u.ID, u.Email)
	}
	return withAccessSlot(context.WithValue(ctx, userKey{}, u))
}

type apiKeyCallKey struct{}

// WithCaller puts the user a bearer token stands for in the context, and
// remembers whether the token was an API key, and which.
func WithCaller(ctx context.Context, u *db.User, token string) context.Context {
	if strings.HasPrefix(token, apiKeyPrefix) {
		ctx = context.WithValue(ctx, apiKeyCallKey{}, hashSecret(token))
	}
	return WithUser(ctx, u)
}

// CalledWithAPIKey reports a request made with an API key. Such a caller
// may act within the key's role but not change who the owner is: no new
// password or email, no further keys, or a leaked key would outlive its
// revocation.
func CalledWithAPIKey(ctx context.Context) bool {
	return callingKeyHash(ctx) != ""
}

// CalledWith reports a request made with key itself.
func CalledWith(ctx context.Context, key *db.APIKey) bool {
	h := callingKeyHash(ctx)
	return h != "" && h == key.KeyHash
}

func callingKeyHash(ctx context.Context) string {
	h, _ := ctx.Value(apiKeyCallKey{}).(string)
	return h
}

// UserFrom returns the authenticated caller, or nil.
func UserFrom(ctx context.Context) *db.User {
	u, _ := ctx.Value(userKey{}).(*db.User)
	return u
}

// Require returns the caller if their role includes role.
func Require(ctx context.Context, role db.Role) (*db.User, error) {
	u := UserFrom(ctx)
	if u == nil {
		return nil, ErrUnauthenticated
	}
	if !u.Role.Includes(role) {
		return nil, ErrForbidden
	}
	return u, nil
}

// RequireSelfOr lets a user act on their own record, and anyone whose role
// includes role act on any record.
func RequireSelfOr(ctx context.Context, userID int, role db.Role) (*db.User, error) {
	u := UserFrom(ctx)
	if u == nil {
		return nil, ErrUnauthenticated
	}
	if u.ID != userID && !u.Role.Includes(role) {
		return nil, ErrForbidden
	}
	return u, nil
}

type clientAddrKey struct{}

// WithClientAddr records the address a request came from, which sign-in
// attempts are counted against.
func WithClientAddr(ctx context.Context, addr string) context.Context {
	return context.WithValue(ctx, clientAddrKey{}, addr)
}

func clientAddrFrom(ctx context.Context) string {
	addr, _ := ctx.Value(clientAddrKey{}).(string)
	return addr
}
