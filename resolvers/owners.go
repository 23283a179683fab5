package resolvers

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/heartbeats"
)

// ownersTTL bounds how long a change of owner made on another instance
// goes unseen by this one's subscriptions; changes made here are seen at
// once through OwnersChanged.
const ownersTTL = time.Second

// owners caches which team owns each integration and heartbeat monitor,
// so that deciding whether a subscriber may see an event costs no
// database read: an alert and an inbound message belong to their
// integration's team, a missed heartbeat's alert to its monitor's.
type owners struct {
	mu           sync.Mutex
	integrations map[int]*int
	monitors     map[int]*int
	loadedAt     time.Time
	stale        bool
}

// OwnersChanged drops the cached owners; the integration and heartbeat
// stores' change hooks call it.
func (r *Resolver) OwnersChanged() {
	r.owners.mu.Lock()
	r.owners.stale = true
	r.owners.mu.Unlock()
}

// alertTeam is the team an alert belongs to; nil is organisation-wide.
func (r *Resolver) alertTeam(ctx context.Context, a *db.Alert) (*int, error) {
	if a.IntegrationID == nil && a.HeartbeatMonitorID == nil {
		return nil, nil
	}
	r.owners.mu.Lock()
	defer r.owners.mu.Unlock()
	if err := r.freshOwners(ctx); err != nil {
		return nil, err
	}
	if a.IntegrationID != nil {
		if team, ok := r.owners.integrations[*a.IntegrationID]; ok {
			return team, nil
		}
	}
	if a.HeartbeatMonitorID != nil {
		if team, ok := r.owners.monitors[*a.HeartbeatMonitorID]; ok {
			return team, nil
		}
	}
	// Made on another instance since the last load, or deleted: read again
	// rather than guess.
	if err := r.loadOwners(ctx); err != nil {
		return nil, err
	}
	if a.IntegrationID != nil {
		return r.owners.integrations[*a.IntegrationID], nil
	}
	return r.owners.monitors[*a.HeartbeatMonitorID], nil
}

// integrationTeam is the team an integration (and so its inbound
// messages) belongs to.
func (r *Resolver) integrationTeam(ctx context.Context, integrationID int) (*int, error) {
	return r.alertTeam(ctx, &db.Alert{IntegrationID: &integrationID})
}

// freshOwners loads the owners unless the cache is fresh; the caller
// holds the lock.
func (r *Resolver) freshOwners(ctx context.Context) error {
	o := &r.owners
	if o.integrations != nil && !o.stale && time.Since(o.loadedAt) < ownersTTL {
		return nil
	}
	return r.loadOwners(ctx)
}

func (r *Resolver) loadOwners(ctx context.Context) error {
	integs, err := r.IntegrationStore.Integrations(ctx)
	if err != nil {
		return fmt.Errorf("load owners of integrations: %w", err)
	}
	var monitors []*heartbeats.Monitor
	// Servers built without heartbeat monitors (some tools) have none.
	if r.HeartbeatStore != nil {
		if monitors, err = r.HeartbeatStore.Monitors(ctx); err != nil {
			return fmt.Errorf("load owners of heartbeat monitors: %w", err)
		}
	}
	o := &r.owners
	o.integrations = make(map[int]*int, len(integs))
	for _, integ := range integs {
		o.integrations[integ.ID] = integ.TeamID
	}
	o.monitors = make(map[int]*int, len(monitors))
	for _, m := range monitors {
		o.monitors[m.ID] = m.TeamID
	}
	o.loadedAt, o.stale = time.Now(), false
	return nil
}
