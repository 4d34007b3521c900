package send

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	mail "github.com/wneessen/go-mail"

	"followupd/message"
)

// Message is a message of followupd's own that is not a reminder: the daily
// summary, the approval-mode notice. It is not threaded, and it carries
// message.OwnHeader and an own Message-ID, so when it syncs back (from Sent,
// or from the sender's INBOX when sent to themselves) it is never tracked
// and never counts as an answer (DESIGN invariant 3).
type Message struct {
	From       message.Address
	To, Cc     []message.Address
	Subject    string
	MessageID  string // our own id (message.NewOwnMessageID), without <>
	Date       time.Time
	Text, HTML string // Text required; HTML optional (multipart/alternative)
	// Kind goes into the OwnHeader value ("kind=summary") for people and
	// filters reading the headers.
	Kind string
}

// BuildMessage returns the RFC 5322 bytes of m (CRLF line endings), ready
// for SubmitMessage.
func BuildMessage(m *Message) ([]byte, error) {
	if m == nil {
		return nil, errors.New("send: nil message")
	}
	if m.From.Addr == "" {
		return nil, ErrNoSender
	}
	if len(m.To)+len(m.Cc) == 0 {
		return nil, ErrNoRecipient
	}
	if strings.TrimSpace(m.Text) == "" {
		return nil, ErrNoBody
	}
	if err := checkMsgID(m.MessageID); err != nil {
		return nil, fmt.Errorf("send: message Message-ID: %w", err)
	}
	if m.Date.IsZero() {
		return nil, errors.New("send: message has no date")
	}
	g, err := newMsg(m.From, m.To, m.Cc, m.Subject, m.MessageID, m.Date)
	if err != nil {
		return nil, err
	}
	kind := oneLine(m.Kind)
	if kind == "" {
		kind = "notice"
	}
	g.SetGenHeader(mail.Header(message.OwnHeader), "kind="+kind)
	// RFC 3834 §5: machine-generated; keeps vacation responders quiet.
	g.SetGenHeader(mail.Header("Auto-Submitted"), "auto-generated")
	return finishMsg(g, m.Text, m.HTML, "message "+m.MessageID)
}

// SubmitMessage sends raw (from BuildMessage) to m's To and Cc with envelope
// sender m.From.Addr; outcomes are sorted as for Submit.
func (s *Submitter) SubmitMessage(ctx context.Context, m *Message, raw []byte) error {
	if m == nil {
		return &Error{Permanent: true, Command: CmdCheck, Err: errors.New("send: nil message")}
	}
	// The envelope is all Submit reads of a Reminder.
	return s.Submit(ctx, &Reminder{From: m.From, To: m.To, Cc: m.Cc, MessageID: m.MessageID}, raw)
}
