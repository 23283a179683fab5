package rules

import (
	"fmt"
	"slices"
	"strings"

	"github.com/klaxonhq/klaxon/invalid"
)

// Deadline is how many days a finding of one severity may stay unfixed.
type Deadline struct {
	Severity string `json:"severity"`
	Days     int    `json:"days"`
}

// Remediation is an integration's deadlines, at most one per severity.
type Remediation []Deadline

// MaxRemediationDays is ten years.
const MaxRemediationDays = 3650

// Validate checks each deadline names a known severity once, with 1 to
// MaxRemediationDays days. Errors are *invalid.Field under "remediation".
func (r Remediation) Validate() error {
	seen := map[string]bool{}
	for i, d := range r {
		at := fmt.Sprintf("remediation[%d]", i)
		if !slices.Contains(severityWords, d.Severity) {
			return invalid.Fieldf(at+".severity", "unknown severity %q (want one of %s)", d.Severity, strings.Join(severityWords, ", "))
		}
		if seen[d.Severity] {
			return invalid.Fieldf(at+".severity", "severity %q has a deadline already", d.Severity)
		}
		seen[d.Severity] = true
		if d.Days < 1 || d.Days > MaxRemediationDays {
			return invalid.Fieldf(at+".days", "must be 1 to %d", MaxRemediationDays)
		}
	}
	return nil
}

// Normalize lower-cases and trims the severities, as mapping does.
func (r Remediation) Normalize() Remediation {
	out := make(Remediation, len(r))
	for i, d := range r {
		out[i] = Deadline{Severity: strings.ToLower(strings.TrimSpace(d.Severity)), Days: d.Days}
	}
	return out
}

// DaysFor is the deadline of a mapped severity in days, 0 for none.
func (r Remediation) DaysFor(severity string) int {
	for _, d := range r {
		if d.Severity == severity {
			return d.Days
		}
	}
	return 0
}

// SeverityRank orders mapped severities: info 1 up to critical 5, and 0
// for any other value, which every known severity outranks.
func SeverityRank(severity string) int {
	if i := slices.Index(severityWords, severity); i >= 0 {
		return len(severityWords) - i
	}
	return 0
}

// SeverityRankSQL is SeverityRank of column as an SQL expression.
func SeverityRankSQL(column string) string {
	var b strings.Builder
	b.WriteString("CASE " + column)
	for _, w := range severityWords {
		fmt.Fprintf(&b, " WHEN '%s' THEN %d", w, SeverityRank(w))
	}
	b.WriteString(" ELSE 0 END")
	return b.String()
}
