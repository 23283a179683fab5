package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/klaxonhq/klaxon/audit"
	"github.com/klaxonhq/klaxon/auth"
	"github.com/klaxonhq/klaxon/db"
)

func createUser(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var email, name, password, role string
	store, err := openForCommand(ctx, "user create", args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&email, "email", "", "the user's email (required)")
		fs.StringVar(&name, "name", "", "the user's name")
		fs.StringVar(&password, "password", "", "the user's password (at least 8 characters; required)")
		fs.StringVar(&role, "role", string(db.RoleViewer), "ADMIN, RESPONDER, VIEWER or MEMBER")
	})
	if err != nil {
		return err
	}
	defer store.Close()
	svc, err := auth.NewService(store, nil, time.Now)
	if err != nil {
		return err
	}
	r := db.Role(role)
	// Recorded in the audit log as made from the command line, by no user.
	u, err := svc.CreateUser(audit.WithSystemActor(ctx, "cli"), auth.UserInput{Email: &email, Name: &name, Password: &password, Role: &r})
	if err != nil {
		return fmt.Errorf("create user: %w", err)
	}
	fmt.Fprintf(stdout, "created user %d <%s> with role %s\n", u.ID, u.Email, u.Role)
	return nil
}
