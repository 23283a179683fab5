package invalid_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/klaxonhq/klaxon/invalid"
)

func TestFieldErrorMethods(t *testing.T) {
	e := invalid.New("rules[1].conditions[0].op", "op is required")
	if got, want := e.Error(), "rules[1].conditions[0].op: op is required"; got != want {
		t.Errorf("Error() = %q; want %q", got, want)
	}
	// The API layer finds user errors through errors.As, however wrapped.
	var named *invalid.Field
	if !errors.As(fmt.Errorf("create ruleset: %w", e), &named) || named.Name != e.Name {
		t.Errorf("*invalid.Field not reachable through errors.As")
	}
}

func TestFieldfFormatsTheReason(t *testing.T) {
	if got := invalid.Fieldf("op", "unknown op %q", "xor").Reason; got != `unknown op "xor"` {
		t.Errorf("Reason = %q", got)
	}
}

func TestNameAndDescription(t *testing.T) {
	if name, err := invalid.Name("name", "  Primary  "); err != nil || name != "Primary" {
		t.Errorf("Name = %q, %v", name, err)
	}
	for _, bad := range []string{"", "   ", strings.Repeat("x", 201)} {
		_, err := invalid.Name("name", bad)
		var fe *invalid.Field
		if !errors.As(err, &fe) || fe.Name != "name" || fe.Reason != "must be 1 to 200 characters" {
			t.Errorf("Name(%d chars) = %v", len(bad), err)
		}
	}
	if err := invalid.Description("description", strings.Repeat("x", 2000)); err != nil {
		t.Errorf("2000 characters: %v", err)
	}
	var fe *invalid.Field
	if err := invalid.Description("description", strings.Repeat("x", 2001)); !errors.As(err, &fe) || fe.Reason != "must be at most 2000 characters" {
		t.Errorf("2001 characters: %v", err)
	}
}
