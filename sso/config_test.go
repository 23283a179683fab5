package sso

import (
	"errors"
	"maps"
	"reflect"
	"strings"
	"testing"

	"github.com/klaxonhq/klaxon/db"
)

func TestParseTeams(t *testing.T) {
	got, err := ParseTeams(" idp-sre=SRE:manager , idp-dev=Payments,ops=Night: Shift:OBSERVER,idp-sre=On call")
	if err != nil {
		t.Fatal(err)
	}
	want := []TeamGrant{
		{Group: "idp-sre", Team: "SRE", Role: db.TeamManager},
		{Group: "idp-dev", Team: "Payments", Role: db.TeamResponder},
		{Group: "ops", Team: "Night: Shift", Role: db.TeamObserver},
		{Group: "idp-sre", Team: "On call", Role: db.TeamResponder},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	for _, bad := range []string{"idp-sre", "=SRE", "idp-sre=", "idp-sre=SRE:OWNER", "idp-sre=:MANAGER"} {
		if _, err := ParseTeams(bad); err == nil || !strings.Contains(err.Error(), "KLAXON_OIDC_TEAMS") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestParseRoles(t *testing.T) {
	got, err := ParseRoles("klaxon-admins=admin, oncall=RESPONDER")
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]db.Role{"klaxon-admins": db.RoleAdmin, "oncall": db.RoleResponder}; !maps.Equal(got, want) {
		t.Fatalf("got %v", got)
	}
	for _, bad := range []string{"admins", "admins=ROOT", "=ADMIN", "a=ADMIN,a=VIEWER"} {
		if _, err := ParseRoles(bad); err == nil || !strings.Contains(err.Error(), "KLAXON_OIDC_ROLES") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	base := func() Config {
		return Config{Issuer: "https://idp.example/realms/acme", ClientID: "klaxon", RedirectURL: "https://klaxon.example/auth/oidc/callback"}
	}
	c := base()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Scopes, DefaultScopes) || c.EmailClaim != "email" || c.GroupsClaim != "groups" || c.DefaultRole != db.RoleViewer {
		t.Errorf("defaults: %+v", c)
	}
	for name, change := range map[string]func(*Config){
		"no issuer":           func(c *Config) { c.Issuer = "" },
		"relative issuer":     func(c *Config) { c.Issuer = "idp.example" },
		"no client":           func(c *Config) { c.ClientID = "" },
		"no openid scope":     func(c *Config) { c.Scopes = []string{"email"} },
		"bad default role":    func(c *Config) { c.DefaultRole = "OWNER" },
		"roles without claim": func(c *Config) { c.Roles = map[string]db.Role{"a": db.RoleAdmin} },
		"claim without roles": func(c *Config) { c.RoleClaim = "roles" },
		"bad redirect":        func(c *Config) { c.RedirectURL = "/auth/oidc/callback" },
	} {
		c := base()
		change(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestIdentityFromClaims(t *testing.T) {
	s := &Service{cfg: Config{
		EmailClaim: "upn", GroupsClaim: "https://klaxon.example/groups", RoleClaim: "realm_access.roles",
		Roles:       map[string]db.Role{"klaxon-admins": db.RoleAdmin, "oncall": db.RoleResponder},
		DefaultRole: db.RoleViewer,
		Teams: []TeamGrant{
			{Group: "sre", Team: "SRE", Role: db.TeamObserver},
			{Group: "sre-leads", Team: "SRE", Role: db.TeamManager},
			{Group: "dev", Team: "Payments", Role: db.TeamResponder},
		},
	}}
	id, err := s.identity(map[string]any{
		"upn": " jo@example.com ", "preferred_username": "jo", "email_verified": "true",
		"realm_access":                  map[string]any{"roles": []any{"oncall", "other"}},
		"https://klaxon.example/groups": []any{"sre-leads", "sre", "unmapped"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if id.Email != "jo@example.com" || id.Name != "jo" || id.Role != db.RoleResponder || !id.RoleFromClaims {
		t.Errorf("identity %+v", id)
	}
	if want := map[string]db.TeamRole{"SRE": db.TeamManager}; !maps.Equal(id.Teams, want) {
		t.Errorf("teams %v, want the highest grant of SRE only", id.Teams)
	}
	if len(id.ManagedTeams) != 3 {
		t.Errorf("managed teams %v", id.ManagedTeams)
	}
	for name, claims := range map[string]map[string]any{
		CodeEmailMissing:    {"email": "x@example.com"},
		CodeEmailUnverified: {"upn": "x@example.com", "email_verified": false},
	} {
		_, err := s.identity(claims)
		var ssoErr *Error
		if !errors.As(err, &ssoErr) || ssoErr.Code != name {
			t.Errorf("%s: %v", name, err)
		}
	}
	id, err = s.identity(map[string]any{"upn": "kim@example.com", "name": strings.Repeat("é", 150)})
	if err != nil || len(id.Name) > 200 || id.Role != db.RoleViewer {
		t.Errorf("long name, no role claim: %q (%d bytes), %s, %v", id.Name, len(id.Name), id.Role, err)
	}
}
