// Package classify decides what a message is: a sent message is tracked by a
// rule or not (Sent), an incoming one is a reply, an auto-reply, a bounce or
// something else (Incoming), and an incoming message answers a tracked one
// or not (Answers, ManualFollowUp).
//
// It is pure: a verdict is a function of the message.Record and the
// config. No I/O, no clock ("now" is never read; dates are taken from the
// record), no logging. The daemon, `followupd explain` and `backtest` call
// the same functions, so what explain prints is what the daemon did.
// Every verdict carries human-readable Reasons.
//
// Invariants (each has a test):
//   - Our own messages (message.Record.IsOwn) are never tracked and never
//     answer anything (DESIGN invariant 3).
//   - A message with no To recipient, or an auto-submitted one (RFC 3834
//     §5), is never tracked.
//   - A message in Sent or Drafts never answers a tracked message.
//   - When unsure whether an incoming message is automatic, it is a reply:
//     taking a person's answer for an auto-reply sends a reminder after a
//     reply, the worst mistake followupd can make; the opposite only
//     skips a reminder. So a subject or header marker is needed for an
//     auto-reply, and mailing-list headers (Precedence: list, List-Id)
//     alone never make one.
//   - A delivery report whose recipients were all delayed (RFC 3464
//     Action: delayed), delivered, relayed or expanded is not a bounce;
//     read receipts (RFC 8098) and abuse reports (RFC 5965) are KindOther.
//   - A program's address (AutomaticAddress: noreply@, no-reply@,
//     mailer-daemon@, bounces@ ...) is never reminded: a message whose
//     every To recipient is one is not tracked, and the daemon drops such
//     addresses (and the sender's own, plus-variants included) from a
//     follow-up's recipients.
//   - An Outlook reply that lost In-Reply-To and References still answers
//     by its Thread-Index (same 22-byte conversation root as the offer's)
//     or by a Thread-Topic equal to the offer's subject.
//
// CORPUS.md (written by TestCorpusDoc with -update) shows how Incoming
// labels the shared corpus of real-world mail, every miss explained.
//
// Recipient criteria of a rule: recipient_include holds when any To or
// Cc address matches; recipient_exclude fails the rule when any To address
// matches (a colleague in Cc does not stop tracking an offer to a client).
// An entry is an address, "@domain" or "domain"; a domain entry also
// matches its subdomains.
package classify
