package auth_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/klaxonhq/klaxon/auth"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
)

// The escalation engine expands group targets through MemberIDs: the
// members of all the groups asked about, each once, in order.
func TestMemberIDsOfSeveralGroups(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		svc, err := auth.NewService(d, nil, time.Now)
		if err != nil {
			t.Fatal(err)
		}
		svc.SetPasswordCost(bcrypt.MinCost)
		str := func(s string) *string { return &s }
		var users []int
		for _, email := range []string{"a@example.com", "b@example.com", "c@example.com"} {
			u, err := svc.CreateUser(ctx, auth.UserInput{Email: str(email), Password: str("long-enough")})
			if err != nil {
				t.Fatal(err)
			}
			users = append(users, u.ID)
		}
		first, err := svc.CreateGroup(ctx, auth.GroupInput{Name: str("First"), MemberIDs: []int{users[2], users[0]}})
		if err != nil {
			t.Fatal(err)
		}
		second, err := svc.CreateGroup(ctx, auth.GroupInput{Name: str("Second"), MemberIDs: []int{users[0], users[1]}})
		if err != nil {
			t.Fatal(err)
		}
		empty, err := svc.CreateGroup(ctx, auth.GroupInput{Name: str("Empty")})
		if err != nil {
			t.Fatal(err)
		}
		got, err := svc.MemberIDs(ctx, d, []int{first.ID, second.ID})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, users) {
			t.Fatalf("members %v, want %v", got, users)
		}
		if got, err := svc.MemberIDs(ctx, d, []int{empty.ID, 9999}); err != nil || len(got) != 0 {
			t.Fatalf("members of an empty and a missing group: %v, %v", got, err)
		}
	})
}
