// Package message turns raw mail (IMAP header fields, BODYSTRUCTURE, or a
// whole .eml) into Record, the plain value every later stage passes along.
// It decides nothing: classification lives in package classify.
//
// Identity: a Record is known by its Message-ID (angle brackets stripped,
// as written). When a message has none, SyntheticID derives a stable one
// from the headers, so the same message seen twice — after a reconnect, a
// UIDVALIDITY change, or in two watched mailboxes — is still one message.
package message

import "time"

// Role says what a watched folder is for; it decides how a message found
// there is treated (Sent: candidate for tracking; Inbox: candidate answer).
type Role uint8

const (
	RoleOther Role = iota
	RoleInbox
	RoleSent
	RoleDrafts
	RoleStop // the "I handle this one" folder; a tracked message moved here stops
)

func (r Role) String() string {
	switch r {
	case RoleInbox:
		return "inbox"
	case RoleSent:
		return "sent"
	case RoleDrafts:
		return "drafts"
	case RoleStop:
		return "stop"
	}
	return "other"
}

// Address is one mailbox. Addr is lower-cased; Name is decoded.
type Address struct {
	Name string `json:"name,omitempty"`
	Addr string `json:"addr"`
}

// Domain returns the part after '@', lower-cased, or "".
func (a Address) Domain() string {
	for i := len(a.Addr) - 1; i >= 0; i-- {
		if a.Addr[i] == '@' {
			return a.Addr[i+1:]
		}
	}
	return ""
}

// Attachment is one named or non-text part, from BODYSTRUCTURE or a parse.
type Attachment struct {
	Filename    string `json:"filename,omitempty"` // decoded
	ContentType string `json:"content_type"`       // lower-case type/subtype
}

// Record is everything followupd keeps about one message. Header names in
// Headers are canonical (textproto.CanonicalMIMEHeaderKey) and hold only the
// fields classification looks at (see HeaderFields); values are decoded.
type Record struct {
	// Where it was seen. Account is the configured account name.
	Account     string `json:"account,omitempty"`
	Mailbox     string `json:"mailbox,omitempty"`
	Role        Role   `json:"role,omitempty"`
	UIDValidity uint32 `json:"uidvalidity,omitempty"`
	UID         uint32 `json:"uid,omitempty"`

	MessageID   string    `json:"message_id"` // without <>
	SyntheticID bool      `json:"synthetic_id,omitempty"`
	InReplyTo   []string  `json:"in_reply_to,omitempty"` // without <>
	References  []string  `json:"references,omitempty"`  // without <>, oldest first
	From        []Address `json:"from,omitempty"`
	Sender      []Address `json:"sender,omitempty"`
	ReplyTo     []Address `json:"reply_to,omitempty"`
	To          []Address `json:"to,omitempty"`
	Cc          []Address `json:"cc,omitempty"`
	Bcc         []Address `json:"bcc,omitempty"` // only visible in Sent copies
	Subject     string    `json:"subject,omitempty"`
	Date        time.Time `json:"date"`     // Date header, or INTERNALDATE when absent/broken
	Internal    time.Time `json:"internal"` // IMAP INTERNALDATE (arrival), zero for .eml
	Flags       []string  `json:"flags,omitempty"`
	ContentType string    `json:"content_type,omitempty"` // top-level, lower-case, with report-type for multipart/report as "multipart/report; report-type=delivery-status"

	Headers     map[string]string `json:"headers,omitempty"`
	Attachments []Attachment      `json:"attachments,omitempty"`

	// Body is the readable text (text/plain, or HTML reduced to text),
	// decoded to UTF-8 and capped; empty when only headers were fetched.
	Body    string `json:"body,omitempty"`
	HasBody bool   `json:"has_body,omitempty"`
	// Report holds the machine-readable part of a bounce
	// (message/delivery-status) and the headers of the returned message
	// (message/rfc822 or text/rfc822-headers), when the body was read.
	Report *Report `json:"report,omitempty"`

	// Raw is the header block of a shallow record (ParseShallow): only
	// its identity (MessageID, SyntheticID), Date and what the server said
	// of it (location, Internal, Flags, Attachments, ContentType from the
	// structure) are set, the rest waits in Raw until Deepen. Nil in a
	// parsed record.
	Raw []byte `json:"-"`
	// Partial marks a shallow record whose Raw holds only some header
	// fields and which has no structure (imapwatch's light fetch of
	// history): stored as it is, never judged, and Deepen does not make
	// it whole. Not stored.
	Partial bool `json:"-"`
}

// Report is the parsed DSN of a multipart/report (RFC 3464) or the
// returned-message headers found inside a non-standard bounce.
type Report struct {
	Recipients []DSNRecipient `json:"recipients,omitempty"`
	// Original* come from the returned message's headers, to thread the
	// bounce to what it bounces.
	OriginalMessageID string   `json:"original_message_id,omitempty"`
	OriginalTo        []string `json:"original_to,omitempty"`
}

// DSNRecipient is one per-recipient block of message/delivery-status.
type DSNRecipient struct {
	FinalRecipient string `json:"final_recipient"`
	Action         string `json:"action"` // failed, delayed, delivered, relayed, expanded
	Status         string `json:"status"`
	Diagnostic     string `json:"diagnostic,omitempty"`
}

// HeaderFields are the fields imapwatch fetches with BODY.PEEK[HEADER.FIELDS
// (...)] during sync: threading, addressing and every auto-reply signal.
var HeaderFields = []string{
	"Message-ID", "In-Reply-To", "References", "From", "Sender", "Reply-To",
	"To", "Cc", "Bcc", "Subject", "Date", "Content-Type",
	"Auto-Submitted", "Precedence", "X-Autoreply", "X-Autorespond",
	"X-Auto-Response-Suppress", "X-Autogenerated", "X-Failed-Recipients",
	"Return-Path", "Thread-Index", "Thread-Topic", "List-Id", "List-Unsubscribe",
	"X-Followupd", "X-Mailer",
}

// Recipients returns To, Cc and Bcc in that order.
func (r *Record) Recipients() []Address {
	out := make([]Address, 0, len(r.To)+len(r.Cc)+len(r.Bcc))
	out = append(out, r.To...)
	out = append(out, r.Cc...)
	return append(out, r.Bcc...)
}

// ThreadIDs returns the Message-IDs this message points at: In-Reply-To
// first, then References newest first, without duplicates.
func (r *Record) ThreadIDs() []string {
	seen := make(map[string]bool, len(r.InReplyTo)+len(r.References))
	var out []string
	add := func(id string) {
		if id != "" && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	for _, id := range r.InReplyTo {
		add(id)
	}
	for i := len(r.References) - 1; i >= 0; i-- {
		add(r.References[i])
	}
	return out
}

// HasFlag reports whether the IMAP flag or keyword is set (case-insensitive).
func (r *Record) HasFlag(flag string) bool {
	for _, f := range r.Flags {
		if equalFold(f, flag) {
			return true
		}
	}
	return false
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		ca, cb := a[i], b[i]
		if 'A' <= ca && ca <= 'Z' {
			ca += 'a' - 'A'
		}
		if 'A' <= cb && cb <= 'Z' {
			cb += 'a' - 'A'
		}
		if ca != cb {
			return false
		}
	}
	return true
}
