package server

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/klaxonhq/klaxon/sso"
)

// Single sign-on routes. The browser goes to the login route, which
// sends it to the provider with a state it also keeps in a cookie; the
// provider sends it back to the callback, which checks the state against
// the cookie and hands the app a one-time login code in the URL's
// fragment. A session token never appears in a URL.
const (
	oidcLoginRoute    = "GET /auth/oidc/login"
	oidcCallbackRoute = "GET /auth/oidc/callback"
	// oidcCallbackPath is the path of the redirect URL registered with
	// the provider.
	oidcCallbackPath = "/auth/oidc/callback"
	// oidcStateCookie binds a sign-in to the browser that began it: a
	// callback link made by someone else, with their own state, finds no
	// cookie to match and cannot sign the victim into their account.
	oidcStateCookie = "klaxon_oidc_state"
	oidcCookiePath  = "/auth/oidc"
)

// OIDCRedirectURL is the redirect URL to register with the provider for
// a server at publicURL.
func OIDCRedirectURL(publicURL string) string {
	return strings.TrimSuffix(publicURL, "/") + oidcCallbackPath
}

func (s *Server) handleOIDCLogin(w http.ResponseWriter, r *http.Request) {
	if s.cfg.SingleSignOn == nil {
		writeError(w, http.StatusNotFound, "single sign-on is not configured")
		return
	}
	authURL, state, err := s.cfg.SingleSignOn.Begin(r.Context(), s.clientAddr(r))
	if err != nil {
		s.redirectSignInError(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: oidcStateCookie, Value: state, Path: oidcCookiePath,
		MaxAge: int(sso.LoginTTL.Seconds()), HttpOnly: true, Secure: s.secureCookies(),
		// Lax, not Strict: the provider's redirect back is a navigation
		// from another site, which Strict would send without the cookie.
		SameSite: http.SameSiteLaxMode,
	})
	http.Redirect(w, r, authURL, http.StatusFound)
}

func (s *Server) handleOIDCCallback(w http.ResponseWriter, r *http.Request) {
	if s.cfg.SingleSignOn == nil {
		writeError(w, http.StatusNotFound, "single sign-on is not configured")
		return
	}
	// The cookie has done its work whatever happens next.
	http.SetCookie(w, &http.Cookie{
		Name: oidcStateCookie, Value: "", Path: oidcCookiePath, MaxAge: -1,
		HttpOnly: true, Secure: s.secureCookies(), SameSite: http.SameSiteLaxMode,
	})
	q := r.URL.Query()
	cb := sso.Callback{
		State: q.Get("state"), Code: q.Get("code"),
		ProviderError: q.Get("error"), ProviderErrorDescription: q.Get("error_description"),
	}
	if c, err := r.Cookie(oidcStateCookie); err == nil {
		cb.BrowserState = c.Value
	}
	signIn, err := s.cfg.SingleSignOn.Complete(r.Context(), cb)
	if err != nil {
		s.redirectSignInError(w, r, err)
		return
	}
	s.log.InfoContext(r.Context(), "signed in through single sign-on", "user", signIn.User.ID, "email", signIn.User.Email, "created", signIn.Created)
	http.Redirect(w, r, s.appLoginURL(url.Values{"code": {signIn.Code}}), http.StatusFound)
}

// redirectSignInError logs why a sign-in failed and sends the browser to
// the app with the error's code, never its detail.
func (s *Server) redirectSignInError(w http.ResponseWriter, r *http.Request, err error) {
	code := sso.CodeInternal
	var ssoErr *sso.Error
	if errors.As(err, &ssoErr) {
		code = ssoErr.Code
	}
	if code == sso.CodeInternal || code == sso.CodeProviderUnavailable {
		s.log.ErrorContext(r.Context(), "single sign-on failed", "code", code, "err", err)
	} else {
		s.log.WarnContext(r.Context(), "single sign-on refused", "code", code, "err", err)
	}
	http.Redirect(w, r, s.appLoginURL(url.Values{"error": {code}}), http.StatusFound)
}

// appLoginURL is the app's sign-in page with params in the fragment,
// which browsers send to no server and put in no Referer.
func (s *Server) appLoginURL(params url.Values) string {
	app := s.cfg.SingleSignOnAppURL
	if app == "" {
		app = s.cfg.PublicURL
	}
	return strings.TrimSuffix(app, "/") + "/#/login?" + params.Encode()
}

// secureCookies reports whether cookies should be sent over HTTPS only:
// whenever Klaxon is reached over HTTPS.
func (s *Server) secureCookies() bool {
	return strings.HasPrefix(s.cfg.PublicURL, "https://")
}
