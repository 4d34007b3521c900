package store

import (
	"fmt"
	"time"

	"followupd/message"
)

// State is where a follow-up is in its life. See the package doc for the
// transition table; Transition is the only way to move between states.
type State uint8

const (
	StateNone      State = iota // not yet tracked
	StateWaiting                // waiting for step Step to fall due at Due
	StateHeld                   // contact away: nothing sent before HeldUntil
	StateSending                // step Step has an intent in the ledger; SMTP may be under way
	StateDraft                  // approval mode: step Step sits in the sender's Drafts
	StateAnswered               // terminal: someone answered
	StateBounced                // terminal: delivery failed / address gone
	StateStopped                // terminal: flag, Stop folder, CLI cancel
	StateFailed                 // terminal: permanent SMTP error
	StateFinished               // terminal: every step sent, no answer
	StateUncertain              // terminal until a person decides: crash inside SMTP
)

var stateNames = [...]string{"none", "waiting", "held", "sending", "draft", "answered", "bounced", "stopped", "failed", "finished", "uncertain"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", s)
}

// ParseState is the inverse of String.
func ParseState(s string) (State, error) {
	for i, n := range stateNames {
		if n == s {
			return State(i), nil
		}
	}
	return 0, fmt.Errorf("store: unknown state %q", s)
}

// Terminal reports whether no further reminder can be sent in this state.
// Uncertain counts as terminal: only a person (the CLI) moves it on.
func (s State) Terminal() bool { return s >= StateAnswered }

// Pending reports whether the follow-up has a due time in the wheel.
func (s State) Pending() bool { return s == StateWaiting || s == StateHeld }

// Event is what happened to a follow-up.
type Event uint8

const (
	EvTrack     Event = iota + 1 // tracked sent message seen
	EvDue                        // timer fired, intent written: waiting -> sending
	EvSent                       // SMTP 2xx (or proven by own Message-ID in Sent)
	EvTempFail                   // SMTP 4xx / network: stays sending, retried
	EvRetry                      // sending -> waiting: the intent was proven NOT sent (or rolled back before SMTP)
	EvPermFail                   // SMTP 5xx
	EvUncertain                  // restart found an intent without outcome and no proof
	EvDrafted                    // approval mode: draft appended
	EvDraftSent                  // the sender sent the draft
	EvDraftGone                  // the sender deleted the draft: step skipped
	EvAnswer                     // a reply
	EvAway                       // auto-reply with a return date: hold
	EvResume                     // hold ended
	EvBounce                     // bounce / address gone
	EvManual                     // the sender's own follow-up in the thread: due restarts
	EvStop                       // flag, Stop folder, CLI cancel
	EvSkip                       // step skipped (overdue too long): move to next step or finish
	EvSnooze                     // CLI snooze: due moved
	EvResolve                    // CLI decision on an uncertain step: treat as sent
	EvApprove                    // CLI approval of a drafted step: followupd sends it itself
)

var eventNames = map[Event]string{
	EvTrack: "track", EvDue: "due", EvSent: "sent", EvTempFail: "tempfail", EvRetry: "retry",
	EvPermFail: "permfail", EvUncertain: "uncertain", EvDrafted: "drafted", EvDraftSent: "draft-sent",
	EvDraftGone: "draft-gone", EvAnswer: "answer", EvAway: "away", EvResume: "resume",
	EvBounce: "bounce", EvManual: "manual", EvStop: "stop", EvSkip: "skip", EvSnooze: "snooze",
	EvResolve: "resolve", EvApprove: "approve",
}

func (e Event) String() string {
	if n, ok := eventNames[e]; ok {
		return n
	}
	return fmt.Sprintf("event(%d)", e)
}

// transitions lists every legal move. An event maps to a set of possible
// targets because some (EvSent, EvSkip) go to the next step or finish,
// decided by the caller's mutate function setting State.
var transitions = map[State]map[Event][]State{
	StateNone:    {EvTrack: {StateWaiting}},
	StateWaiting: {EvDue: {StateSending}, EvAnswer: {StateAnswered}, EvAway: {StateHeld}, EvBounce: {StateBounced}, EvManual: {StateWaiting}, EvStop: {StateStopped}, EvSkip: {StateWaiting, StateFinished}, EvSnooze: {StateWaiting}, EvPermFail: {StateFailed}},
	StateHeld:    {EvResume: {StateWaiting}, EvAway: {StateHeld}, EvAnswer: {StateAnswered}, EvBounce: {StateBounced}, EvManual: {StateHeld}, EvStop: {StateStopped}, EvSnooze: {StateHeld}},
	StateSending: {EvSent: {StateWaiting, StateFinished}, EvTempFail: {StateSending}, EvRetry: {StateWaiting}, EvPermFail: {StateFailed}, EvUncertain: {StateUncertain}, EvDrafted: {StateDraft}, EvAnswer: {StateAnswered}, EvBounce: {StateBounced}, EvStop: {StateStopped}},
	// EvApprove: the draft is set aside (its ledger entry rolled back) and
	// the step waits again, due now, to go out through the normal send path
	// (send window, pacing, server-side reply check, a fresh intent).
	StateDraft: {EvDraftSent: {StateWaiting, StateFinished}, EvDraftGone: {StateWaiting, StateFinished}, EvApprove: {StateWaiting}, EvAnswer: {StateAnswered}, EvBounce: {StateBounced}, EvStop: {StateStopped}},
	// A reminder can bounce or be answered after the chain finished.
	StateFinished: {EvAnswer: {StateAnswered}, EvBounce: {StateBounced}},
	// EvRetry from uncertain: a person says the step was NOT sent; it waits again.
	StateUncertain: {EvResolve: {StateWaiting, StateFinished}, EvRetry: {StateWaiting}, EvAnswer: {StateAnswered}, EvBounce: {StateBounced}, EvStop: {StateStopped}},
}

// CanTransition reports whether ev may move a follow-up from `from` to `to`.
func CanTransition(from State, ev Event, to State) bool {
	for _, s := range transitions[from][ev] {
		if s == to {
			return true
		}
	}
	return false
}

// Accepts reports whether ev is meaningful in state s at all.
func Accepts(s State, ev Event) bool { return len(transitions[s][ev]) > 0 }

// FollowUp is one tracked sent message and its reminder chain.
type FollowUp struct {
	ID        uint64            `json:"id"`
	Account   string            `json:"account"`
	MessageID string            `json:"message_id"` // the tracked sent message
	Rule      string            `json:"rule"`
	Kind      string            `json:"kind,omitempty"`
	Subject   string            `json:"subject"`
	From      message.Address   `json:"from"`
	To        []message.Address `json:"to"`
	Cc        []message.Address `json:"cc,omitempty"`
	// References of the tracked message (oldest first); a reminder's
	// References are these plus MessageID.
	References []string `json:"references,omitempty"`
	// ThreadIndex is the tracked message's Outlook Thread-Index header, so
	// a reply that lost its threading headers still finds its offer.
	ThreadIndex string            `json:"thread_index,omitempty"`
	SentAt      time.Time         `json:"sent_at"`
	Vars        map[string]string `json:"vars,omitempty"` // named captures of the rule

	State State `json:"state"`
	// Step is the step waiting, in flight, drafted or uncertain (1-based).
	Step int `json:"step"`
	// Due is when Step falls due (Waiting) or HeldUntil ends (Held).
	Due       time.Time `json:"due,omitempty"`
	HeldUntil time.Time `json:"held_until,omitempty"`
	// LastSent is the previous step's send time (SentAt before step 1);
	// step delays count from it.
	LastSent time.Time `json:"last_sent"`
	// SendID is the own Message-ID of the step in flight (Sending, Draft,
	// Uncertain); the ledger holds the same.
	SendID   string `json:"send_id,omitempty"`
	Attempts int    `json:"attempts,omitempty"` // temporary failures of the step in flight
	// Sent lists the own Message-IDs of the reminders sent so far, so a
	// reply to a reminder threads to this follow-up too.
	Sent []string `json:"sent,omitempty"`
	// Outcome explains a terminal state: who answered, the failed
	// address and diagnostic, the SMTP text.
	Outcome    string    `json:"outcome,omitempty"`
	AnsweredAt time.Time `json:"answered_at,omitempty"`
	// Approved is the step a person approved (EvApprove, approval mode):
	// when Step == Approved the step is submitted over SMTP, not drafted.
	Approved int `json:"approved,omitempty"`
	// Eligible, when set, says a running daemon found Step (due at Due)
	// eligible to send and then had to defer it for an operational reason
	// (pacing, the pre-send IMAP check, waiting for the watcher, waiting
	// for the first sync): max_overdue counts from Eligible.Seen instead of
	// Due (see OverdueBase). It is written by MarkEligible, not by a
	// transition, and holds only while Step and Due stay the same:
	// Transition drops it otherwise.
	Eligible *Eligible `json:"eligible,omitempty"`

	History []HistoryEntry `json:"history"`
}

// Eligible is a follow-up's eligibility mark (FollowUp.Eligible).
type Eligible struct {
	Step int       `json:"step"`
	Due  time.Time `json:"due"`
	// Seen is the last time the daemon, running and trying to send the
	// step, moved the point max_overdue counts from.
	Seen time.Time `json:"seen"`
}

// eligibleHolds reports whether f's eligibility mark is for its current
// waiting step and due time.
func eligibleHolds(f *FollowUp) bool {
	e := f.Eligible
	return e != nil && f.State == StateWaiting && e.Step == f.Step && e.Due.Equal(f.Due)
}

// OverdueBase is the time max_overdue counts from: f.Due, or the
// eligibility mark's Seen when one holds for the current step and due.
// An IMAP outage the daemon sat through (deferring the step) does not
// make a step overdue; a daemon that was down does.
func (f *FollowUp) OverdueBase() time.Time {
	if eligibleHolds(f) && f.Eligible.Seen.After(f.Due) {
		return f.Eligible.Seen
	}
	return f.Due
}

// HistoryEntry records one transition and why it happened.
type HistoryEntry struct {
	At     time.Time `json:"at"`
	Event  Event     `json:"event"`
	From   State     `json:"from"`
	To     State     `json:"to"`
	Step   int       `json:"step"`
	Reason string    `json:"reason"`
}

// LedgerState is the outcome recorded for one (follow-up, step) send.
type LedgerState uint8

const (
	LedgerIntent     LedgerState = iota + 1 // written before SMTP
	LedgerSent                              // SMTP accepted (or proven by own copy in Sent)
	LedgerFailed                            // permanent failure
	LedgerUncertain                         // crash inside SMTP, unproven
	LedgerRolledBack                        // proven not sent / abandoned before SMTP
	LedgerDrafted                           // approval mode
	// LedgerSubmitting: the message was handed to the server and only the
	// final "." of DATA remained. An intent without this mark was provably
	// never delivered (a crash before it is retried); with it, the outcome
	// must be proven by the own copy in Sent or the step becomes uncertain.
	LedgerSubmitting
)

var ledgerNames = [...]string{"", "intent", "sent", "failed", "uncertain", "rolled-back", "drafted", "submitting"}

func (l LedgerState) String() string {
	if int(l) < len(ledgerNames) {
		return ledgerNames[l]
	}
	return fmt.Sprintf("ledger(%d)", l)
}

// LedgerEntry is the send ledger's record of one step.
type LedgerEntry struct {
	FollowUp  uint64      `json:"followup"`
	Step      int         `json:"step"`
	MessageID string      `json:"message_id"`
	State     LedgerState `json:"state"`
	Intent    time.Time   `json:"intent"`
	Done      time.Time   `json:"done,omitempty"`
	Detail    string      `json:"detail,omitempty"`
}

// SyncState is what is remembered of one watched folder between syncs.
type SyncState struct {
	UIDValidity   uint32 `json:"uidvalidity"`
	LastUID       uint32 `json:"last_uid"` // highest UID processed
	HighestModSeq uint64 `json:"highest_modseq,omitempty"`
}
