package sso

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/klaxonhq/klaxon/auth"
	"github.com/klaxonhq/klaxon/db"
)

// identity reads who the claims name and what they grant here.
func (s *Service) identity(claims map[string]any) (auth.ExternalIdentity, error) {
	email, _ := claim(claims, s.cfg.EmailClaim).(string)
	email = strings.TrimSpace(email)
	if email == "" {
		return auth.ExternalIdentity{}, fail(CodeEmailMissing, fmt.Errorf("the ID token has no %q claim", s.cfg.EmailClaim))
	}
	// Only an explicit "not verified" is refused: many providers verify
	// every address they hold and never send the claim.
	if verified, present := boolClaim(claims["email_verified"]); present && !verified {
		return auth.ExternalIdentity{}, fail(CodeEmailUnverified, fmt.Errorf("the provider has not verified %s", email))
	}
	id := auth.ExternalIdentity{Method: "OIDC", Email: email, Name: displayName(claims), Role: s.cfg.DefaultRole}
	if s.cfg.RoleClaim != "" {
		id.RoleFromClaims = true
		var mapped db.Role
		for _, v := range stringsClaim(claim(claims, s.cfg.RoleClaim)) {
			if role, ok := s.cfg.Roles[v]; ok && (mapped == "" || role.Includes(mapped)) {
				mapped = role
			}
		}
		// A mapped value decides even when it grants less than the
		// default: where the mapping says something, it is what was meant.
		if mapped != "" {
			id.Role = mapped
		}
	}
	groups := map[string]bool{}
	for _, g := range stringsClaim(claim(claims, s.cfg.GroupsClaim)) {
		groups[g] = true
	}
	id.Teams = map[string]db.TeamRole{}
	for _, grant := range s.cfg.Teams {
		id.ManagedTeams = append(id.ManagedTeams, grant.Team)
		if !groups[grant.Group] {
			continue
		}
		if held, ok := id.Teams[grant.Team]; !ok || grant.Role.Includes(held) {
			id.Teams[grant.Team] = grant.Role
		}
	}
	return id, nil
}

// claim finds a claim by its name, or, for a name holding dots that is
// not itself a claim, by its path through nested objects
// ("realm_access.roles"). Names such as "https://example.com/groups"
// are claims of their own and are tried first.
func claim(claims map[string]any, name string) any {
	if v, ok := claims[name]; ok {
		return v
	}
	var v any = claims
	for _, part := range strings.Split(name, ".") {
		obj, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = obj[part]
	}
	return v
}

// stringsClaim reads a claim that lists values: an array of strings, or
// one string.
func stringsClaim(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for _, item := range v {
			if s, ok := item.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// boolClaim reads a boolean claim; some providers send "true" and
// "false" as strings.
func boolClaim(v any) (value, present bool) {
	switch v := v.(type) {
	case bool:
		return v, true
	case string:
		b, err := strconv.ParseBool(v)
		return b, err == nil
	}
	return false, false
}

func displayName(claims map[string]any) string {
	for _, name := range []string{"name", "preferred_username"} {
		if s, ok := claims[name].(string); ok && strings.TrimSpace(s) != "" {
			// A name longer than a user's name may be is cut rather than
			// refused: it is only shown.
			return truncate(strings.TrimSpace(s), maxNameBytes)
		}
	}
	return ""
}

// maxNameBytes is the longest name auth takes for a user.
const maxNameBytes = 200

// truncate cuts s to at most n bytes without splitting a character.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
