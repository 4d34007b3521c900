package classify

import (
	"errors"
	"fmt"
	"net/textproto"
	"regexp"
	"sort"
	"strings"
	"time"

	"followupd/config"
	"followupd/message"
)

// Classifier holds the compiled rules of one configuration. It is
// read-only after New and safe for concurrent use.
type Classifier struct {
	rules     []rule
	bodyRules bool            // some rule has body criteria
	public    map[string]bool // public mail domains (built-in + config)
}

// rule is a config.Rule prepared for matching.
type rule struct {
	name, kind string
	subject    []*regexp.Regexp
	body       []*regexp.Regexp
	globs      []string // lower-cased
	types      []string // lower-cased, may hold wildcards ("image/*")
	include    []string // lower-cased addresses or "@domain"
	exclude    []string
	headers    []headerCrit // sorted by key
}

type headerCrit struct {
	key string // canonical
	re  *regexp.Regexp
}

// ErrNoConfig is returned by New for a nil configuration.
var ErrNoConfig = errors.New("classify: no configuration")

// New compiles cfg's rules. cfg has been checked by package config; New
// still refuses a rule whose regular expression is missing, so a
// hand-built config cannot make a rule that matches everything.
func New(cfg *config.Config) (*Classifier, error) {
	if cfg == nil {
		return nil, ErrNoConfig
	}
	c := &Classifier{public: make(map[string]bool)}
	for _, d := range publicDomains {
		c.public[d] = true
	}
	for _, d := range cfg.PublicDomains {
		c.public[strings.ToLower(strings.TrimPrefix(strings.TrimSpace(d), "@"))] = true
	}
	var errs []error
	for i := range cfg.Rules {
		cr := &cfg.Rules[i]
		r := rule{name: cr.Name, kind: cr.Kind}
		if r.kind == "" {
			r.kind = cr.Name
		}
		regexps := func(what string, list []config.Regexp) []*regexp.Regexp {
			var out []*regexp.Regexp
			for j, re := range list {
				if re.Regexp == nil {
					errs = append(errs, fmt.Errorf("classify: rule %q: match.%s[%d]: empty regular expression", cr.Name, what, j))
					continue
				}
				out = append(out, re.Regexp)
			}
			return out
		}
		m := &cr.Match
		r.subject = regexps("subject", m.Subject)
		r.body = regexps("body", m.Body)
		for _, g := range m.Attachment {
			r.globs = append(r.globs, strings.ToLower(g))
		}
		for _, t := range m.AttachmentType {
			r.types = append(r.types, strings.ToLower(strings.TrimSpace(t)))
		}
		for _, a := range m.RecipientInclude {
			r.include = append(r.include, strings.ToLower(strings.TrimSpace(a)))
		}
		for _, a := range m.RecipientExclude {
			r.exclude = append(r.exclude, strings.ToLower(strings.TrimSpace(a)))
		}
		for k, re := range m.Header {
			if re.Regexp == nil {
				errs = append(errs, fmt.Errorf("classify: rule %q: match.header.%s: empty regular expression", cr.Name, k))
				continue
			}
			r.headers = append(r.headers, headerCrit{key: canonicalKey(k), re: re.Regexp})
		}
		sort.Slice(r.headers, func(a, b int) bool { return r.headers[a].key < r.headers[b].key })
		if len(r.body) > 0 {
			c.bodyRules = true
		}
		c.rules = append(c.rules, r)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// NeedsBody reports whether the whole message must be read before
// classifying rec (whose header fields alone were fetched). A Sent message
// needs it when some rule has body criteria. An incoming message needs it
// when its headers suggest a bounce (to read the DSN and the returned
// message's id) or an auto-reply (to read the return date).
func (c *Classifier) NeedsBody(rec *message.Record) bool {
	if rec == nil || rec.HasBody {
		return false
	}
	switch rec.Role {
	case message.RoleSent:
		return c.bodyRules && !rec.IsOwn()
	case message.RoleDrafts:
		return false
	}
	if rec.IsOwn() {
		return false
	}
	if strings.HasPrefix(rec.ContentType, "multipart/report") || daemonSender(rec) || nullReturnPath(rec) ||
		rec.Headers["X-Failed-Recipients"] != "" || bounceSubject(rec.Subject) != "" {
		return true
	}
	_, auto := autoReplySignal(rec)
	return auto
}

// Kind is what an incoming message is.
type Kind uint8

const (
	KindOther     Kind = iota // automated, not about delivery or absence: receipts, delays, reports
	KindReply                 // a person's message: may answer a tracked one (see Answers)
	KindAutoReply             // out-of-office, vacation, "we received your message"
	KindBounce                // delivery failed, or the address is gone
)

func (k Kind) String() string {
	switch k {
	case KindReply:
		return "reply"
	case KindAutoReply:
		return "autoreply"
	case KindBounce:
		return "bounce"
	}
	return "other"
}

// Verdict is the classification of an incoming message.
type Verdict struct {
	Kind    Kind
	Reasons []string
	// FailedRecipients are the addresses a bounce reports as failed
	// (lower-case); for AddressGone, the auto-replying address.
	FailedRecipients []string
	Diagnostic       string    // the server's words for the first failure
	ReturnDate       time.Time // from an auto-reply's text; zero if none
	// AddressGone: an auto-reply says the mailbox is no longer in use.
	// Kind is then KindBounce.
	AddressGone bool
}

// Incoming classifies a message that arrived in a watched mailbox.
func (c *Classifier) Incoming(rec *message.Record) Verdict {
	if rec == nil {
		return Verdict{Kind: KindOther, Reasons: []string{"no message"}}
	}
	if rec.IsOwn() {
		return Verdict{Kind: KindOther, Reasons: []string{"our own message (" + ownWhy(rec) + ")"}}
	}
	if v, ok := reportKind(rec); ok {
		return v
	}
	if v, ok := bounce(rec); ok {
		return v
	}
	reasons, auto := autoReplySignal(rec)
	if gone, why := addressGone(rec, auto); gone {
		v := Verdict{Kind: KindBounce, AddressGone: true, Reasons: append(reasons, why)}
		for _, a := range rec.From {
			v.FailedRecipients = append(v.FailedRecipients, a.Addr)
		}
		return v
	}
	if auto {
		v := Verdict{Kind: KindAutoReply, Reasons: reasons}
		if d, why := returnDate(rec); !d.IsZero() {
			v.ReturnDate = d
			v.Reasons = append(v.Reasons, why)
		}
		return v
	}
	if why := receiptSubject(rec.Subject); why != "" {
		return Verdict{Kind: KindOther, Reasons: []string{why}}
	}
	return Verdict{Kind: KindReply, Reasons: []string{"no bounce or auto-reply signal: a person's message"}}
}

func ownWhy(rec *message.Record) string {
	if strings.HasPrefix(rec.MessageID, message.OwnPrefix) {
		return "Message-ID " + rec.MessageID
	}
	return message.OwnHeader + " header"
}

func canonicalKey(k string) string {
	return textproto.CanonicalMIMEHeaderKey(strings.TrimSpace(k))
}
