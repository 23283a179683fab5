package server

import (
	"context"
	"errors"
	"fmt"
	"github.com/klaxonhq/klaxon/invalid"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/validator/core"
	"github.com/vektah/gqlparser/v2/validator/rules"

	"github.com/klaxonhq/klaxon/auth"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/events"
	"github.com/klaxonhq/klaxon/graph"
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
	// codePasswordLoginDisabled refuses login while only single sign-on
	// is on (KLAXON_PASSWORD_LOGIN=false).
	codePasswordLoginDisabled = "PASSWORD_LOGIN_DISABLED"
)

// databaseUnavailable is the message of UNAVAILABLE errors caused by the
// database being away.
const databaseUnavailable = "the database is unavailable; nothing was changed, retry later"

func (s *Server) graphQLHandler() http.Handler {
	schema := graph.NewExecutableSchema(graph.Config{Resolvers: s.resolver})
	h := handler.New(schema)
	h.AddTransport(websocketTransport{s})
	h.AddTransport(transport.GET{})
	h.AddTransport(transport.POST{})
	h.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	if s.cfg.GraphQLNoIntrospection {
		// The validator's "Did you mean …?" hints would spell the schema
		// out to a client guessing names one at a time.
		h.SetDisableSuggestion(true)
		h.SetValidationRulesFn(validationRulesWithoutSuggestions)
	} else {
		h.Use(extension.Introspection{})
	}
	h.Use(extension.AutomaticPersistedQuery{Cache: lru.New[string](100)})
	h.Use(operationLimits{maxDepth: s.cfg.GraphQLMaxDepth, maxComplexity: s.cfg.GraphQLMaxComplexity, introspection: !s.cfg.GraphQLNoIntrospection})
	h.SetErrorPresenter(s.presentError)
	h.SetRecoverFunc(func(ctx context.Context, v any) error {
		s.log.ErrorContext(ctx, "panic in resolver", "panic", v)
		return errors.New("internal error")
	})
	return h
}

// validationRulesWithoutSuggestions are the standard validation rules, each
// one that would suggest a name swapped for its silent twin. gqlgen's own
// switch swaps only two of the five.
func validationRulesWithoutSuggestions() *rules.Rules {
	r := rules.NewDefaultRules()
	for _, silent := range []core.Rule{
		rules.FieldsOnCorrectTypeRuleWithoutSuggestions,
		rules.ScalarLeafsRuleWithoutSuggestions,
		rules.KnownArgumentNamesRuleWithoutSuggestions,
		rules.KnownTypeNamesRuleWithoutSuggestions,
		rules.ValuesOfCorrectTypeRuleWithoutSuggestions,
	} {
		r.RemoveRule(strings.TrimSuffix(silent.Name, "WithoutSuggestions"))
		r.AddRule(silent.Name, silent.RuleFunc)
	}
	return r
}

// presentError is the one place that turns domain errors into GraphQL
// errors. Internal errors are logged in full and shown to the caller only
// as "internal error", so no SQL or stack ever reaches a client.
func (s *Server) presentError(ctx context.Context, err error) *gqlerror.Error {
	presented := graphql.DefaultErrorPresenter(ctx, err)
	var fieldErr *invalid.Field
	var gqlErr *gqlerror.Error
	errors.As(err, &gqlErr)
	var rateErr *db.RateLimitError
	switch {
	case errors.Is(err, auth.ErrInvalidCredentials):
		setCode(presented, codeUnauthenticated, "invalid email or password")
	case errors.Is(err, auth.ErrPasswordLoginDisabled):
		setCode(presented, codePasswordLoginDisabled, "password sign-in is turned off; sign in through single sign-on")
	case errors.Is(err, auth.ErrInvalidLoginCode):
		setCode(presented, codeUnauthenticated, "invalid or expired login code")
	case errors.Is(err, auth.ErrUnauthenticated):
		setCode(presented, codeUnauthenticated, "authentication required")
	case errors.Is(err, auth.ErrForbidden):
		setCode(presented, codeForbidden, "your role does not allow this")
	case errors.As(err, &fieldErr):
		setCode(presented, codeBadUserInput, fieldErr.Error())
		presented.Extensions["field"] = fieldErr.Name
	case errors.As(err, &rateErr):
		setCode(presented, codeRateLimited, rateErr.Error())
		presented.Extensions["retryAfterSeconds"] = rateErr.RetryAfterSeconds()
	case errors.Is(err, db.ErrNotFound):
		setCode(presented, codeNotFound, "not found")
	case errors.Is(err, events.ErrTooSlow):
		setCode(presented, codeTooSlow, events.ErrTooSlow.Error())
	case errors.Is(err, events.ErrCursorTooOld):
		setCode(presented, codeBadUserInput, events.ErrCursorTooOld.Error())
	case errors.Is(err, events.ErrClosed):
		setCode(presented, codeUnavailable, "the server is stopping; reconnect and resume with the last cursor")
	case unavailable(err):
		s.log.WarnContext(ctx, "graphql request failed: database unavailable", "err", err, "path", presented.Path.String())
		setCode(presented, codeUnavailable, databaseUnavailable)
		presented.Extensions["retryAfterSeconds"] = int(db.UnavailableRetryAfter / time.Second)
	case gqlErr != nil && gqlErr.Err == nil:
		// gqlgen's own parse, validation and input-coercion errors: their
		// text is meant for the caller.
		if presented.Extensions == nil || presented.Extensions["code"] == nil {
			setCode(presented, codeBadUserInput, presented.Message)
		}
	case isArgumentError(ctx, gqlErr):
		// An argument or input field the caller sent that does not parse
		// as its type ("abc" for an ID).
		field := inputFieldName(gqlErr.Path[len(graphql.GetFieldContext(ctx).Path()):])
		reason := gqlErr.Err.Error()
		if numErr := (*strconv.NumError)(nil); errors.As(gqlErr.Err, &numErr) {
			reason = "must be an integer"
		}
		setCode(presented, codeBadUserInput, field+": "+reason)
		presented.Extensions["field"] = field
	default:
		s.log.ErrorContext(ctx, "graphql request failed", "err", err, "path", presented.Path.String())
		setCode(presented, codeInternal, "internal error")
	}
	return presented
}

// isArgumentError reports whether err arose parsing the arguments of the
// field in ctx. gqlgen puts every error under a path, a resolver's under
// its field's; only its unmarshalling of arguments reaches below a field,
// into the name of one of its arguments.
func isArgumentError(ctx context.Context, gqlErr *gqlerror.Error) bool {
	fc := graphql.GetFieldContext(ctx)
	if gqlErr == nil || gqlErr.Err == nil || fc == nil || fc.Field.Field == nil {
		return false
	}
	base := fc.Path()
	if len(gqlErr.Path) <= len(base) {
		return false
	}
	name, ok := gqlErr.Path[len(base)].(ast.PathName)
	return ok && fc.Field.Arguments.ForName(string(name)) != nil
}

// inputFieldName names an argument's path the way field errors do
// ("mapping.severity[0]"): without the conventional "input" argument.
func inputFieldName(path ast.Path) string {
	if len(path) > 1 {
		if name, ok := path[0].(ast.PathName); ok && name == "input" {
			path = path[1:]
		}
	}
	var b strings.Builder
	for _, el := range path {
		switch el := el.(type) {
		case ast.PathIndex:
			fmt.Fprintf(&b, "[%d]", int(el))
		case ast.PathName:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(string(el))
		}
	}
	return b.String()
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
		r = r.WithContext(auth.WithClientAddr(r.Context(), s.clientAddr(r)))
		token, present := bearerToken(r)
		if !present {
			next.ServeHTTP(w, r)
			return
		}
		user, err := s.auth.Authenticate(r.Context(), token)
		if err != nil {
			if unavailable(err) {
				s.log.WarnContext(r.Context(), "authenticate: database unavailable", "err", err)
				w.Header().Set("Retry-After", retryAfterUnavailable)
				writeGraphQLError(w, http.StatusServiceUnavailable, codeUnavailable, databaseUnavailable)
				return
			}
			if !errors.Is(err, auth.ErrUnauthenticated) {
				s.log.ErrorContext(r.Context(), "authenticate", "err", err)
				writeGraphQLError(w, http.StatusInternalServerError, codeInternal, "internal error")
				return
			}
			writeGraphQLError(w, http.StatusUnauthorized, codeUnauthenticated, "invalid or expired token")
			return
		}
		next.ServeHTTP(w, r.WithContext(auth.WithCaller(r.Context(), user, token)))
	})
}
