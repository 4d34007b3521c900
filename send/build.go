package send

import (
	"bytes"
	"errors"
	"fmt"
	netmail "net/mail"
	"strings"
	"time"

	mail "github.com/wneessen/go-mail"

	"followupd/message"
)

// Reminder is one step ready to go.
type Reminder struct {
	FollowUpID uint64
	Step       int
	From       message.Address // account address + display name
	To, Cc     []message.Address
	Subject    string // already rendered
	// InReplyTo is the tracked message's Message-ID (without <>).
	InReplyTo string
	// References are the tracked message's References plus its Message-ID
	// (without <>), oldest first. Build appends InReplyTo when it is not
	// already last.
	References []string
	MessageID  string // our own id (message.NewOwnMessageID), without <>
	Date       time.Time
	Text, HTML string // rendered; HTML optional (multipart/alternative when set)
}

// maxReferences caps the References header. Long threads keep the first
// (root) id and the most recent ones, as RFC 5322 §3.6.4 allows trimming and
// common clients do, so the header stays well under server line limits.
const maxReferences = 20

// Build errors.
var (
	ErrNoRecipient = errors.New("send: reminder has no recipient")
	ErrNoSender    = errors.New("send: reminder has no sender address")
	ErrNoBody      = errors.New("send: reminder has no text body")
)

// Build returns the RFC 5322 bytes of the reminder (CRLF line endings): the
// bytes Submit sends and the daemon APPENDs to Sent or Drafts.
func Build(r *Reminder) ([]byte, error) {
	if r == nil {
		return nil, errors.New("send: nil reminder")
	}
	if r.From.Addr == "" {
		return nil, ErrNoSender
	}
	if len(r.To)+len(r.Cc) == 0 {
		return nil, ErrNoRecipient
	}
	if strings.TrimSpace(r.Text) == "" {
		return nil, ErrNoBody
	}
	if err := checkMsgID(r.MessageID); err != nil {
		return nil, fmt.Errorf("send: reminder Message-ID: %w", err)
	}
	if err := checkMsgID(r.InReplyTo); err != nil {
		return nil, fmt.Errorf("send: reminder In-Reply-To: %w", err)
	}
	if r.Date.IsZero() {
		return nil, errors.New("send: reminder has no date")
	}

	m, err := newMsg(r.From, r.To, r.Cc, r.Subject, r.MessageID, r.Date)
	if err != nil {
		return nil, err
	}
	m.SetGenHeader(mail.HeaderInReplyTo, "<"+r.InReplyTo+">")
	m.SetGenHeader(mail.HeaderReferences, formatReferences(r.References, r.InReplyTo))
	m.SetGenHeader(mail.Header(message.OwnHeader), fmt.Sprintf("id=%d; step=%d", r.FollowUpID, r.Step))
	return finishMsg(m, r.Text, r.HTML, "reminder "+r.MessageID)
}

// newMsg starts a go-mail message with the envelope headers every message
// followupd writes shares: From (display name encoded), To, Cc, a one-line
// Subject, our Message-ID and Date. UTF-8, quoted-printable, no User-Agent.
func newMsg(from message.Address, to, cc []message.Address, subject, msgID string, date time.Time) (*mail.Msg, error) {
	m := mail.NewMsg(mail.WithNoDefaultUserAgent())
	fa, err := mailAddress(from)
	if err != nil {
		return nil, fmt.Errorf("send: From: %w", err)
	}
	m.FromMailAddress(fa)
	for _, a := range to {
		ma, err := mailAddress(a)
		if err != nil {
			return nil, fmt.Errorf("send: To: %w", err)
		}
		m.AddToMailAddress(ma)
	}
	for _, a := range cc {
		ma, err := mailAddress(a)
		if err != nil {
			return nil, fmt.Errorf("send: Cc: %w", err)
		}
		m.AddCcMailAddress(ma)
	}
	m.Subject(oneLine(subject))
	m.SetMessageIDWithValue(msgID)
	m.SetDateWithValue(date)
	return m, nil
}

// finishMsg adds the text (and optional HTML alternative) body and writes m.
func finishMsg(m *mail.Msg, text, html, what string) ([]byte, error) {
	m.SetBodyString(mail.TypeTextPlain, text)
	if strings.TrimSpace(html) != "" {
		m.AddAlternativeString(mail.TypeTextHTML, html)
	}
	var buf bytes.Buffer
	if _, err := m.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("send: writing %s: %w", what, err)
	}
	return buf.Bytes(), nil
}

// checkMsgID accepts an id-left@id-right without brackets, spaces or
// control characters (RFC 5322 §3.6.4 msg-id, leniently).
func checkMsgID(id string) error {
	if id == "" {
		return errors.New("empty")
	}
	if len(id) > 900 {
		return fmt.Errorf("%d bytes long", len(id))
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c <= ' ' || c == 0x7f || c == '<' || c == '>' {
			return fmt.Errorf("%q has a forbidden character", id)
		}
	}
	if !strings.Contains(id, "@") {
		return fmt.Errorf("%q has no @", id)
	}
	return nil
}

// formatReferences returns "<a> <b> ... <inReplyTo>": valid ids only, no
// duplicates, inReplyTo last, trimmed to maxReferences keeping the root.
func formatReferences(refs []string, inReplyTo string) string {
	seen := make(map[string]bool, len(refs)+1)
	ids := make([]string, 0, len(refs)+1)
	for _, id := range refs {
		id = strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(id), "<"), ">"))
		// A malformed id from the tracked message must not cost the
		// reminder; it is dropped rather than written into our header.
		if checkMsgID(id) != nil || seen[id] || id == inReplyTo {
			continue
		}
		seen[id] = true
		ids = append(ids, id)
	}
	ids = append(ids, inReplyTo)
	if len(ids) > maxReferences {
		ids = append(ids[:1], ids[len(ids)-(maxReferences-1):]...)
	}
	for i, id := range ids {
		ids[i] = "<" + id + ">"
	}
	return strings.Join(ids, " ")
}

// mailAddress checks a.Addr and returns it with its display name.
func mailAddress(a message.Address) (*netmail.Address, error) {
	p, err := netmail.ParseAddress(a.Addr)
	if err != nil {
		return nil, fmt.Errorf("address %q: %w", a.Addr, err)
	}
	return &netmail.Address{Name: oneLine(a.Name), Address: p.Address}, nil
}

// oneLine folds CR, LF and tabs into single spaces so no rendered value can
// start a new header.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n\t") {
		return strings.TrimSpace(s)
	}
	return strings.Join(strings.Fields(s), " ")
}
