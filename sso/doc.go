// Package sso signs people in through an OpenID Connect provider: the
// authorization-code flow with PKCE, state and nonce, the ID token's
// checks, and the mapping of its claims to a role and teams. The user,
// their teams and the login code the app exchanges for a session are
// auth's; this package only says who the provider vouched for. It owns
// the sso_logins table: the sign-ins begun and not yet come back.
package sso
