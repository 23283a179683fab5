package alerting

import (
	"context"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/rules"
)

// The drop-in APIs (PagerDuty's Events API v2, Opsgenie's Alert API) feed
// the same Ingest as webhooks: the HTTP layer checks the request against
// the API it imitates and hands over the body with the integration's
// routing key, and what was wrong with it if anything, so that the
// message is logged and decided like any other.

// routingKeyRoute prefixes the route cache's keys for routing keys, which
// never collide with tokens: a token has no ':'.
const routingKeyRoute = "key:"

// routeOf is the route of the integration in names: by its token, or for
// a drop-in API, by its routing key and of the API's type.
func (s *Service) routeOf(ctx context.Context, in Inbound) (*route, error) {
	if in.Type == "" {
		return s.routeFor(ctx, in.Token)
	}
	if in.RoutingKey == "" {
		return nil, ErrUnknownToken
	}
	r, err := s.cachedRoute(ctx, routingKeyRoute+in.RoutingKey, func() (*db.Integration, error) {
		return s.config.Integrations.IntegrationByRoutingKey(ctx, in.RoutingKey)
	})
	if err != nil {
		return nil, err
	}
	if r.integ.Type != in.Type {
		// The key is real but names an integration another API feeds:
		// to this API it is no key at all.
		return nil, ErrUnknownToken
	}
	return r, nil
}

// unmapped is why a drop-in message is stored without being mapped, and
// as what: a body the API refused, or a change event, which is context
// and never acts. Both are empty for a message to map.
func unmapped(in Inbound) (string, db.InboundStatus) {
	switch {
	case in.Invalid != "":
		return in.Invalid, db.InboundMappingFailed
	case in.ChangeEvent != "":
		return in.ChangeEvent, db.InboundChange
	}
	return "", ""
}

// IntegrationByKey is the integration of type typ whose routing key is
// key, enabled or not; ErrUnknownToken when there is none.
func (s *Service) IntegrationByKey(ctx context.Context, typ rules.IntegrationType, key string) (*db.Integration, error) {
	r, err := s.routeOf(ctx, Inbound{Type: typ, RoutingKey: key})
	if err != nil {
		return nil, err
	}
	return r.integ, nil
}
