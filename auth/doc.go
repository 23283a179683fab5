// Package auth knows who people are and what they may do: users and
// groups, password hashing, session tokens (JWT, HS256) and the role
// checks that every resolver makes.
package auth
