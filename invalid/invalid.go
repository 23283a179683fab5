// Package invalid holds the one error type for input that fails
// validation, whichever package checks it, and the checks of names and
// descriptions every configured thing shares. The API shows a *Field to
// the caller as it is, naming the input at fault.
//
// It imports nothing of Klaxon, so every package may use it.
package invalid

import (
	"fmt"
	"strings"
)

// Field is invalid input: Name is the input field at fault, as the API
// spells it ("rules[1].conditions[0].path", indexes 0-based as in the
// JSON input), Reason what is wrong with it.
type Field struct {
	Name, Reason string
}

func (e *Field) Error() string { return e.Name + ": " + e.Reason }

// New reports name as invalid for reason.
func New(name, reason string) *Field { return &Field{Name: name, Reason: reason} }

// Fieldf reports name as invalid, the reason formatted as by fmt.Sprintf.
func Fieldf(name, format string, args ...any) *Field {
	reason := format
	if len(args) > 0 {
		reason = fmt.Sprintf(format, args...)
	}
	return &Field{Name: name, Reason: reason}
}

const (
	maxName        = 200
	maxDescription = 2000
)

// Name checks a name given in field: trimmed, it must be 1 to 200
// characters. It returns the trimmed name.
func Name(field, name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > maxName {
		return "", Fieldf(field, "must be 1 to %d characters", maxName)
	}
	return name, nil
}

// Description checks a free-text description given in field: at most
// 2000 characters.
func Description(field, text string) error {
	if len(text) > maxDescription {
		return Fieldf(field, "must be at most %d characters", maxDescription)
	}
	return nil
}
