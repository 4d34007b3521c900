package classify

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"followupd/message"
)

// Candidate is a tracked message an incoming one may answer.
type Candidate struct {
	MessageID string   // the tracked message's id
	Sent      []string // our reminders' ids in its thread
	To        []message.Address
	Subject   string
	SentAt    time.Time
	Account   string
	// ThreadIndex is the tracked message's Outlook Thread-Index header
	// (as written; "" when it had none).
	ThreadIndex string
}

// AnswerOptions are the answer rules of the configuration.
type AnswerOptions struct {
	// ColleagueAnswers: a message from anyone at a To recipient's domain
	// with the same subject counts (never for public mail domains).
	ColleagueAnswers bool
	// AnyMessageFromRecipient: any message from a To recipient within
	// Window after SentAt counts, whatever its subject or thread.
	AnyMessageFromRecipient bool
	PublicDomains           []string      // extra public domains
	Window                  time.Duration // tracking window; DefaultWindow when 0
}

// DefaultWindow is the tracking window for answers matched without
// threading headers.
const DefaultWindow = 60 * 24 * time.Hour

// clockSkew tolerates a reply whose Date is slightly before our Date
// (sender clocks are not exact); a message from hours before is not an
// answer (the client's own request we replied to has our subject too).
const clockSkew = 10 * time.Minute

// publicDomains are free mail providers: two people there are not
// colleagues.
var publicDomains = []string{
	"gmail.com", "googlemail.com", "yandex.ru", "ya.ru", "yandex.com", "mail.ru",
	"bk.ru", "list.ru", "inbox.ru", "internet.ru", "rambler.ru", "outlook.com",
	"hotmail.com", "live.com", "yahoo.com", "icloud.com", "me.com", "aol.com",
	"gmx.de", "gmx.net", "web.de", "proton.me", "protonmail.com", "qq.com", "163.com",
}

// Answers reports whether in answers cand, and why. In order:
//  1. in cites cand (or one of our reminders) in In-Reply-To or
//     References: "in-reply-to <id>", whoever sent it;
//  2. in continues cand's Outlook conversation: its Thread-Index has the
//     same 22-byte root as cand's (clients and gateways that drop
//     In-Reply-To and References keep it), whoever sent it;
//  3. in is from a To recipient (or, with ColleagueAnswers, from the same
//     non-public domain) with the same normalised subject, or a
//     Thread-Topic equal to it (Outlook keeps the topic when the subject
//     is edited), dated from SentAt up to Window after;
//  4. with AnyMessageFromRecipient, in is from a To recipient, dated from
//     SentAt up to Window after.
//
// Never for our own messages, nor for a message in Sent or Drafts.
func (c *Classifier) Answers(in *message.Record, cand Candidate, opt AnswerOptions) (bool, string) {
	if in == nil {
		return false, "no message"
	}
	if in.IsOwn() {
		return false, "our own message (" + ownWhy(in) + ")"
	}
	if in.Role == message.RoleSent || in.Role == message.RoleDrafts {
		return false, "a message in " + in.Role.String() + " is not an answer"
	}
	if in.MessageID != "" && in.MessageID == cand.MessageID {
		return false, "the tracked message itself"
	}
	ids := in.ThreadIDs()
	for _, id := range ids {
		if id == cand.MessageID {
			return true, "in-reply-to <" + id + ">"
		}
		for _, s := range cand.Sent {
			if id == s {
				return true, "in-reply-to <" + id + "> (our reminder)"
			}
		}
	}
	if root := threadIndexRoot(cand.ThreadIndex); root != nil {
		if r := threadIndexRoot(in.Headers["Thread-Index"]); r != nil && bytes.Equal(r, root) {
			return true, "Thread-Index continues the offer's Outlook conversation"
		}
	}
	when := in.Date
	if when.IsZero() {
		when = in.Internal
	}
	window := opt.Window
	if window <= 0 {
		window = DefaultWindow
	}
	inWindow := when.IsZero() || (!when.Before(cand.SentAt.Add(-clockSkew)) && !when.After(cand.SentAt.Add(window)))

	from, fromRecipient := c.fromRecipient(in, cand)
	subj := message.NormalizeSubject(in.Subject)
	want := message.NormalizeSubject(cand.Subject)
	if subj != want {
		// QUIRK: Outlook keeps Thread-Topic when a person edits the
		// subject of a reply (testdata reply-thread-topic.ru.eml in daemon).
		if topic := message.NormalizeSubject(in.Headers["Thread-Topic"]); topic != "" && topic == want {
			subj = topic
		}
	}
	if subj != "" && subj == want && inWindow {
		if fromRecipient {
			return true, fmt.Sprintf("same subject %q from recipient %s", subj, from)
		}
		if opt.ColleagueAnswers {
			if who, dom := c.fromColleague(in, cand, opt); who != "" {
				return true, fmt.Sprintf("same subject %q from %s, a colleague at %s", subj, who, dom)
			}
		}
	}
	return c.anyFromRecipient(in, cand, opt)
}

func (c *Classifier) anyFromRecipient(in *message.Record, cand Candidate, opt AnswerOptions) (bool, string) {
	if !opt.AnyMessageFromRecipient {
		return false, "not in the thread, and no subject match from a recipient"
	}
	when := in.Date
	if when.IsZero() {
		when = in.Internal
	}
	window := opt.Window
	if window <= 0 {
		window = DefaultWindow
	}
	if when.IsZero() || when.Before(cand.SentAt) || when.After(cand.SentAt.Add(window)) {
		return false, "not in the thread; a recipient's message outside the tracking window"
	}
	if from, ok := c.fromRecipient(in, cand); ok {
		return true, fmt.Sprintf("message from recipient %s after the offer", from)
	}
	return false, "not in the thread, and not from a recipient"
}

func (c *Classifier) fromRecipient(in *message.Record, cand Candidate) (string, bool) {
	for _, f := range in.From {
		for _, to := range cand.To {
			if f.Addr != "" && strings.EqualFold(f.Addr, to.Addr) {
				return f.Addr, true
			}
		}
	}
	return "", false
}

// PublicDomain reports whether domain is a public mail domain (built-in
// or configured), where two people are not colleagues.
func (c *Classifier) PublicDomain(domain string) bool {
	return c.public[strings.ToLower(strings.TrimPrefix(strings.TrimSpace(domain), "@"))]
}

func (c *Classifier) fromColleague(in *message.Record, cand Candidate, opt AnswerOptions) (who, domain string) {
	extra := make(map[string]bool, len(opt.PublicDomains))
	for _, d := range opt.PublicDomains {
		extra[strings.ToLower(strings.TrimPrefix(strings.TrimSpace(d), "@"))] = true
	}
	for _, f := range in.From {
		fd := f.Domain()
		if fd == "" || c.public[fd] || extra[fd] {
			continue
		}
		for _, to := range cand.To {
			if strings.EqualFold(to.Domain(), fd) {
				return f.Addr, fd
			}
		}
	}
	return "", ""
}

// ManualFollowUp reports whether sent, a message the sender wrote (found
// in Sent), is the sender's own follow-up of cand: it threads to cand or
// to one of our reminders, or it goes to one of cand's To recipients with
// the same normalised subject after cand was sent.
func (c *Classifier) ManualFollowUp(sent *message.Record, cand Candidate) bool {
	if sent == nil || sent.IsOwn() || sent.MessageID == cand.MessageID {
		return false
	}
	for _, id := range sent.ThreadIDs() {
		if id == cand.MessageID {
			return true
		}
		for _, s := range cand.Sent {
			if id == s {
				return true
			}
		}
	}
	subj := message.NormalizeSubject(sent.Subject)
	if subj == "" || subj != message.NormalizeSubject(cand.Subject) {
		return false
	}
	if !sent.Date.IsZero() && !cand.SentAt.IsZero() && !sent.Date.After(cand.SentAt) {
		return false
	}
	for _, a := range sent.To {
		for _, b := range cand.To {
			if strings.EqualFold(a.Addr, b.Addr) {
				return true
			}
		}
	}
	return false
}

// threadIndexRoot returns the conversation part of an Outlook Thread-Index
// header ([MS-OXOMSG] 2.2.1.3, PidTagConversationIndex): base64 of a
// 22-byte header (a FILETIME and a GUID) and 5 bytes per reply. Messages of
// one conversation share the 22 bytes. nil when v is not such a value.
func threadIndexRoot(v string) []byte {
	v = strings.Join(strings.Fields(v), "")
	if v == "" {
		return nil
	}
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		if b, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(v, "=")); err != nil {
			return nil
		}
	}
	if len(b) < 22 || (len(b)-22)%5 != 0 {
		return nil
	}
	return b[:22]
}
