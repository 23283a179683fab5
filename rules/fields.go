package rules

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"unicode/utf8"

	"github.com/theory/jsonpath"
)

// Caps keep hostile or runaway senders from pushing enormous values into
// storage and the UI.
const (
	maxSubjectRunes = 500
	maxShortRunes   = 1000 // SourceID, SourceName, URL, Severity
	maxDetailsBytes = 65536
)

// severityWords are checked in order, so "critical-high" reads as critical.
var severityWords = []string{"critical", "high", "medium", "low", "info"}

func (p *Program) mapFields(root any) Fields {
	var v [6]string
	for i, paths := range p.mapping {
		v[i] = firstValue(paths, root)
	}
	f := Fields{
		SourceID:   capRunes(v[0], maxShortRunes),
		SourceName: capRunes(v[1], maxShortRunes),
		Subject:    capRunes(v[2], maxSubjectRunes),
		Severity:   capRunes(normalizeSeverity(v[3]), maxShortRunes),
		URL:        capRunes(v[4], maxShortRunes),
		Details:    capBytes(v[5], maxDetailsBytes),
	}
	if f.SourceID == "" {
		f.SourceID = fallbackSourceID(f.SourceName, f.Subject, f.URL)
	}
	return f
}

// firstValue returns the first node of the first expression whose first
// node is non-empty after trimming.
func firstValue(paths []*jsonpath.Path, root any) string {
	for _, p := range paths {
		nodes := selectNodes(p, root)
		if len(nodes) == 0 {
			continue
		}
		if s := strings.TrimSpace(stringify(nodes[0])); s != "" {
			return s
		}
	}
	return ""
}

// normalizeSeverity folds the many spellings senders use ("HIGH",
// "event_finding_high", "Information") onto a small vocabulary, so rules and
// the UI can compare severities without knowing each sender.
func normalizeSeverity(s string) string {
	s = toLower(s)
	for _, w := range severityWords {
		if strings.Contains(s, w) {
			return w
		}
	}
	return s
}

// fallbackSourceID gives messages without an identifier a stable dedup key,
// so repeats of the same alert still land on one record.
func fallbackSourceID(name, subject, url string) string {
	if name == "" && subject == "" && url == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(name + "\x00" + subject + "\x00" + url))
	return "sha256:" + hex.EncodeToString(sum[:16])
}

// fieldValues lists f in fieldNames order for Field conditions.
func fieldValues(f *Fields) []string {
	return []string{f.SourceID, f.SourceName, f.Subject, f.Severity, f.URL, f.Details}
}

func capRunes(s string, n int) string {
	if len(s) <= n { // byte length bounds rune count
		return s
	}
	i, count := 0, 0
	for i < len(s) && count < n {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
		count++
	}
	return strings.TrimSpace(s[:i])
}

func capBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	// Step back to the start of a rune so the result stays valid UTF-8.
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return strings.TrimSpace(s[:i])
}
