// Package store is the only owner of followupd's state: one bbolt file
// (followupd.db in the state directory) holding the messages seen, the
// follow-ups with their history, and the send ledger. Every state change is
// one bbolt transaction; the schedule's timer wheel and everything else in
// memory is a cache rebuilt from here.
//
// # Opening
//
// Open takes the file lock with a timeout (default 1s), so a second
// followupd fails fast with ErrLocked ("store: PATH is locked by another
// process (is followupd already running?)"). A file that is unreadable, not
// a bbolt file, corrupt (bbolt may panic on those; Open recovers) or a bbolt
// file of another program gives an error naming the path and is never
// written to. The schema version lives in bucket "meta"; a newer version is
// refused (ErrNewerSchema).
//
// # Buckets and keys (all in keys.go)
//
//	meta       "schema" -> uint32 BE schema version
//	kv         Meta/PutMeta: small values, e.g. "indexed/<account>"; "oldest_sent" (oldest.go)
//	msg        Message-ID -> 0xff | seq u64, a reference into msgrec (msgref.go); schemas 1 and 2 stored the
//	           record inline (JSON, binary), still read
//	msgrec     seq u64 -> message.Record, binary (msgcodec.go), append-only; Body is never stored
//	msgloc     len16|account|len16|mailbox|uidvalidity u32|uid u32 -> Message-ID
//	sync       len16|account|len16|mailbox -> JSON SyncState
//	fu         id u64 -> JSON FollowUp; the bucket's sequence assigns ids
//	fu_msgid   tracked Message-ID -> id u64 (unique: Track is idempotent)
//	fu_thread  own reminder Message-ID -> id u64 (every SendID, Sent and ledger id; only grows)
//	fu_due     due time (12 bytes) | id u64 -> empty, Waiting and Held only
//	fu_state   state u8 | id u64 -> empty
//	fu_rcpt    lower-case address | 0x00 | id u64 -> empty (To and Cc)
//	fu_domain  lower-case domain  | 0x00 | id u64 -> empty
//	ledger     id u64 | step u32 | attempt u32 -> JSON LedgerEntry
//	away       lower-case address -> JSON {until, reason}
//	in         incoming Message-ID -> JSON Incoming (classify's verdict)
//	in_thread  cited Message-ID | 0x00 | incoming Message-ID -> empty
//	in_from    sender address | 0x00 | date (12 bytes) | incoming Message-ID -> empty
//
// Integers are big-endian and times are 8 bytes of Unix seconds with the
// sign bit flipped plus 4 bytes of nanoseconds, UTC, so byte order is time
// order: PendingDue is one cursor walk and Seek finds the next due step.
//
// # Follow-up states
//
// Transition is the only way to change a follow-up; the table is
// transitions in followup.go (CanTransition). mutate sets the new state;
// where an event has two targets the caller chooses (next step or finish).
//
//	event                     from                        to
//	track                     none                        waiting(1)
//	due (timer, intent)       waiting(k)                  sending(k)
//	answer                    any non-terminal, finished  answered
//	away (return date)        waiting, held               held(until)
//	resume                    held                        waiting
//	bounce                    any non-terminal, finished  bounced
//	manual (own follow-up)    waiting, held               same (due restarts)
//	stop                      any non-terminal            stopped
//	skip (overdue)            waiting(k)                  waiting(k+1) | finished
//	snooze                    waiting, held               same (due moved)
//	sent (2xx)                sending(k)                  waiting(k+1) | finished
//	tempfail (4xx)            sending(k)                  sending(k)
//	retry (proven unsent)     sending(k), uncertain(k)    waiting(k)
//	permfail (5xx, render)    sending(k), waiting(k)      failed
//	uncertain (restart)       sending(k)                  uncertain(k)
//	drafted (approval)        sending(k)                  draft(k)
//	draft-sent                draft(k)                    waiting(k+1) | finished
//	draft-gone                draft(k)                    waiting(k+1) | finished
//	resolve (person decides)  uncertain(k)                waiting(k+1) | finished
//	approve (CLI approval)    draft(k)                    waiting(k), due now, Approved = k
//
// The send ledger is written in the same transaction, by event, for the
// step the event concerns (the step before the transition; for due, the
// step being sent): due adds an intent (Message-ID = SendID) before any
// SMTP; sent, draft-sent and resolve mark it sent (and add its id to
// FollowUp.Sent); permfail from sending marks it failed; uncertain marks it
// uncertain; retry, draft-gone and approve mark it rolled back (approve: the
// draft is set aside and the step goes out with a fresh intent); drafted marks it
// drafted; tempfail keeps the intent and records the reason. Each event
// requires the entry it moves to be in the matching state, else the
// transition fails. HistoryEntry.Step is that same step.
//
// One write changes a follow-up without a transition: MarkEligible sets
// FollowUp.Eligible when the daemon found a waiting step eligible to send
// and deferred it for an operational reason (pacing, the pre-send IMAP
// check, waiting for the watcher or the first sync). max_overdue then
// counts from the mark's Seen rather than Due (OverdueBase), so an IMAP
// outage the daemon sits through is not turned into a skip, while a
// daemon that was down still skips. It changes no state and writes no
// history entry (a step retried through a three-day outage adds nothing);
// every transition that changes the step, due time or state drops it.
//
// # Invariants (Check verifies them all; storetest runs it in every test cleanup)
//
//  1. A step is submitted at most once: due for a step whose last ledger
//     entry is anything but rolled-back fails with ErrStepSubmitted, and a
//     send id is never reused within a follow-up.
//  2. Every transition is one transaction that appends a history entry
//     with its reason; the last history entry's To is the current state.
//  3. Own messages are never tracked: Track refuses ids with
//     message.OwnPrefix and ids in fu_thread (ErrOwnMessage).
//  4. fu_due holds exactly the Waiting and Held follow-ups, each under its
//     current Due, so reopening yields the same due set (DESIGN invariant 5).
//  5. A pending follow-up has a Due; one in flight (sending, draft,
//     uncertain) has a SendID matching its step's last ledger entry; any
//     other state has no SendID (Transition clears it).
//  6. Every own id a follow-up ever used maps to it in fu_thread, so an
//     answer to any reminder threads to its follow-up.
//  7. A message is stored once, by Message-ID; a second sighting only adds
//     its location and (from Sent, or the same folder) its flags.
//  8. An eligibility mark belongs to a waiting follow-up's current step and
//     due time.
package store
