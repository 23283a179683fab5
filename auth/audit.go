package auth

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/db"
)

// What the audit log keeps of users, groups and API keys: the fields an
// admin sets, by their API names. The audit package hides the hashes.

type userRecord struct {
	Email string  `json:"email"`
	Name  string  `json:"name"`
	Role  db.Role `json:"role"`
	// Password is the hash, recorded only as set or changed.
	Password     string `json:"password"`
	TokenVersion int    `json:"tokenVersion"`
}

func recordOfUser(u *db.User) *userRecord {
	return &userRecord{Email: u.Email, Name: u.Name, Role: u.Role, Password: u.PasswordHash, TokenVersion: u.TokenVersion}
}

type groupRecord struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	MemberIDs   []int  `json:"memberIds"`
	// Managers and Observers are the members whose team role is not the
	// default RESPONDER.
	Managers  []int `json:"managers,omitempty"`
	Observers []int `json:"observers,omitempty"`
}

// recordOfGroup reads the group's members through idb, inside the
// transaction changing them.
func recordOfGroup(ctx context.Context, idb bun.IDB, g *db.Group) (*groupRecord, error) {
	var members []*db.GroupMember
	err := idb.NewSelect().Model(&members).Where("group_id = ?", g.ID).Order("user_id").Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("members of group %d: %w", g.ID, err)
	}
	r := &groupRecord{Name: g.Name, Description: g.Description, MemberIDs: []int{}}
	for _, m := range members {
		r.MemberIDs = append(r.MemberIDs, m.UserID)
		switch m.Role {
		case db.TeamManager:
			r.Managers = append(r.Managers, m.UserID)
		case db.TeamObserver:
			r.Observers = append(r.Observers, m.UserID)
		}
	}
	return r, nil
}

type apiKeyRecord struct {
	Name      string    `json:"name"`
	UserID    int       `json:"userId"`
	Role      db.Role   `json:"role"`
	KeyHash   string    `json:"keyHash"`
	Prefix    string    `json:"prefix"`
	ExpiresAt time.Time `json:"expiresAt"`
}

func recordOfAPIKey(k *db.APIKey) *apiKeyRecord {
	return &apiKeyRecord{Name: k.Name, UserID: k.UserID, Role: k.Role, KeyHash: k.KeyHash, Prefix: k.Prefix, ExpiresAt: k.ExpiresAt}
}
