package server

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/99designs/gqlgen/graphql/playground"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/klaxonhq/klaxon/alerting"
	"github.com/klaxonhq/klaxon/auth"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/events"
	"github.com/klaxonhq/klaxon/graph"
	"github.com/klaxonhq/klaxon/resolvers"
)

// GraphQL error codes, in extensions.code.
const (
	codeUnauthenticated = "UNAUTHENTICATED"
	codeForbidden       = "FORBIDDEN"
	codeBadUserInput    = "BAD_USER_INPUT"
	codeNotFound        = "NOT_FOUND"
	codeInternal        = "INTERNAL_SERVER_ERROR"
	codeTooSlow         = "SUBSCRIBER_TOO_SLOW"
	codeUnavailable     = "UNAVAILABLE"
	codeRateLimited     = "RATE_LIMITED"
)

// complexityLimit bounds what one query may ask for; every field counts
// one and lists count their children once, which stops deeply nested
// queries from fanning out.
const complexityLimit = 2000

func (s *Server) graphQLHandler() http.Handler {
	schema := graph.NewExecutableSchema(graph.Config{Resolvers: &resolvers.Resolver{Alerting: s.alerting, Auth: s.auth, Events: s.events}})
	h := handler.New(schema)
	h.AddTransport(s.websocketTransport())
	h.AddTransport(transport.GET{})
	h.AddTransport(transport.POST{})
	h.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	h.Use(extension.Introspection{})
	h.Use(extension.AutomaticPersistedQuery{Cache: lru.New[string](100)})
	h.Use(extension.FixedComplexityLimit(complexityLimit))
	h.SetErrorPresenter(s.presentError)
	h.SetRecoverFunc(func(ctx context.Context, v any) error {
		s.log.ErrorContext(ctx, "panic in resolver", "panic", v)
		return errors.New("internal error")
	})
	return h
}

func playgroundHandler() http.Handler {
	return playground.Handler("Klaxon", "/graphql")
}

// presentError is the one place that turns domain errors into GraphQL
// errors. Internal errors are logged in full and shown to the caller only
// as "internal error", so no SQL or stack ever reaches a client.
func (s *Server) presentError(ctx context.Context, err error) *gqlerror.Error {
	presented := graphql.DefaultErrorPresenter(ctx, err)
	var fieldErr interface {
		error
		FieldName() string
	}
	var gqlErr *gqlerror.Error
	var rateErr *alerting.RateLimitError
	switch {
	case errors.Is(err, auth.ErrInvalidCredentials):
		setCode(presented, codeUnauthenticated, "invalid email or password")
	case errors.Is(err, auth.ErrUnauthenticated):
		setCode(presented, codeUnauthenticated, "authentication required")
	case errors.Is(err, auth.ErrForbidden):
		setCode(presented, codeForbidden, "your role does not allow this")
	case errors.As(err, &fieldErr):
		setCode(presented, codeBadUserInput, fieldErr.Error())
		presented.Extensions["field"] = fieldErr.FieldName()
	case errors.As(err, &rateErr):
		setCode(presented, codeRateLimited, rateErr.Error())
		presented.Extensions["retryAfterSeconds"] = int(rateErr.Wait.Round(time.Second) / time.Second)
	case errors.Is(err, db.ErrNotFound):
		setCode(presented, codeNotFound, "not found")
	case errors.Is(err, events.ErrTooSlow):
		setCode(presented, codeTooSlow, events.ErrTooSlow.Error())
	case errors.Is(err, events.ErrCursorTooOld):
		setCode(presented, codeBadUserInput, events.ErrCursorTooOld.Error())
	case errors.Is(err, events.ErrClosed):
		setCode(presented, codeUnavailable, "the server is stopping; reconnect and resume with the last cursor")
	case errors.As(err, &gqlErr) && gqlErr.Err == nil:
		// gqlgen's own parse, validation and input-coercion errors: their
		// text is meant for the caller.
		if presented.Extensions == nil || presented.Extensions["code"] == nil {
			setCode(presented, codeBadUserInput, presented.Message)
		}
	default:
		s.log.ErrorContext(ctx, "graphql request failed", "err", err, "path", presented.Path.String())
		setCode(presented, codeInternal, "internal error")
	}
	return presented
}

func setCode(e *gqlerror.Error, code, message string) {
	if e.Extensions == nil {
		e.Extensions = map[string]any{}
	}
	e.Extensions["code"] = code
	e.Message = message
}

// authenticate puts the bearer token's user in the context. A token that
// is present but invalid or expired is refused outright, so a client
// learns at once that it must sign in again.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, present := bearerToken(r)
		if !present {
			next.ServeHTTP(w, r)
			return
		}
		user, err := s.auth.Authenticate(r.Context(), token)
		if err != nil {
			if !errors.Is(err, auth.ErrUnauthenticated) {
				s.log.ErrorContext(r.Context(), "authenticate", "err", err)
				writeError(w, http.StatusInternalServerError, "internal error")
				return
			}
			writeJSON(w, http.StatusUnauthorized, map[string]any{"errors": []map[string]any{{
				"message":    "invalid or expired token",
				"extensions": map[string]string{"code": codeUnauthenticated},
			}}})
			return
		}
		next.ServeHTTP(w, r.WithContext(auth.WithUser(r.Context(), user)))
	})
}
