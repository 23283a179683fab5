package sso

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/uptrace/bun"
	"golang.org/x/oauth2"

	"github.com/klaxonhq/klaxon/auth"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/invalid"
)

// LoginTTL is how long a person has at the provider between being sent
// there and coming back, and so how long the browser keeps its state
// cookie.
const LoginTTL = 10 * time.Minute

// MaxPendingPerAddress is how many sign-ins one address may have begun
// and not finished within LoginTTL: more than a person with a few tabs
// needs, few enough that a flood of the anonymous login route stores
// little.
const MaxPendingPerAddress = 20

// providerTimeout bounds each call to the provider: discovery, keys and
// the code exchange.
const providerTimeout = 10 * time.Second

// Service signs people in through an OpenID provider with the
// authorization-code flow, PKCE (S256), state and nonce.
type Service struct {
	cfg  Config
	db   *db.DB
	auth *auth.Service
	now  func() time.Time
	log  *slog.Logger
	// client makes every request to the provider.
	client *http.Client

	// The provider is discovered at the first sign-in rather than at
	// start, so that a provider that is away does not stop Klaxon from
	// starting; a failed discovery is tried again at the next sign-in.
	mu       sync.Mutex
	provider *provider
}

// provider is what discovery found: the endpoints, and the verifier
// of the provider's ID tokens.
type provider struct {
	// oauth is kept for the service's life: it remembers how the token
	// endpoint wants the client to authenticate (header or form) once it
	// has found out, so only the first exchange tries both.
	oauth    *oauth2.Config
	verifier *oidc.IDTokenVerifier
}

// New builds the service over validated settings. client is used for
// every request to the provider; nil means a client with a timeout.
func New(cfg Config, d *db.DB, authSvc *auth.Service, now func() time.Time, client *http.Client, log *slog.Logger) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if client == nil {
		client = &http.Client{Timeout: providerTimeout}
	}
	clock := func() time.Time { return now().UTC().Truncate(time.Microsecond) }
	return &Service{cfg: cfg, db: d, auth: authSvc, now: clock, log: log, client: client}, nil
}

// Error is a sign-in that failed, with a code for the app to show.
type Error struct {
	// Code is one of the Code… constants.
	Code string
	Err  error
}

func (e *Error) Error() string { return "single sign-on: " + e.Code + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// The codes of Error, which the app receives as ?error=.
const (
	// CodeProviderUnavailable: the provider could not be reached or its
	// discovery document read.
	CodeProviderUnavailable = "provider_unavailable"
	// CodeProviderDenied: the provider answered with an error (the person
	// declined, or is not allowed to use the app).
	CodeProviderDenied = "provider_denied"
	// CodeStateMismatch: the callback's state is not the one this browser
	// was sent with, or that sign-in was already completed.
	CodeStateMismatch = "state_mismatch"
	// CodeExpired: the sign-in took longer than LoginTTL.
	CodeExpired = "login_expired"
	// CodeExchangeFailed: the provider refused the code (used, expired,
	// or the PKCE verifier did not match).
	CodeExchangeFailed = "code_exchange_failed"
	// CodeTokenInvalid: the ID token's signature, issuer, audience or
	// nonce is wrong.
	CodeTokenInvalid = "token_invalid"
	// CodeTokenExpired: the ID token had expired when it arrived.
	CodeTokenExpired = "token_expired"
	// CodeEmailMissing: the token has no email in the email claim.
	CodeEmailMissing = "email_missing"
	// CodeEmailUnverified: the provider says it has not verified the email.
	CodeEmailUnverified = "email_unverified"
	// CodeAccountRefused: the claims cannot make a valid user here.
	CodeAccountRefused = "account_refused"
	// CodeInternal: something on our side failed; the log has it.
	CodeInternal = "internal_error"
	// CodeTooManySignIns: this address has MaxPendingPerAddress sign-ins
	// begun and not finished; one ends at its callback or after LoginTTL.
	CodeTooManySignIns = "too_many_sign_ins"
)

func fail(code string, err error) error { return &Error{Code: code, Err: err} }

// discover returns the provider, discovering it on first use.
func (s *Service) discover(ctx context.Context) (*provider, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.provider != nil {
		return s.provider, nil
	}
	ctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, s.client), providerTimeout)
	defer cancel()
	p, err := oidc.NewProvider(ctx, s.cfg.Issuer)
	if err != nil {
		return nil, fail(CodeProviderUnavailable, fmt.Errorf("discover %s: %w", s.cfg.Issuer, err))
	}
	// The key set fetches the provider's keys again whenever a token names
	// a key it does not hold, which is how a rotation reaches us.
	keysCtx := oidc.ClientContext(context.Background(), s.client)
	s.provider = &provider{
		oauth: &oauth2.Config{
			ClientID: s.cfg.ClientID, ClientSecret: s.cfg.ClientSecret,
			Endpoint: p.Endpoint(), RedirectURL: s.cfg.RedirectURL, Scopes: s.cfg.Scopes,
		},
		verifier: p.VerifierContext(keysCtx, &oidc.Config{ClientID: s.cfg.ClientID, Now: s.now}),
	}
	return s.provider, nil
}

// Begin starts a sign-in: it remembers a new state, nonce and PKCE
// verifier, and returns the provider's URL to send the browser to and
// the state, which the browser must keep (a cookie) and bring back.
func (s *Service) Begin(ctx context.Context, clientAddr string) (authURL, state string, err error) {
	p, err := s.discover(ctx)
	if err != nil {
		return "", "", err
	}
	state, nonce := randomToken(), randomToken()
	verifier := oauth2.GenerateVerifier()
	now := s.now()
	login := &db.SSOLogin{StateHash: hashState(state), Nonce: nonce, CodeVerifier: verifier, CreatedAt: now, ExpiresAt: now.Add(LoginTTL), ClientAddr: clientAddr}
	err = s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		// Sign-ins abandoned at the provider are swept here, so the table
		// holds no more than the last LoginTTL's.
		if _, err := tx.NewDelete().Model((*db.SSOLogin)(nil)).Where("expires_at <= ?", now).Exec(ctx); err != nil {
			return fmt.Errorf("sweep sign-ins: %w", err)
		}
		// The route is anonymous and each call stores a row: an address
		// may hold only so many unfinished sign-ins. Concurrent requests
		// may pass this count together, so the bound is approximate.
		pending, err := tx.NewSelect().Model((*db.SSOLogin)(nil)).
			Where("client_addr = ? AND expires_at > ?", clientAddr, now).Count(ctx)
		if err != nil {
			return fmt.Errorf("count sign-ins of %s: %w", clientAddr, err)
		}
		if pending >= MaxPendingPerAddress {
			return fail(CodeTooManySignIns, fmt.Errorf("%s has %d sign-ins begun and not finished", clientAddr, pending))
		}
		if _, err := tx.NewInsert().Model(login).Exec(ctx); err != nil {
			return fmt.Errorf("store sign-in: %w", err)
		}
		return nil
	})
	var refused *Error
	if errors.As(err, &refused) {
		return "", "", err
	}
	if err != nil {
		return "", "", fail(CodeInternal, fmt.Errorf("begin sign-in: %w", err))
	}
	authURL = p.oauth.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier))
	return authURL, state, nil
}

// Callback is what the provider sent the browser back with.
type Callback struct {
	// BrowserState is the state the browser kept since Begin.
	BrowserState string
	State        string
	Code         string
	// ProviderError and its description are set when the provider
	// refused the sign-in.
	ProviderError, ProviderErrorDescription string
}

// Complete finishes a sign-in: it takes the stored sign-in the state
// names (once), exchanges the code with the PKCE verifier, verifies the
// ID token and its nonce, and signs the person in; the sign-in's Code is
// what the app exchanges for a session.
func (s *Service) Complete(ctx context.Context, cb Callback) (*auth.ExternalSignIn, error) {
	if cb.State == "" || cb.BrowserState == "" || subtle.ConstantTimeCompare([]byte(cb.State), []byte(cb.BrowserState)) != 1 {
		return nil, fail(CodeStateMismatch, errors.New("the state is not the one this browser was sent with"))
	}
	login, err := s.takeLogin(ctx, cb.State)
	if err != nil {
		return nil, err
	}
	if cb.ProviderError != "" {
		return nil, fail(CodeProviderDenied, fmt.Errorf("the provider answered %s: %s", cb.ProviderError, cb.ProviderErrorDescription))
	}
	if cb.Code == "" {
		return nil, fail(CodeExchangeFailed, errors.New("the provider sent no code"))
	}
	claims, err := s.redeem(ctx, cb.Code, login)
	if err != nil {
		return nil, err
	}
	identity, err := s.identity(claims)
	if err != nil {
		return nil, err
	}
	signIn, err := s.auth.SignInExternal(ctx, identity)
	var fieldErr *invalid.Field
	if errors.As(err, &fieldErr) {
		return nil, fail(CodeAccountRefused, err)
	}
	if err != nil {
		return nil, fail(CodeInternal, err)
	}
	if signIn.KeptLastAdmin {
		s.log.WarnContext(ctx, "single sign-on would have demoted the last admin; the role was kept", "user", signIn.User.ID, "email", signIn.User.Email)
	}
	return signIn, nil
}

// redeem exchanges the code with the sign-in's PKCE verifier and returns
// the claims of the ID token, once its signature, issuer, audience,
// expiry and nonce are checked.
func (s *Service) redeem(ctx context.Context, code string, login *db.SSOLogin) (map[string]any, error) {
	p, err := s.discover(ctx)
	if err != nil {
		return nil, err
	}
	exchangeCtx, cancel := context.WithTimeout(context.WithValue(ctx, oauth2.HTTPClient, s.client), providerTimeout)
	defer cancel()
	token, err := p.oauth.Exchange(exchangeCtx, code, oauth2.VerifierOption(login.CodeVerifier))
	if err != nil {
		return nil, fail(CodeExchangeFailed, fmt.Errorf("exchange code: %w", err))
	}
	raw, _ := token.Extra("id_token").(string)
	if raw == "" {
		return nil, fail(CodeTokenInvalid, errors.New("the token response has no ID token"))
	}
	idToken, err := p.verifier.Verify(ctx, raw)
	var expired *oidc.TokenExpiredError
	if errors.As(err, &expired) {
		return nil, fail(CodeTokenExpired, fmt.Errorf("verify ID token: %w", err))
	}
	if err != nil {
		return nil, fail(CodeTokenInvalid, fmt.Errorf("verify ID token: %w", err))
	}
	if subtle.ConstantTimeCompare([]byte(idToken.Nonce), []byte(login.Nonce)) != 1 {
		return nil, fail(CodeTokenInvalid, errors.New("the ID token's nonce is not the one this sign-in sent"))
	}
	var claims map[string]any
	if err := idToken.Claims(&claims); err != nil {
		return nil, fail(CodeTokenInvalid, fmt.Errorf("read claims: %w", err))
	}
	return claims, nil
}

// takeLogin deletes and returns the stored sign-in of state. The delete
// decides: of two callbacks with one state, on any instances, one wins.
func (s *Service) takeLogin(ctx context.Context, state string) (*db.SSOLogin, error) {
	login := new(db.SSOLogin)
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if err := tx.NewSelect().Model(login).Where("state_hash = ?", hashState(state)).Scan(ctx); err != nil {
			return err
		}
		res, err := tx.NewDelete().Model(login).WherePK().Exec(ctx)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return sql.ErrNoRows
		}
		return nil
	})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fail(CodeStateMismatch, errors.New("no sign-in waits for this state: unknown, or already completed"))
	}
	if err != nil {
		return nil, fail(CodeInternal, fmt.Errorf("take sign-in: %w", err))
	}
	if !s.now().Before(login.ExpiresAt) {
		return nil, fail(CodeExpired, fmt.Errorf("the sign-in began at %s and expired", login.CreatedAt.Format(time.RFC3339)))
	}
	return login, nil
}

func randomToken() string {
	raw := make([]byte, 32)
	rand.Read(raw)
	return base64.RawURLEncoding.EncodeToString(raw)
}

func hashState(state string) string {
	sum := sha256.Sum256([]byte(state))
	return hex.EncodeToString(sum[:])
}
