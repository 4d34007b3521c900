// Package imapwatch owns followupd's IMAP connections and turns what the
// server says into *message.Record values for a Sink. It decides nothing:
// classification, tracking and reminders live downstream.
//
// A Watcher runs one goroutine, and one connection, per watched folder
// (INBOX, Sent, and the account's Stop folder when configured). Each
// connection goes through the same cycle:
//
//	dial + login → SELECT (CONDSTORE when offered) → resync → IDLE ⇄ fetch new
//	       ▲                                                        │
//	       └──────────── backoff (exponential, jittered) ◀── error ─┘
//
// Invariants:
//
//   - Nothing is lost across a disconnect. State (UIDVALIDITY, LastUID,
//     HIGHESTMODSEQ) is saved through the Sink only after the Sink accepted a
//     batch, so a batch the Sink refused, or one cut short by a dropped
//     connection, is fetched again after the reconnect.
//   - The Sink may see a message twice (redelivery, UIDVALIDITY change, the
//     same message in two folders); its identity is the Message-ID, never the
//     UID, so the Sink's work is idempotent.
//   - Within a folder, HandleMessages batches arrive in ascending UID order,
//     and LastUID only grows while UIDVALIDITY stays the same.
//   - One goroutine owns each connection. imapclient takes no context, so the
//     owner closes the client when ctx ends; the UnilateralDataHandler only
//     records what arrived and kicks a capacity-1 channel, because it runs on
//     (or blocks) the client's reader goroutine.
//   - The password is never logged: the IMAP trace (Options.DebugWriter) is
//     muted while LOGIN is on the wire.
//
// Fetching is streamed in chunks of Options.BatchSize UIDs (header fields,
// flags, INTERNALDATE, size and BODYSTRUCTURE), never the whole mailbox at
// once, and pipelined: while the Sink handles one batch (on a goroutine
// per sync, fed through a channel of one batch), the connection's owner
// fetches the next, so a sync costs max(fetch, handle) per batch rather
// than their sum. LastUID still moves only after the Sink accepted a batch. Flag changes matter for Sent and Stop folders only: they arrive as
// unilateral FETCH FLAGS while idling and, after a reconnect, through
// CHANGEDSINCE when the server has CONDSTORE (RFC 7162 §3.1.4) or else a
// UID FETCH 1:LastUID (FLAGS) of the Sent folder.
package imapwatch
