package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// More GraphQL error codes, in extensions.code, for operations refused
// before they run.
const (
	codeDepthLimit       = "DEPTH_LIMIT_EXCEEDED"
	codeValidationFailed = "GRAPHQL_VALIDATION_FAILED"
	codeRequestTooLarge  = "REQUEST_TOO_LARGE"
	codeBadRequest       = "BAD_REQUEST"
)

// operationLimits refuses, before anything runs, operations nested deeper
// than maxDepth and, when introspection is off, operations that ask for
// __schema or __type. Complexity alone does not bound nesting: each field
// counts once however deep it sits, so a narrow but deep query through
// the schema's cycles stays cheap by that count while fanning out at run
// time.
type operationLimits struct {
	maxDepth      int
	introspection bool
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = operationLimits{}

func (operationLimits) ExtensionName() string { return "OperationLimits" }

func (operationLimits) Validate(graphql.ExecutableSchema) error { return nil }

// MutateOperationContext runs after parsing and validation, so fragments
// are known to exist and to have no cycles; the walk still guards against
// cycles in case a cached document skipped validation.
func (l operationLimits) MutateOperationContext(ctx context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	if opCtx.Operation == nil {
		return nil
	}
	w := &depthWalker{fragments: opCtx.Doc.Fragments, visiting: map[string]bool{}, max: l.maxDepth}
	w.walk(opCtx.Operation.SelectionSet, 1)
	if !l.introspection && w.introspection {
		err := gqlerror.Errorf("introspection is disabled on this server")
		err.Extensions = map[string]any{"code": codeValidationFailed}
		return err
	}
	if w.deepest > l.maxDepth {
		err := gqlerror.Errorf("operation is nested more than %d levels deep, the limit", l.maxDepth)
		err.Extensions = map[string]any{"code": codeDepthLimit, "maxDepth": l.maxDepth}
		return err
	}
	return nil
}

// depthWalker measures how deep an operation's fields nest, counting a
// top-level field as depth 1 and looking through fragments, which add no
// depth of their own.
type depthWalker struct {
	fragments     ast.FragmentDefinitionList
	visiting      map[string]bool
	max           int
	deepest       int
	introspection bool
}

func (w *depthWalker) walk(set ast.SelectionSet, depth int) {
	for _, sel := range set {
		// Past the limit the answer is known; stop rather than walk a
		// hostile document to its end.
		if w.deepest > w.max {
			return
		}
		switch sel := sel.(type) {
		case *ast.Field:
			if sel.Name == "__schema" || sel.Name == "__type" {
				w.introspection = true
			}
			w.deepest = max(w.deepest, depth)
			w.walk(sel.SelectionSet, depth+1)
		case *ast.InlineFragment:
			w.walk(sel.SelectionSet, depth)
		case *ast.FragmentSpread:
			def := sel.Definition
			if def == nil {
				def = w.fragments.ForName(sel.Name)
			}
			if def == nil || w.visiting[sel.Name] {
				continue
			}
			w.visiting[sel.Name] = true
			w.walk(def.SelectionSet, depth)
			delete(w.visiting, sel.Name)
		}
	}
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
