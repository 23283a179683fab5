// Package integrations keeps where alerts come from: the integrations
// (table integrations: a webhook token, a type, a mapping, an optional
// ruleset and escalation policy, a signature secret and a rate limit),
// who their alerts are for (table integration_recipients: users and
// groups), and the rulesets with their ordered rules (tables rulesets,
// rules). It is the only writer of those tables. It validates them,
// creates an integration's ruleset from its type's preset, rotates
// tokens, builds the URL a sender posts to, and writes their audit
// records.
//
// It is configuration only: taking in webhooks, compiling the rules and
// the escalation engine stay in alerting, which reads integrations,
// rulesets and recipients through interfaces of its own and caches the
// compiled routes; the onChange hook of NewStore tells it to drop them.
// It may import db, audit, invalid and rules; it never imports alerting.
package integrations
