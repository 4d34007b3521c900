package control

import (
	"errors"
	"fmt"
	"time"
)

// Version is the protocol version: the path prefix /v1 and the value of
// the Followupd-Control response header.
const Version = 1

const (
	prefix        = "/v1"
	versionHeader = "Followupd-Control"
)

// Status is the daemon's overview.
type Status struct {
	Version  string         `json:"version"` // followupd's version
	Protocol int            `json:"protocol"`
	Started  time.Time      `json:"started"`
	Now      time.Time      `json:"now"` // the daemon's clock
	Ready    bool           `json:"ready"`
	Socket   string         `json:"socket"`
	Metrics  string         `json:"metrics,omitempty"` // metrics address when served
	Accounts []Account      `json:"accounts"`
	Counts   map[string]int `json:"counts"` // follow-ups by state
	NextDue  *Due           `json:"next_due,omitempty"`
}

// Account is one configured mailbox and its watched folders.
type Account struct {
	Name    string   `json:"name"`
	Address string   `json:"address"`
	Mode    string   `json:"mode"`
	Folders []Folder `json:"folders"`
}

// Folder is one watched folder's connection state.
type Folder struct {
	Mailbox    string    `json:"mailbox"`
	Role       string    `json:"role"`
	Connected  bool      `json:"connected"`
	LastSync   time.Time `json:"last_sync,omitzero"`
	Reconnects int       `json:"reconnects"`
	LastError  string    `json:"last_error,omitempty"`
}

// Due names the next follow-up to fall due.
type Due struct {
	ID  uint64    `json:"id"`
	Due time.Time `json:"due"`
}

// FollowUp is one tracked message, as the CLI shows it.
type FollowUp struct {
	ID         uint64    `json:"id"`
	Account    string    `json:"account"`
	MessageID  string    `json:"message_id"`
	Rule       string    `json:"rule"`
	Kind       string    `json:"kind,omitempty"`
	Subject    string    `json:"subject"`
	From       string    `json:"from"`
	To         []string  `json:"to"`
	Cc         []string  `json:"cc,omitempty"`
	SentAt     time.Time `json:"sent_at"`
	State      string    `json:"state"`
	Step       int       `json:"step"`
	Steps      int       `json:"steps"` // steps in the rule's chain (0: rule gone)
	Due        time.Time `json:"due,omitzero"`
	HeldUntil  time.Time `json:"held_until,omitzero"`
	LastSent   time.Time `json:"last_sent,omitzero"`
	SendID     string    `json:"send_id,omitempty"`
	Attempts   int       `json:"attempts,omitempty"`
	Sent       []string  `json:"sent,omitempty"` // own Message-IDs of the reminders sent
	Outcome    string    `json:"outcome,omitempty"`
	AnsweredAt time.Time `json:"answered_at,omitzero"`
	Approved   int       `json:"approved,omitempty"`
}

// HistoryEntry is one transition with its reason.
type HistoryEntry struct {
	At     time.Time `json:"at"`
	Event  string    `json:"event"`
	From   string    `json:"from"`
	To     string    `json:"to"`
	Step   int       `json:"step"`
	Reason string    `json:"reason"`
}

// LedgerEntry is the send ledger's record of one step attempt.
type LedgerEntry struct {
	Step      int       `json:"step"`
	MessageID string    `json:"message_id"`
	State     string    `json:"state"`
	Intent    time.Time `json:"intent"`
	Done      time.Time `json:"done,omitzero"`
	Detail    string    `json:"detail,omitempty"`
}

// Thread is `show`: a follow-up with its whole timeline.
type Thread struct {
	FollowUp FollowUp       `json:"followup"`
	History  []HistoryEntry `json:"history"`
	Ledger   []LedgerEntry  `json:"ledger"`
}

// ListQuery filters `list`; empty fields match anything.
type ListQuery struct {
	Account, State, Rule string
}

// SnoozeRequest moves a waiting or held step later by By ("2 days",
// "3 business days", "36h"), counted from its due time or from now when
// it is already due.
type SnoozeRequest struct {
	By string `json:"by"`
}

// ResolveRequest is a person's decision on an uncertain step.
type ResolveRequest struct {
	Outcome string `json:"outcome"` // "sent" or "unsent"
}

// ApproveRequest approves drafted steps: the listed IDs, or All (optionally
// of one Account).
type ApproveRequest struct {
	IDs     []uint64 `json:"ids,omitempty"`
	All     bool     `json:"all,omitempty"`
	Account string   `json:"account,omitempty"`
}

// ApproveResult lists what was approved and what was not, and why.
type ApproveResult struct {
	Approved []FollowUp `json:"approved"`
	Refused  []Refusal  `json:"refused,omitempty"`
}

// Refusal is one follow-up approve could not act on.
type Refusal struct {
	ID     uint64 `json:"id"`
	Reason string `json:"reason"`
}

// Error codes; each maps to one HTTP status.
const (
	CodeNotFound   = "not_found"
	CodeConflict   = "conflict" // the follow-up's state does not allow it
	CodeBadRequest = "bad_request"
	CodeInternal   = "internal"
)

// Error is a failed request, as carried over the socket.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"error"`
}

func (e *Error) Error() string { return e.Message }

// Errorf builds an *Error with code.
func Errorf(code, format string, args ...any) error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// CodeOf returns err's code: that of an *Error in its chain, else internal.
func CodeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}
