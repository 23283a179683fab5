// Package contacts keeps how users are reached: their contact methods
// (tables contact_methods, contact_verifications), the notification rules
// that say which method is used how long after an alert pages them
// (notification_rules), the registration of browsers' push subscriptions,
// and the codes that prove an address or number reaches its owner before
// anything is sent there. It is the only writer of those tables.
//
// Verification codes go out through notifiers.Channels, the same value
// the escalation engine pages through, and contact URLs are checked
// against its outbound guard. The engine itself stays in alerting, which
// reads methods and rules through interfaces of its own. It may import
// db, notifiers and egress; it never imports alerting.
package contacts
