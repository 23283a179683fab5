package oncall

import (
	"fmt"
	"sync"
	"time"

	// Embedded so results do not depend on whether, or which, zoneinfo
	// database the host has.
	_ "time/tzdata"
)

// zoneCache avoids re-parsing zoneinfo on every OnCall, which the
// escalation engine calls often. It only ever holds successfully loaded
// zones, so it is bounded by the size of the tz database.
var zoneCache sync.Map // string -> *time.Location

func loadZone(name string) (*time.Location, error) {
	if name == "" {
		return nil, fmt.Errorf("is required")
	}
	// "Local" would make results depend on the host's configuration.
	if name == "Local" {
		return nil, fmt.Errorf("must be an IANA zone name, not %q", name)
	}
	if loc, ok := zoneCache.Load(name); ok {
		return loc.(*time.Location), nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q", name)
	}
	zoneCache.Store(name, loc)
	return loc, nil
}

// LoadZone returns the IANA zone name, refusing "" and "Local" like a
// schedule's zone; the error says what is wrong with the name.
func LoadZone(name string) (*time.Location, error) { return loadZone(name) }
