// Package metrics exposes followupd's Prometheus metrics. The registry is
// owned by the daemon (New), never the global default one, so tests and two
// daemons in one process do not share counters.
//
// Two kinds of values:
//
//   - Counters and histograms the daemon updates as decisions happen
//     (Event for every daemon event, Indexed for stored messages, Answer
//     for answer latency, IdleLag for the watcher's delay).
//   - Gauges read at scrape time from a Source (connection state and
//     reconnects per folder, follow-ups by state), so they are never stale
//     and cost nothing between scrapes.
//
// Every family is prefixed followupd_; label names are fixed: account,
// mailbox, role, state, kind, since.
package metrics
