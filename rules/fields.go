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

func (p *Program) mapFields(root any, b *budget) Fields {
	var v [6]string
	for i, paths := range p.mapping {
		v[i] = storable(firstValue(paths, root, b))
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

// mappedPath is a compiled mapping expression; many says whether it can
// select more than one node.
type mappedPath struct {
	path *jsonpath.Path
	many bool
}

// firstValue returns the first node of the first expression whose first
// node is non-empty after trimming.
func firstValue(paths []mappedPath, root any, b *budget) string {
	for _, p := range paths {
		node, ok := firstNode(p, root, b)
		if !ok {
			continue
		}
		s := stringify(node)
		if !b.spendText(s) {
			return ""
		}
		if s = strings.TrimSpace(s); s != "" {
			return s
		}
	}
	return ""
}

// firstNode returns the first node p selects in document order: array
// elements by index, object members by name. The order in which a query
// finds its nodes is not the body's, which would otherwise let one body
// map to different dedup keys from one version to the next.
func firstNode(p mappedPath, root any, b *budget) (any, bool) {
	nodes := b.selectAll(p.path.Query(), root, p.many)
	if b.exhausted() || len(nodes) == 0 {
		return nil, false
	}
	if !p.many {
		return nodes[0].value, true
	}
	first, ok := b.firstInDocument(nodes)
	return first.value, ok
}

// storable makes s fit a text column of either database: PostgreSQL
// refuses NUL in text, which would fail the whole message. The decoder
// has already replaced invalid UTF-8 with U+FFFD; NUL gets the same.
func storable(s string) string {
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
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
