package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/klaxonhq/klaxon/db"
)

// More GraphQL error codes, in extensions.code, for operations refused
// before they run.
const (
	codeDepthLimit       = "DEPTH_LIMIT_EXCEEDED"
	codeComplexityLimit  = "COMPLEXITY_LIMIT_EXCEEDED"
	codeValidationFailed = "GRAPHQL_VALIDATION_FAILED"
	codeRequestTooLarge  = "REQUEST_TOO_LARGE"
	codeBadRequest       = "BAD_REQUEST"
)

// How the complexity of an operation is counted. A field costs one, plus
// what its children cost once for every item it yields. A list paged
// with first yields that many (db.DefaultPageSize without it, and
// db.MaxPageSize for a value the resolver will refuse anyway); any other
// list of objects (a user's contact methods, a group's members, an
// alert's timeline) is assumed to hold assumedListLength. Introspection
// answers from the schema, whose size is fixed, so its lists count once.
const (
	assumedListLength = 10
	// MaxRootFields bounds the fields an operation selects at its top,
	// aliases included: each is a separate trip to the database.
	MaxRootFields = 50
)

// operationLimits refuses, before anything runs, operations nested deeper
// than maxDepth, selecting more than MaxRootFields at their top or costing
// more than maxComplexity, and, when introspection is off, operations
// that ask for __schema or __type.
type operationLimits struct {
	maxDepth      int
	maxComplexity int
	introspection bool
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = operationLimits{}

func (operationLimits) ExtensionName() string { return "OperationLimits" }

func (operationLimits) Validate(graphql.ExecutableSchema) error { return nil }

// MutateOperationContext runs after parsing, validation and the coercion
// of variables, so fragments are known to exist and to have no cycles and
// a page size given as a variable is known; the walk still guards against
// cycles in case a cached document skipped validation.
func (l operationLimits) MutateOperationContext(ctx context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	if opCtx.Operation == nil {
		return nil
	}
	w := &limitWalker{
		fragments: opCtx.Doc.Fragments,
		vars:      opCtx.Variables,
		visiting:  map[string]bool{},
		maxDepth:  l.maxDepth,
		maxCost:   l.maxComplexity,
	}
	roots := w.rootFields(opCtx.Operation.SelectionSet)
	cost := w.cost(opCtx.Operation.SelectionSet, 1, 0, false)
	switch {
	case !l.introspection && w.introspection:
		err := gqlerror.Errorf("introspection is disabled on this server")
		err.Extensions = map[string]any{"code": codeValidationFailed}
		return err
	case w.deepest > l.maxDepth:
		err := gqlerror.Errorf("operation is nested more than %d levels deep, the limit", l.maxDepth)
		err.Extensions = map[string]any{"code": codeDepthLimit, "maxDepth": l.maxDepth}
		return err
	case roots > MaxRootFields:
		err := gqlerror.Errorf("operation selects %d top-level fields, aliases included; the limit is %d", roots, MaxRootFields)
		err.Extensions = map[string]any{"code": codeComplexityLimit, "maxRootFields": MaxRootFields}
		return err
	case cost > l.maxComplexity:
		// Past the limit the walk stops counting, so the cost is a floor.
		err := gqlerror.Errorf("operation costs more than %d, the limit (each field counts once per item of the lists above it; ask for smaller pages)", l.maxComplexity)
		err.Extensions = map[string]any{"code": codeComplexityLimit, "maxComplexity": l.maxComplexity}
		return err
	}
	return nil
}

// limitWalker measures an operation: how deep its fields nest (a
// top-level field is depth 1; fragments add no depth of their own), what
// it costs, and whether it introspects.
type limitWalker struct {
	fragments     ast.FragmentDefinitionList
	vars          map[string]any
	visiting      map[string]bool
	maxDepth      int
	maxCost       int
	deepest       int
	introspection bool
	// visited counts the fields walked. A field costs at least one, so
	// once it passes maxCost the cost does too and the walk stops: a
	// hostile document (fragments spread twice, each spreading two more)
	// is never walked to its end.
	visited int
}

// rootFields counts the fields selected at the top, through fragments.
func (w *limitWalker) rootFields(set ast.SelectionSet) int {
	n := 0
	for _, sel := range set {
		switch sel := sel.(type) {
		case *ast.Field:
			n++
		case *ast.InlineFragment:
			n += w.rootFields(sel.SelectionSet)
		case *ast.FragmentSpread:
			if def := w.fragment(sel); def != nil && !w.visiting[sel.Name] {
				w.visiting[sel.Name] = true
				n += w.rootFields(def.SelectionSet)
				delete(w.visiting, sel.Name)
			}
		}
		if n > MaxRootFields {
			break
		}
	}
	return n
}

// cost is what set costs once. pageItems is the page size its parent
// field was asked for, which its list (a connection's nodes) yields.
func (w *limitWalker) cost(set ast.SelectionSet, depth, pageItems int, introspection bool) int {
	total := 0
	for _, sel := range set {
		if w.visited > w.maxCost || w.deepest > w.maxDepth {
			return w.maxCost + 1
		}
		switch sel := sel.(type) {
		case *ast.Field:
			w.visited++
			w.deepest = max(w.deepest, depth)
			inside := introspection || sel.Name == "__schema" || sel.Name == "__type"
			w.introspection = w.introspection || inside
			items, childPage := 1, 0
			if def := sel.Definition; def != nil && !inside {
				if def.Arguments.ForName("first") != nil {
					childPage = w.pageSize(sel)
				}
				if def.Type.Elem != nil {
					items = assumedListLength
					if pageItems > 0 {
						items = pageItems
					}
				}
			}
			children := w.cost(sel.SelectionSet, depth+1, childPage, inside)
			total = w.add(total, 1+w.mul(items, children))
		case *ast.InlineFragment:
			total = w.add(total, w.cost(sel.SelectionSet, depth, pageItems, introspection))
		case *ast.FragmentSpread:
			def := w.fragment(sel)
			if def == nil || w.visiting[sel.Name] {
				continue
			}
			w.visiting[sel.Name] = true
			total = w.add(total, w.cost(def.SelectionSet, depth, pageItems, introspection))
			delete(w.visiting, sel.Name)
		}
	}
	return total
}

// add and mul saturate just past the limit, so no product of page sizes
// can overflow into an acceptable cost.
func (w *limitWalker) add(a, b int) int { return min(a+b, w.maxCost+1) }

func (w *limitWalker) mul(a, b int) int {
	if a != 0 && b > (w.maxCost+1)/a {
		return w.maxCost + 1
	}
	return min(a*b, w.maxCost+1)
}

// pageSize is how many items a paged field's page will hold: its first
// argument, db.DefaultPageSize without one, db.MaxPageSize for a value
// the resolver refuses.
func (w *limitWalker) pageSize(f *ast.Field) int {
	arg := f.Arguments.ForName("first")
	if arg == nil {
		return db.DefaultPageSize
	}
	v, err := arg.Value.Value(w.vars)
	if err != nil {
		return db.MaxPageSize
	}
	var n int64
	switch v := v.(type) {
	case nil:
		return db.DefaultPageSize
	case int64:
		n = v
	case int:
		n = int64(v)
	case float64:
		n = int64(v)
	case json.Number:
		if n, err = v.Int64(); err != nil {
			return db.MaxPageSize
		}
	default:
		return db.MaxPageSize
	}
	if n < 1 || n > db.MaxPageSize {
		return db.MaxPageSize
	}
	return int(n)
}

func (w *limitWalker) fragment(spread *ast.FragmentSpread) *ast.FragmentDefinition {
	if spread.Definition != nil {
		return spread.Definition
	}
	return w.fragments.ForName(spread.Name)
}

// limitGraphQLBody refuses POST bodies over limit with 413 before gqlgen
// reads them, and bodies gqlgen has no transport for with 415, both as
// GraphQL errors with a code: gqlgen itself would read any size into
// memory, and answer an unknown content type without a code.
func limitGraphQLBody(limit int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mediaType != "application/json" {
			writeGraphQLError(w, http.StatusUnsupportedMediaType, codeBadRequest, "POST /graphql takes Content-Type: application/json")
			return
		}
		tooLarge := fmt.Sprintf("request body is larger than the limit of %d bytes", limit)
		if r.ContentLength > limit {
			writeGraphQLError(w, http.StatusRequestEntityTooLarge, codeRequestTooLarge, tooLarge)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
		var maxErr *http.MaxBytesError
		switch {
		case errors.As(err, &maxErr):
			writeGraphQLError(w, http.StatusRequestEntityTooLarge, codeRequestTooLarge, tooLarge)
			return
		case err != nil:
			writeGraphQLError(w, http.StatusBadRequest, codeBadRequest, "could not read the request body")
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

// writeGraphQLError answers with a GraphQL response holding one error.
func writeGraphQLError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, map[string]any{"errors": []map[string]any{{
		"message":    message,
		"extensions": map[string]string{"code": code},
	}}})
}
