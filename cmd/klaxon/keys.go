package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/klaxonhq/klaxon/auth"
)

// rotateKeys replaces the generated signing key. A configured key
// (KLAXON_JWT_SECRET) is rotated by configuration instead.
func rotateKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	store, err := openForCommand(ctx, "keys rotate", args, stderr, nil)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := auth.RotateSigningKey(ctx, store, time.Now().UTC()); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "rotated the session signing key; running servers take it up within a minute")
	return nil
}
