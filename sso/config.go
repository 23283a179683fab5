package sso

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/invalid"
)

// Config is the settings of single sign-on through one OpenID provider.
type Config struct {
	// Issuer is the provider's issuer URL; its discovery document is at
	// Issuer + "/.well-known/openid-configuration".
	Issuer       string
	ClientID     string
	ClientSecret string
	// RedirectURL is where the provider sends the browser back:
	// {public URL}/auth/oidc/callback, registered with the provider.
	RedirectURL string
	Scopes      []string
	// EmailClaim names the claim of the ID token that holds the email
	// address a user is known by here.
	EmailClaim string
	// GroupsClaim names the claim listing the person's groups, which
	// Teams maps to teams.
	GroupsClaim string
	// RoleClaim, when set, names the claim whose values Roles maps to a
	// role; the role is then set at every sign-in.
	RoleClaim string
	Roles     map[string]db.Role
	// DefaultRole is the role of a new user whom no value of RoleClaim
	// maps to a role (VIEWER unless set).
	DefaultRole db.Role
	// Teams map values of GroupsClaim to teams and roles in them. The
	// teams they name are kept in step at each sign-in; others are left
	// alone.
	Teams []TeamGrant
}

// TeamGrant says that members of Group get Role in Team, a team name.
type TeamGrant struct {
	Group string
	Team  string
	Role  db.TeamRole
}

// Default claims and scopes, as most providers name them.
const (
	DefaultEmailClaim  = "email"
	DefaultGroupsClaim = "groups"
)

// DefaultScopes are asked for unless others are set.
var DefaultScopes = []string{"openid", "email", "profile"}

// Validate fills the defaults and checks the settings, naming the
// setting at fault.
func (c *Config) Validate() error {
	if c.Issuer == "" || c.ClientID == "" {
		return errors.New("single sign-on needs KLAXON_OIDC_ISSUER and KLAXON_OIDC_CLIENT_ID")
	}
	if u, err := url.Parse(c.Issuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("KLAXON_OIDC_ISSUER %q must be an absolute http(s) URL", c.Issuer)
	}
	if u, err := url.Parse(c.RedirectURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("the redirect URL %q must be an absolute http(s) URL (it comes from KLAXON_PUBLIC_URL)", c.RedirectURL)
	}
	if len(c.Scopes) == 0 {
		c.Scopes = slices.Clone(DefaultScopes)
	}
	if !slices.Contains(c.Scopes, "openid") {
		return errors.New("KLAXON_OIDC_SCOPES must include openid")
	}
	if c.EmailClaim == "" {
		c.EmailClaim = DefaultEmailClaim
	}
	if c.GroupsClaim == "" {
		c.GroupsClaim = DefaultGroupsClaim
	}
	if c.DefaultRole == "" {
		c.DefaultRole = db.RoleViewer
	}
	if !c.DefaultRole.Valid() {
		return fmt.Errorf("KLAXON_OIDC_DEFAULT_ROLE %q is not a role", c.DefaultRole)
	}
	if len(c.Roles) > 0 && c.RoleClaim == "" {
		return errors.New("KLAXON_OIDC_ROLES needs KLAXON_OIDC_ROLE_CLAIM: the claim whose values it maps")
	}
	if c.RoleClaim != "" && len(c.Roles) == 0 {
		return errors.New("KLAXON_OIDC_ROLE_CLAIM needs KLAXON_OIDC_ROLES, or every sign-in would set the default role")
	}
	return nil
}

// ParseScopes reads a space- or comma-separated list of scopes.
func ParseScopes(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' })
}

// ParseRoles reads "value=ROLE,value=ROLE": which value of the role
// claim grants which role.
func ParseRoles(s string) (map[string]db.Role, error) {
	out := map[string]db.Role{}
	for _, item := range splitList(s) {
		value, role, ok := strings.Cut(item, "=")
		value, role = strings.TrimSpace(value), strings.ToUpper(strings.TrimSpace(role))
		if !ok || value == "" {
			return nil, fmt.Errorf("KLAXON_OIDC_ROLES: %q is not value=ROLE", item)
		}
		if !db.Role(role).Valid() {
			return nil, fmt.Errorf("KLAXON_OIDC_ROLES: %q in %q is not a role", role, item)
		}
		if _, dup := out[value]; dup {
			return nil, fmt.Errorf("KLAXON_OIDC_ROLES: %q is mapped twice", value)
		}
		out[value] = db.Role(role)
	}
	return out, nil
}

// ParseTeams reads "group=Team,group=Team:ROLE": which group grants
// which team, and the role in it (RESPONDER unless given). A team name
// may itself hold a colon only when a role follows it. A group may grant
// several teams, and several groups one team.
func ParseTeams(s string) ([]TeamGrant, error) {
	var out []TeamGrant
	for _, item := range splitList(s) {
		group, target, ok := strings.Cut(item, "=")
		group, target = strings.TrimSpace(group), strings.TrimSpace(target)
		if !ok || group == "" || target == "" {
			return nil, fmt.Errorf("KLAXON_OIDC_TEAMS: %q is not group=Team or group=Team:ROLE", item)
		}
		grant := TeamGrant{Group: group, Team: target, Role: db.TeamResponder}
		if i := strings.LastIndex(target, ":"); i >= 0 {
			role := db.TeamRole(strings.ToUpper(strings.TrimSpace(target[i+1:])))
			if !role.Valid() {
				return nil, fmt.Errorf("KLAXON_OIDC_TEAMS: %q in %q is not a team role (MANAGER, RESPONDER or OBSERVER)", target[i+1:], item)
			}
			grant.Team, grant.Role = strings.TrimSpace(target[:i]), role
		}
		name, err := invalid.Name("name", grant.Team)
		if err != nil {
			return nil, fmt.Errorf("KLAXON_OIDC_TEAMS: team %q in %q: %w", grant.Team, item, err)
		}
		grant.Team = name
		out = append(out, grant)
	}
	return out, nil
}

func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
