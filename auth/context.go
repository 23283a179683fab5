package auth

import (
	"context"
	"errors"
	"fmt"

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

// WithUser returns a context carrying the authenticated caller.
func WithUser(ctx context.Context, u *db.User) context.Context {
	return context.WithValue(ctx, userKey{}, u)
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
