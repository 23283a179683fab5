package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/auth"
	"github.com/klaxonhq/klaxon/db"
)

// "klaxon keys rotate" replaces the stored key and keeps the old one for
// the tokens it signed.
func TestKeysRotate(t *testing.T) {
	dataDir := t.TempDir()
	ctx := context.Background()
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"migrate", "--data-dir", dataDir}, &out, &errOut); err != nil {
		t.Fatalf("migrate: %v\n%s", err, errOut.String())
	}
	store, err := db.Open(ctx, db.DefaultURL(dataDir))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	load := auth.KeyRingLoader(store, "", "", time.Now())
	before, err := load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := run(ctx, []string{"keys", "rotate", "--data-dir", dataDir}, &out, &errOut); err != nil {
		t.Fatalf("keys rotate: %v\n%s", err, errOut.String())
	}
	after, err := load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(after.Current, before.Current) || !bytes.Equal(after.Previous, before.Current) || after.Retired.IsZero() {
		t.Fatalf("after rotation: current changed %v, previous is the old key %v, retired %s",
			!bytes.Equal(after.Current, before.Current), bytes.Equal(after.Previous, before.Current), after.Retired)
	}
}
