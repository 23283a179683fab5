package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/klaxonhq/klaxon/auth"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/server"
	"github.com/klaxonhq/klaxon/sso"
)

// oidcSettings configure single sign-on through an OpenID provider and
// whether passwords still sign in.
type oidcSettings struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	Scopes       string
	EmailClaim   string
	GroupsClaim  string
	RoleClaim    string
	Roles        string
	DefaultRole  string
	Teams        string
	// AppURL is where the browser lands with its login code; the public
	// URL when empty.
	AppURL        string
	PasswordLogin bool

	// sso is the parsed configuration, set by validate when single sign-on
	// is on.
	sso *sso.Config
}

func (o *oidcSettings) bind(s *settings) {
	s.string(&o.Issuer, "oidc-issuer", "KLAXON_OIDC_ISSUER", "", "issuer URL of the OpenID provider; set to turn on single sign-on")
	s.string(&o.ClientID, "oidc-client-id", "KLAXON_OIDC_CLIENT_ID", "", "client id registered with the OpenID provider")
	s.string(&o.ClientSecret, "oidc-client-secret", "KLAXON_OIDC_CLIENT_SECRET", "", "client secret registered with the OpenID provider")
	s.string(&o.Scopes, "oidc-scopes", "KLAXON_OIDC_SCOPES", strings.Join(sso.DefaultScopes, " "), "scopes asked of the provider, space-separated; add groups where the provider needs it for the groups claim")
	s.string(&o.EmailClaim, "oidc-email-claim", "KLAXON_OIDC_EMAIL_CLAIM", sso.DefaultEmailClaim, "ID token claim holding the user's email")
	s.string(&o.GroupsClaim, "oidc-groups-claim", "KLAXON_OIDC_GROUPS_CLAIM", sso.DefaultGroupsClaim, "ID token claim listing the user's groups, for KLAXON_OIDC_TEAMS")
	s.string(&o.RoleClaim, "oidc-role-claim", "KLAXON_OIDC_ROLE_CLAIM", "", "ID token claim whose values KLAXON_OIDC_ROLES maps to a role, set at every sign-in; empty: roles are managed in Klaxon")
	s.string(&o.Roles, "oidc-roles", "KLAXON_OIDC_ROLES", "", "value=ROLE pairs, comma-separated, e.g. klaxon-admins=ADMIN,oncall=RESPONDER")
	s.string(&o.DefaultRole, "oidc-default-role", "KLAXON_OIDC_DEFAULT_ROLE", string(db.RoleViewer), "role of a user no value of the role claim maps")
	s.string(&o.Teams, "oidc-teams", "KLAXON_OIDC_TEAMS", "", "group=Team or group=Team:ROLE pairs, comma-separated; membership of these teams follows the groups claim at each sign-in")
	s.string(&o.AppURL, "oidc-app-url", "KLAXON_OIDC_APP_URL", "", "address of the app, which receives the login code at {app}/#/login?code=…; default: the public URL")
	s.bool(&o.PasswordLogin, "password-login", "KLAXON_PASSWORD_LOGIN", true, "sign in with a password; when false only single sign-on and the break-glass admin (KLAXON_ADMIN_EMAIL) sign in")
}

// validate checks the settings and parses the single sign-on ones;
// publicURL gives the redirect URL.
func (o *oidcSettings) validate(publicURL string) error {
	configured := o.Issuer != "" || o.ClientID != "" || o.ClientSecret != ""
	if !configured {
		if !o.PasswordLogin {
			return errors.New("KLAXON_PASSWORD_LOGIN=false needs single sign-on (KLAXON_OIDC_ISSUER, KLAXON_OIDC_CLIENT_ID), or nobody but the break-glass admin could sign in")
		}
		if o.Roles != "" || o.RoleClaim != "" || o.Teams != "" || o.AppURL != "" {
			return errors.New("KLAXON_OIDC_ROLES, KLAXON_OIDC_ROLE_CLAIM, KLAXON_OIDC_TEAMS and KLAXON_OIDC_APP_URL need KLAXON_OIDC_ISSUER")
		}
		return nil
	}
	roles, err := sso.ParseRoles(o.Roles)
	if err != nil {
		return err
	}
	teams, err := sso.ParseTeams(o.Teams)
	if err != nil {
		return err
	}
	if o.AppURL != "" {
		if u, err := url.Parse(o.AppURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" {
			return fmt.Errorf("KLAXON_OIDC_APP_URL %q must be an absolute http(s) URL without a fragment", o.AppURL)
		}
	}
	cfg := &sso.Config{
		Issuer: o.Issuer, ClientID: o.ClientID, ClientSecret: o.ClientSecret,
		RedirectURL: server.OIDCRedirectURL(publicURL), Scopes: sso.ParseScopes(o.Scopes),
		EmailClaim: o.EmailClaim, GroupsClaim: o.GroupsClaim, RoleClaim: o.RoleClaim, Roles: roles,
		DefaultRole: db.Role(strings.ToUpper(strings.TrimSpace(o.DefaultRole))), Teams: teams,
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	o.sso = cfg
	return nil
}

// build turns on what the settings ask of authSvc and returns the single
// sign-on service, nil when it is off.
func (o *oidcSettings) build(store *db.DB, authSvc *auth.Service, breakGlassEmail string, now func() time.Time, log *slog.Logger) (*sso.Service, error) {
	authSvc.SetPasswordLogin(o.PasswordLogin, breakGlassEmail)
	if o.sso == nil {
		return nil, nil
	}
	svc, err := sso.New(*o.sso, store, authSvc, now, nil, log)
	if err != nil {
		return nil, err
	}
	log.Info("single sign-on on", "issuer", o.sso.Issuer, "redirect_url", o.sso.RedirectURL, "password_login", o.PasswordLogin)
	return svc, nil
}
