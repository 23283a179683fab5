package db

import "context"

// MigrateUntil applies the migrations up to and including last, so a test
// can fill a database as an older version left it and then upgrade it.
func (d *DB) MigrateUntil(ctx context.Context, last string) ([]string, error) {
	return d.migrate(ctx, last)
}
