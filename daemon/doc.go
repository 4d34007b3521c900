// Package daemon wires followupd's stages into one running process:
//
//	imapwatch ──records──▶ daemon.ingest ──▶ store ◀── classify (verdicts)
//	                                           │
//	              schedule (wheel) ◀── due ────┘
//	                  │ fire
//	                  ▼
//	         per-account sender ──▶ send (SMTP, APPEND to Sent)
//
// It is the only package that knows all five stages; each stage hands data
// on through a small interface it defines (imapwatch.Sink) or plain values.
// `followupd run`, `followupd demo` and the end-to-end tests all use it, so
// the demo runs exactly the daemon's code.
//
// Decisions, and the invariant each one keeps (numbers from DESIGN.md):
//
//   - A message is processed once: ingest skips a Message-ID the store
//     already holds, and every decision is a pure function of the message and
//     the follow-up (due times count from the message's own Date), so a batch
//     redelivered after a crash re-applies the same decisions (6).
//   - A sent message is tracked only when classify says so, it is not our own
//     reminder (3), it is not older than lookback, and no answer to it is
//     already in the store: incoming verdicts are kept (store.Incoming) so an
//     answer synced before its offer still counts. A message first seen as a
//     copy in an INBOX (Cc to self, the opt-in plus address) is still judged
//     when its Sent copy appears.
//   - Reminders go only to the tracked message's To (and Cc when the rule
//     includes it), minus the sender's own addresses (plus-variants too) and
//     program addresses (noreply@, mailer-daemon@): a message left with no
//     To to remind is not tracked. Our reminders are never tracked, and an
//     auto-reply is never an answer nor a reason to send, so no mail loop.
//   - History is stored, not judged (horizon.go): a Sent or incoming message
//     whose Date and INTERNALDATE are both older than min(now − lookback,
//     the oldest follow-up ever tracked) − 7 days can concern no follow-up
//     that exists or can be tracked, so it is stored unparsed (shallow) and
//     never classified; own messages, Drafts and the Stop folder always are.
//   - A copy of a tracked message in a Stop folder stops its follow-up also
//     when it is synced before the Sent copy is tracked (the sighting is
//     remembered and checked when the Sent copy is tracked).
//   - An answer counts from any configured mailbox (a colleague's, sales@);
//     an out-of-office with a return date holds every follow-up to that
//     contact, across rules and senders, through store.SetAway.
//     End-to-end proof of each case of issue 5: reply_test.go.
//   - Before a step is submitted the sender's INBOX is searched on the server
//     for anything citing the thread that the watcher has not processed yet;
//     if there is, the send waits for the watcher (2). The intent is committed
//     before SMTP and a step with an intent is never submitted again (1).
//   - The ledger's "submitting" mark is committed right before DATA's final
//     dot. After a restart a step left in sending without it was never
//     handed to the server and is sent again; with it, it is proven by its
//     own Message-ID in Sent or marked uncertain for a person. The same
//     holds when the server took the whole message but its reply was lost
//     (send.Error.MaybeSent): never resent blindly.
//   - Steps fire only once the account's folders finished their first sync,
//     only on business days inside the send window, paced per account, and a
//     step overdue by more than max_overdue is skipped, not sent late.
//     max_overdue counts from when the daemon last deferred a step it had
//     found eligible (store.FollowUp.Eligible: pacing, an IMAP check that
//     failed, waiting for the watcher), so a server outage while the daemon
//     runs delays a reminder but does not skip it; a daemon that was not
//     running still skips.
//   - Approval mode: a step whose APPEND to Drafts failed, or whose intent
//     survived a restart, is first looked up by its own Message-ID in Drafts
//     and Sent (a lost reply, a crash after the APPEND) before it is drafted
//     again, and earlier attempts' drafts are removed: one draft per step.
//     `followupd approve` deletes the draft first and sends only a draft it
//     removed; a draft already in Sent is the sender's own send.
//   - Reload (SIGHUP) swaps the configuration without a restart: entry
//     points take d.current(), a view with the live configuration, so one
//     decision sees one configuration; unchanged accounts keep their
//     watcher (reload.go). sd_notify states come from the daemon itself
//     (notify.go); Run stops within 10s.
package daemon
