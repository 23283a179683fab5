package alerting

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/rules"
)

var (
	// ErrUnknownToken means no integration has the token a webhook used
	// (it never existed, or it was rotated out).
	ErrUnknownToken = errors.New("alerting: unknown integration token")
	// ErrIntegrationDisabled means the integration exists but is switched off.
	ErrIntegrationDisabled = errors.New("alerting: integration is disabled")
)

// routeTTL bounds how long another instance's change to an integration or
// its ruleset can go unseen here; this instance's own changes take effect
// at once.
const routeTTL = time.Second

// route is what ingest needs to know about a token: its integration and
// the compiled mapping and rules. Compiling is most of the cost of a
// message after its commit, so a route is built once per token and kept.
type route struct {
	integ   *db.Integration
	program *rules.Program
	// grouper computes the group key of the alerts the integration opens;
	// nil when it does not group.
	grouper *rules.Grouper
	// failure is a configuration problem (a missing ruleset, a mapping
	// that does not compile) that every message of the integration is
	// stored with until it is fixed.
	failure string
	// windows are the maintenance windows naming the integration.
	windows    []*db.MaintenanceWindow
	loadedAt   time.Time
	generation uint64
}

// routeCache maps tokens to routes. Any change to integrations, rulesets,
// policies or maintenance windows drops every route: such changes are rare, and a precise
// invalidation would have to know which tokens a ruleset reaches.
type routeCache struct {
	mu         sync.RWMutex
	byToken    map[string]*route
	generation uint64
}

func (c *routeCache) get(token string) *route {
	c.mu.RLock()
	defer c.mu.RUnlock()
	r := c.byToken[token]
	if r == nil || r.generation != c.generation || time.Since(r.loadedAt) > routeTTL {
		return nil
	}
	return r
}

// put keeps r unless the cache was invalidated while r was being loaded.
func (c *routeCache) put(token string, r *route) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.generation != c.generation {
		return
	}
	if c.byToken == nil {
		c.byToken = map[string]*route{}
	}
	c.byToken[token] = r
}

func (c *routeCache) current() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.generation
}

func (c *routeCache) invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.generation++
	clear(c.byToken)
}

// RoutesChanged drops every cached route, so the next message of each
// integration is routed by the configuration as it is now. The stores of
// the configuration a route is built from call it after each change.
func (s *Service) RoutesChanged() {
	s.routes.invalidate()
	s.workflows.invalidate()
}

// routeFor returns the token's route, from the cache when it is fresh.
func (s *Service) routeFor(ctx context.Context, token string) (*route, error) {
	return s.cachedRoute(ctx, token, func() (*db.Integration, error) {
		return s.config.Integrations.IntegrationByToken(ctx, token)
	})
}

// cachedRoute returns the route cached under cacheKey when it is fresh,
// and otherwise builds it for the integration lookup finds.
func (s *Service) cachedRoute(ctx context.Context, cacheKey string, lookup func() (*db.Integration, error)) (*route, error) {
	if r := s.routes.get(cacheKey); r != nil {
		return r, nil
	}
	generation := s.routes.current()
	integ, err := lookup()
	if errors.Is(err, db.ErrNotFound) {
		return nil, ErrUnknownToken
	}
	if err != nil {
		return nil, err
	}
	r := &route{integ: integ, loadedAt: time.Now(), generation: generation}
	if s.config.Maintenance != nil {
		if r.windows, err = s.config.Maintenance.WindowsFor(ctx, s.db, integ.ID); err != nil {
			return nil, err
		}
	}
	var specs []rules.Rule
	if integ.RulesetID != nil {
		rs, err := s.config.Integrations.RulesetByID(ctx, s.db, *integ.RulesetID)
		if err != nil && !errors.Is(err, db.ErrNotFound) {
			return nil, err
		}
		if err != nil {
			r.failure = "ruleset unavailable: " + err.Error()
		} else {
			specs = rs.RuleSpecs()
		}
	}
	if r.failure == "" {
		r.compile(specs)
	}
	s.routes.put(cacheKey, r)
	return r, nil
}

// compile builds the route's program from its integration's mapping and
// specs, and its grouper; what fails to compile becomes the route's
// failure.
func (r *route) compile(specs []rules.Rule) {
	var err error
	if r.program, err = rules.Compile(r.integ.Mapping, specs); err != nil {
		r.failure = "integration configuration: " + err.Error()
		return
	}
	if r.integ.Grouping != nil {
		if r.grouper, err = rules.CompileGrouping(*r.integ.Grouping); err != nil {
			r.failure = "integration grouping: " + err.Error()
		}
	}
}

// hold is the maintenance window that holds back the paging of an alert
// the integration opens at t, nil when none covers t. The windows are
// kept with the route, so the check costs no query; the route's lifetime
// bounds how late another instance's change to a window is seen.
func (r *route) hold(t time.Time) *suppression {
	return holdAmong(r.windows, t)
}

// holdAmong is the window of windows that holds back paging at t, nil
// when none covers t.
func holdAmong(windows []*db.MaintenanceWindow, t time.Time) *suppression {
	w, until := db.ActiveMaintenance(windows, t)
	if w == nil {
		return nil
	}
	return &suppression{WindowID: w.ID, Name: w.Name, Until: until, Page: w.PageOpenAlertsAfter}
}

// decide maps and evaluates a parsed body (parseErr when it did not
// parse), given the facts about its source that the rules ask for (see
// Service.factsFor): the whole decision, pure, so a dry run or a replay
// can pass facts of its own, and a replay parses each stored body once for
// the two rulesets it compares. A non-empty failure is the reason the
// message cannot be mapped, meant for the inbound log.
func (r *route) decide(parsed *rules.Message, parseErr error, facts rules.Facts) (rules.Decision, string) {
	none := rules.Decision{RuleIndex: -1}
	if r.failure != "" {
		return none, r.failure
	}
	if parseErr != nil {
		return none, parseErr.Error()
	}
	decision := r.program.EvaluateWith(parsed, facts)
	if decision.Err != nil {
		return none, decision.Err.Error()
	}
	if decision.Action == rules.ActionOpen && decision.Fields.SourceID == "" {
		return decision, "no dedup key: the mapping found no source id, source name, subject or URL"
	}
	if decision.Action == rules.ActionOpen && r.grouper != nil {
		decision.GroupKey = r.grouper.Key(parsed, decision.Fields)
	}
	return decision, ""
}
