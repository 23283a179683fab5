package resolvers

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/klaxonhq/klaxon/events"
	"github.com/klaxonhq/klaxon/graph"
)

// stream copies a subscription's events to a GraphQL subscription channel.
// When the subscription ends for a reason the client must hear of (it fell
// behind, the server is stopping), the last value carries that error.
func stream[T any](ctx context.Context, sub *events.Subscription, convert func(*events.Event) T, failed func(error) T) <-chan T {
	out := make(chan T, 1)
	go func() {
		defer close(out)
		defer sub.Close()
		for {
			ev, err := sub.Next(ctx)
			if err != nil {
				if errors.Is(err, events.ErrTooSlow) || errors.Is(err, events.ErrClosed) {
					select {
					case out <- failed(err):
					case <-ctx.Done():
					}
				}
				return
			}
			select {
			case out <- convert(ev):
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

func alertEventFilter(f *graph.AlertEventFilter) events.Filter {
	return func(ev *events.Event) bool {
		if ev.Kind != events.KindAlert || ev.Alert == nil {
			return false
		}
		if f == nil {
			return true
		}
		if f.IntegrationID != nil && ev.IntegrationID != *f.IntegrationID {
			return false
		}
		if len(f.Status) > 0 && !slices.Contains(f.Status, ev.Alert.Status) {
			return false
		}
		if len(f.Severity) > 0 && !slices.ContainsFunc(f.Severity, func(s string) bool { return strings.EqualFold(s, ev.Alert.Severity) }) {
			return false
		}
		if len(f.Types) > 0 && !slices.Contains(f.Types, ev.Type) {
			return false
		}
		return true
	}
}
