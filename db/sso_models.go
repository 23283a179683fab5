package db

import (
	"time"

	"github.com/uptrace/bun"
)

// SSOLogin is a single sign-on begun at the identity provider and not yet
// come back: what its callback must check the provider's answer against.
// The state itself is not kept, only its hash, so a copy of the table
// cannot complete anyone's sign-in.
type SSOLogin struct {
	bun.BaseModel `bun:"table:sso_logins"`

	StateHash    string    `bun:"state_hash,pk"`
	Nonce        string    `bun:"nonce"`
	CodeVerifier string    `bun:"code_verifier"`
	CreatedAt    time.Time `bun:"created_at"`
	ExpiresAt    time.Time `bun:"expires_at"`
	ClientAddr   string    `bun:"client_addr"`
}

// LoginCode is the one-time code a single sign-on hands the app, which
// exchanges it for a session; only its hash is kept.
type LoginCode struct {
	bun.BaseModel `bun:"table:login_codes"`

	CodeHash  string    `bun:"code_hash,pk"`
	UserID    int       `bun:"user_id"`
	CreatedAt time.Time `bun:"created_at"`
	ExpiresAt time.Time `bun:"expires_at"`
}
