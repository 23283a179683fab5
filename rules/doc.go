// Package rules turns a webhook message body into an alert decision.
//
// It is the pure core of Klaxon's ingestion: no database, network, clock or
// logging, so the same body and configuration always give the same Decision.
//
// # Flow
//
//  1. Parse decodes the body once into a Message: one JSON object, nested
//     at most MaxDepth levels, optionally after a UTF-8 byte order mark;
//     numbers keep their exact text, and with duplicate keys the last wins.
//  2. Compile validates a Mapping and an ordered []Rule and compiles them into
//     a Program, which is immutable and meant to be cached per integration.
//  3. Program.Evaluate maps the alert Fields out of the message and returns
//     the Action of the first rule whose conditions hold. A condition may
//     also test a fact the caller knows about the message's source
//     (Facts: "regression"); when Program.NeedsFacts says so, the caller
//     looks them up (Program.MapFields gives the source) and calls
//     Program.EvaluateWith.
//
// Validation failures are *invalid.Field values naming the offending input,
// such as "mapping.severity[0]" or "rules[1].conditions[0].op".
//
// # Mapping
//
// Each field has a list of RFC 9535 JSONPath expressions tried in order; the
// first expression whose first selected node is non-empty (after trimming
// spaces) supplies the value. When an expression can select several nodes
// (wildcards, descendants, filters), the first is taken in document order:
// array elements by index, object members by name, so one body always maps
// the same way. Nodes become text as follows: strings as is,
// numbers by their JSON text, booleans as "true"/"false", null as empty, and
// objects and arrays as compact JSON.
//
// NUL characters become U+FFFD, as invalid UTF-8 already does in decoding,
// so every mapped value can be stored as text. Mapped values are trimmed
// and capped: Subject at 500 runes; SourceID,
// SourceName, URL and Severity at 1000 runes; Details at 65536 bytes.
//
// Severity is lower-cased and, if it contains "critical", "high", "medium",
// "low" or "info" (checked in that order), becomes that word; so "HIGH",
// "event_finding_high" and "Information" become "high", "high" and "info".
// Other values such as "warning" stay as lower-cased.
//
// SourceID is the deduplication key. When no expression yields one, it falls
// back to "sha256:" plus the first 32 hex digits of
// sha256(SourceName + "\x00" + Subject + "\x00" + URL), unless all three are
// empty.
//
// # Rules
//
// A Condition tests either a mapped Field (after normalization) or the nodes
// a JSONPath selects from the raw body. Comparisons are case-insensitive
// unless CaseSensitive is set. On a path, EXISTS means some selected node is
// not null, and EQUALS, CONTAINS, MATCHES and IN hold if any node's text
// satisfies them; on a field, EXISTS means non-empty. Every NOT_ operator is
// the exact negation of its positive form. MATCHES uses RE2 syntax
// (package regexp) and is not anchored.
//
// A rule with Match ALL (the default) needs every condition; ANY needs at
// least one; a rule without conditions matches every message. Rules are
// tried in order and the first match wins; when none matches the Decision's
// Action is "" and RuleIndex is -1.
//
// A PULSE rule opens and closes nothing: its messages are signs of life
// (a completed scan), which the caller counts per mapped SourceName and
// may expect every so often. It has no Route.
//
// # Cost
//
// The work of mapping and evaluating one message is bounded by MaxSteps,
// counted in the evaluator (nodes visited and selected, filter tests, text
// made and compared), never by a clock: a message over it gets a Decision
// whose Err is ErrTooCostly, the same on every machine and every try. A
// filter runs once per node it filters, so it may only test single values
// (@.status, @[0], $.labels.team); Compile refuses one holding .., *,
// slices, lists or filters of its own.
//
// # Presets
//
// Preset returns the default mapping and rules for DETECTIFY, GENERIC,
// ALERTMANAGER (Prometheus Alertmanager webhook v4), PAGERDUTY (Events
// API v2), OPSGENIE (Alert API requests as the server's drop-in API
// stores them) and EMAIL (mail as the SMTP listener stores it, see
// EmailMessage).
//
// # Generic webhook format
//
// The GENERIC integration accepts a JSON object with these keys, all
// optional:
//
//	{
//	  "summary":   "Disk almost full on db-1",  // the alert title ("title" is also accepted)
//	  "details":   "Only 3% left on /var",      // free text or any JSON value ("description" is also accepted)
//	  "dedup_key": "db-1/disk",                 // identifies the alert across messages
//	  "severity":  "high",                      // critical, high, medium, low, info or any word
//	  "source":    "db-1",                      // the system the alert is about
//	  "url":       "https://grafana.example.com/d/disk",
//	  "action":    "open"                       // "open" (the default), "close" or "ignore"
//	}
//
// A message with action "close" asks to close the alert with the same
// dedup_key, "ignore" asks to leave it alone, and anything else asks to open
// it (or add to it when it is already open). Without dedup_key, the key is derived from source, summary and
// url as described above, so send a dedup_key when the summary varies.
package rules
