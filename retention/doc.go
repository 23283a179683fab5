// Package retention removes what Klaxon keeps only for a while: inbound
// message bodies, closed alerts with their timelines, delivered events and,
// if asked, audit entries.
//
// Each package prunes its own tables (alerting its messages and alerts,
// events its events, audit its log); this package only decides when, and
// how much at a time. A Pruner runs the kinds one after another in small
// batches, each a short transaction of its own, pausing between batches
// twice as long as the batch took, so that ingest, which shares the
// database (and on SQLite its one writer), never waits behind more than
// one batch.
//
// One instance prunes at a time: a run starts only with the pruning turn,
// a lease on one row of alerting's job table taken the way the engine
// takes its jobs, renewed between batches once a quarter of it has gone
// (each renewal is a commit) and handed back, due again one
// interval later, when the run ends. An instance that dies mid-run only
// delays pruning until its lease runs out. A stop ends a run between two
// batches and hands the turn back at once.
//
// Time is the injected clock: ages are measured from it, and tests move it
// and call RunOnce.
package retention
