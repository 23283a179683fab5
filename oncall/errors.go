package oncall

import "fmt"

// FieldError is a validation failure naming the offending input field, e.g.
// "layers[1].shiftLength". Indexes are 0-based, as in the JSON input.
type FieldError struct {
	Field, Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// FieldName lets the API layer tell user errors apart from internal ones
// without importing this package's concrete type.
func (e *FieldError) FieldName() string { return e.Field }

func fieldErr(field, format string, args ...any) *FieldError {
	reason := format
	if len(args) > 0 {
		reason = fmt.Sprintf(format, args...)
	}
	return &FieldError{Field: field, Reason: reason}
}
