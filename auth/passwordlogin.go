package auth

import (
	"errors"

	"github.com/klaxonhq/klaxon/db"
)

// ErrPasswordLoginDisabled refuses a password sign-in while password
// sign-in is turned off.
var ErrPasswordLoginDisabled = errors.New("auth: password sign-in is turned off; sign in through single sign-on")

// SetPasswordLogin turns password sign-in on or off, and names the
// break-glass admin. Off, only breakGlassEmail, the admin named in the
// environment, still signs in with a password, so an outage of the
// identity provider never locks the admins out; on or off, single
// sign-on never changes that account's role. Call it before serving.
func (s *Service) SetPasswordLogin(enabled bool, breakGlassEmail string) {
	s.passwordLoginOff = !enabled
	s.breakGlassEmail = normalizeEmail(breakGlassEmail)
}

// passwordLoginRefused reports whether a sign-in whose password was right
// must still be refused. With password sign-in off, a wrong password
// gets the same answer as a refused right one, so that the answer never
// tells the break-glass account apart from the rest.
func (s *Service) passwordLoginRefused(u *db.User) bool {
	if !s.passwordLoginOff {
		return false
	}
	return !s.isBreakGlass(u) || u.Role != db.RoleAdmin
}

// isBreakGlass reports whether u is the account named as the break-glass
// admin.
func (s *Service) isBreakGlass(u *db.User) bool {
	return s.breakGlassEmail != "" && u.Email == s.breakGlassEmail
}

// refusal is the error of a failed password sign-in.
func (s *Service) refusal() error {
	if s.passwordLoginOff {
		return ErrPasswordLoginDisabled
	}
	return ErrInvalidCredentials
}
