package main

import (
	"io"
	"strings"
	"testing"

	"github.com/klaxonhq/klaxon/db"
)

// TestSingleSignOnSettings: single sign-on's settings parse into the
// redirect URL from the public URL and the mappings, and bad ones stop
// the start with a message naming the setting.
func TestSingleSignOnSettings(t *testing.T) {
	off, err := parseConfig("serve", nil, io.Discard, false, nil)
	if err != nil || off.OIDC.sso != nil || !off.OIDC.PasswordLogin {
		t.Fatalf("by default single sign-on is off and passwords sign in: %+v %v", off.OIDC, err)
	}

	t.Setenv("KLAXON_PUBLIC_URL", "https://klaxon.example/")
	t.Setenv("KLAXON_OIDC_ISSUER", "https://sso.example/realms/acme")
	t.Setenv("KLAXON_OIDC_CLIENT_ID", "klaxon")
	t.Setenv("KLAXON_OIDC_CLIENT_SECRET", "s3cret")
	t.Setenv("KLAXON_OIDC_ROLE_CLAIM", "groups")
	t.Setenv("KLAXON_OIDC_ROLES", "klaxon-admins=ADMIN,oncall=RESPONDER")
	t.Setenv("KLAXON_OIDC_TEAMS", "idp-sre=SRE:MANAGER,idp-dev=Payments")
	t.Setenv("KLAXON_PASSWORD_LOGIN", "false")
	cfg, err := parseConfig("serve", []string{"--oidc-scopes", "openid email profile groups"}, io.Discard, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.OIDC.sso
	if s == nil || s.RedirectURL != "https://klaxon.example/auth/oidc/callback" || len(s.Scopes) != 4 || s.DefaultRole != db.RoleViewer ||
		s.Roles["oncall"] != db.RoleResponder || len(s.Teams) != 2 || s.Teams[0].Role != db.TeamManager || s.Teams[1].Role != db.TeamResponder {
		t.Fatalf("parsed: %+v", s)
	}
	if cfg.OIDC.PasswordLogin {
		t.Fatal("KLAXON_PASSWORD_LOGIN=false not taken")
	}

	for name, tc := range map[string]struct {
		env  map[string]string
		want string
	}{
		"password login off without sso": {map[string]string{"KLAXON_OIDC_ISSUER": "", "KLAXON_OIDC_CLIENT_ID": "", "KLAXON_OIDC_CLIENT_SECRET": "", "KLAXON_OIDC_ROLES": "", "KLAXON_OIDC_ROLE_CLAIM": "", "KLAXON_OIDC_TEAMS": ""}, "KLAXON_PASSWORD_LOGIN=false needs single sign-on"},
		"mapping without sso":            {map[string]string{"KLAXON_OIDC_ISSUER": "", "KLAXON_OIDC_CLIENT_ID": "", "KLAXON_OIDC_CLIENT_SECRET": "", "KLAXON_PASSWORD_LOGIN": "true"}, "need KLAXON_OIDC_ISSUER"},
		"no client id":                   {map[string]string{"KLAXON_OIDC_CLIENT_ID": ""}, "KLAXON_OIDC_CLIENT_ID"},
		"bad role":                       {map[string]string{"KLAXON_OIDC_ROLES": "klaxon-admins=ROOT"}, "KLAXON_OIDC_ROLES"},
		"bad team role":                  {map[string]string{"KLAXON_OIDC_TEAMS": "idp-sre=SRE:OWNER"}, "KLAXON_OIDC_TEAMS"},
		"roles without claim":            {map[string]string{"KLAXON_OIDC_ROLE_CLAIM": ""}, "KLAXON_OIDC_ROLE_CLAIM"},
		"bad default role":               {map[string]string{"KLAXON_OIDC_DEFAULT_ROLE": "GOD"}, "KLAXON_OIDC_DEFAULT_ROLE"},
		"issuer not a url":               {map[string]string{"KLAXON_OIDC_ISSUER": "sso.example"}, "KLAXON_OIDC_ISSUER"},
		"app url with fragment":          {map[string]string{"KLAXON_OIDC_APP_URL": "https://app.example/#/x"}, "KLAXON_OIDC_APP_URL"},
		"bad switch":                     {map[string]string{"KLAXON_PASSWORD_LOGIN": "nope"}, "KLAXON_PASSWORD_LOGIN"},
	} {
		t.Run(name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			_, err := parseConfig("serve", nil, io.Discard, false, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want an error naming %s, got %v", tc.want, err)
			}
		})
	}
}
