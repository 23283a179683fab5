package notifiers

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/klaxonhq/klaxon/db"
)

const vapidSecretName = "vapid"

// StoredVAPIDKeys returns the server's VAPID key pair, generating and
// storing it on first use. Browsers bind their push subscriptions to the
// public key, so it must outlive restarts and be the same on every
// instance: whichever instance stores first wins.
func StoredVAPIDKeys(ctx context.Context, d *db.DB, now time.Time) (public, private string, err error) {
	public, private, err = GenerateVAPIDKeys()
	if err != nil {
		return "", "", err
	}
	candidate := &db.Secret{Name: vapidSecretName, Value: public + "." + private, CreatedAt: now}
	if _, err := d.NewInsert().Model(candidate).On("CONFLICT (name) DO NOTHING").Exec(ctx); err != nil {
		return "", "", fmt.Errorf("store VAPID keys: %w", err)
	}
	var stored db.Secret
	if err := d.NewSelect().Model(&stored).Where("name = ?", vapidSecretName).Scan(ctx); err != nil {
		return "", "", fmt.Errorf("load VAPID keys: %w", err)
	}
	public, private, ok := strings.Cut(stored.Value, ".")
	if !ok {
		return "", "", fmt.Errorf("load VAPID keys: stored value is malformed")
	}
	return public, private, nil
}
