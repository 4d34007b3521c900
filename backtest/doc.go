// Package backtest replays the history of the configured mailboxes through
// followupd's own decisions and reports what the daemon would have tracked
// and sent, and how many of those threads were answered anyway (and how
// long after), so rules can be tuned before the daemon is switched on.
//
// Invariants:
//
//   - The mailboxes are never changed: every folder is opened with EXAMINE
//     (imapwatch.FetchSince), only BODY.PEEK is fetched, nothing is stored,
//     appended or expunged, and no SMTP connection is made.
//   - The decisions are the daemon's, not a copy: records go through
//     daemon.Replayer, which runs the watcher sink's ingest and the sender's
//     step code (classify, calendar, send window, away windows, max_overdue,
//     manual follow-ups) in dry-run mode on a simulated clock.
//   - History is replayed in time order (Sent, Stop and INBOX of every
//     account merged by Date); before a message at T is processed, every
//     step due before T fires at its due time, so a step is judged against
//     what had arrived by that moment, never against the whole history.
//   - State lives in a scratch store (store.Open on a temporary file),
//     removed when the backtest ends.
//
// Known differences from a live daemon: flags (\Flagged, the stop keyword)
// are only known as they are now, so a flagged offer stops when it is
// replayed; a message moved out of Sent (not copied) is not seen; pacing
// jitter (max_per_hour) is random.
package backtest
