package notifiers

import (
	"context"
	"sync"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/egress"
)

// Channels is the one set of senders, and the outbound guard they connect
// through, that the escalation engine and contact verification share: both
// hold the same value, so a channel configured (or replaced) here reaches
// both at once.
type Channels struct {
	mu      sync.RWMutex
	senders Senders
	guard   *egress.Guard
}

// NewChannels shares senders and guard; a nil guard allows only public
// addresses, and nil senders leave every channel unconfigured.
func NewChannels(senders Senders, guard *egress.Guard) *Channels {
	c := &Channels{}
	c.SetSenders(senders)
	c.SetGuard(guard)
	return c
}

// SetSenders replaces the configured channels.
func (c *Channels) SetSenders(senders Senders) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.senders = senders
}

// SetGuard replaces what contact URLs may point at; nil means public
// addresses only.
func (c *Channels) SetGuard(guard *egress.Guard) {
	if guard == nil {
		guard = egress.New(nil, nil)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.guard = guard
}

// Guard is what the URLs of contact methods may point at.
func (c *Channels) Guard() *egress.Guard {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.guard
}

// Send delivers msg over channel, or fails with ErrNotConfigured.
func (c *Channels) Send(ctx context.Context, channel db.ContactType, msg Message) (string, error) {
	c.mu.RLock()
	senders := c.senders
	c.mu.RUnlock()
	return senders.Send(ctx, channel, msg)
}

// Enabled tells whether notifications on channel can be delivered.
func (c *Channels) Enabled(channel db.ContactType) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	_, ok := c.senders[channel]
	return ok
}

// PushPublicKey is the VAPID key browsers subscribe with, or "" when Web
// Push is not configured.
func (c *Channels) PushPublicKey() string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if push, ok := c.senders[db.ContactPush].(interface{ PublicKey() string }); ok {
		return push.PublicKey()
	}
	return ""
}
