package classify

import (
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"followupd/config"
	"followupd/message"
)

// SentVerdict says whether a sent message is tracked, by which rule.
type SentVerdict struct {
	Tracked bool
	Rule    string // rule name; "opt-in" for a plus-address opt-in without a rule; "" when untracked
	Kind    string // the rule's kind (its name when unset); "opt-in"
	// Vars are the named captures of the rule's regexes (template data).
	Vars map[string]string
	// OptIn is the delay the sender asked for with a plus address
	// (ivan+fu3d@...), overriding the first step's delay; nil otherwise.
	OptIn   *config.Delay
	Reasons []string
}

// OptInRule is SentVerdict.Rule (and Kind) for a message tracked only
// because of a plus-address opt-in.
const OptInRule = "opt-in"

// Sent decides whether rec, seen in acct's Sent folder, is tracked. Rules
// are tried in order; the first whose non-empty criteria all hold wins.
// Independently of rules, a copy to the sender's own plus address
// (local+fu<N>d@domain: N business days, local+fu<N>h@domain: N hours)
// tracks the message.
func (c *Classifier) Sent(acct *config.Account, rec *message.Record) SentVerdict {
	if rec == nil {
		return SentVerdict{Reasons: []string{"no message"}}
	}
	if rec.IsOwn() {
		return SentVerdict{Reasons: []string{"our own reminder (" + ownWhy(rec) + "): never tracked"}}
	}
	if len(rec.To) == 0 {
		return SentVerdict{Reasons: []string{"no To recipient: nobody to remind"}}
	}
	if v := rec.Headers["Auto-Submitted"]; v != "" && !strings.EqualFold(firstToken(v), "no") {
		return SentVerdict{Reasons: []string{fmt.Sprintf("auto-submitted (%s): not written by a person", v)}}
	}
	if auto := automaticTo(rec.To); len(auto) == len(rec.To) {
		return SentVerdict{Reasons: []string{fmt.Sprintf("every To recipient is an automatic address (%s): nobody to remind", strings.Join(auto, ", "))}}
	}
	var optIn *config.Delay
	var optWhy string
	if acct != nil {
		optIn, optWhy = plusOptIn(acct.Address, rec)
	}

	var misses []string
	for i := range c.rules {
		r := &c.rules[i]
		vars := map[string]string{}
		reasons, miss := r.match(rec, vars)
		if miss != "" {
			misses = append(misses, fmt.Sprintf("rule %s: %s", r.name, miss))
			continue
		}
		if len(vars) == 0 {
			vars = nil
		}
		if optIn != nil {
			reasons = append(reasons, optWhy)
		}
		return SentVerdict{Tracked: true, Rule: r.name, Kind: r.kind, Vars: vars, OptIn: optIn, Reasons: reasons}
	}
	if optIn != nil {
		return SentVerdict{Tracked: true, Rule: OptInRule, Kind: OptInRule, OptIn: optIn, Reasons: append([]string{optWhy}, misses...)}
	}
	if len(misses) == 0 {
		misses = []string{"no rules configured"}
	}
	return SentVerdict{Reasons: misses}
}

var reOptIn = regexp.MustCompile(`^fu([0-9]{1,3})([dh])$`)

// plusOptIn finds the sender's own plus address among To, Cc and Bcc.
func plusOptIn(account string, rec *message.Record) (*config.Delay, string) {
	local, domain, ok := strings.Cut(strings.ToLower(strings.TrimSpace(account)), "@")
	if !ok || local == "" {
		return nil, ""
	}
	if i := strings.IndexByte(local, '+'); i >= 0 {
		local = local[:i]
	}
	for _, a := range rec.Recipients() {
		l, d, ok := strings.Cut(a.Addr, "@")
		if !ok || d != domain {
			continue
		}
		base, tag, ok := strings.Cut(l, "+")
		if !ok || base != local {
			continue
		}
		m := reOptIn.FindStringSubmatch(tag)
		if m == nil {
			continue
		}
		n, _ := strconv.Atoi(m[1])
		if n <= 0 {
			continue
		}
		if m[2] == "d" {
			return &config.Delay{BusinessDays: n}, fmt.Sprintf("opt-in: copy to %s asks for a reminder after %d business days", a.Addr, n)
		}
		return &config.Delay{Duration: time.Duration(n) * time.Hour}, fmt.Sprintf("opt-in: copy to %s asks for a reminder after %d hours", a.Addr, n)
	}
	return nil, ""
}

// match checks every non-empty criterion; it returns the reasons when all
// hold, else the first that fails. Named captures are added to vars.
func (r *rule) match(rec *message.Record, vars map[string]string) (reasons []string, miss string) {
	if len(r.subject) > 0 {
		re := firstMatch(r.subject, rec.Subject, vars)
		if re == nil {
			return nil, fmt.Sprintf("subject %q matches none of %s", rec.Subject, list(r.subject))
		}
		reasons = append(reasons, fmt.Sprintf("subject matches %s: /%s/", r.name, re))
	}
	if len(r.body) > 0 {
		if !rec.HasBody {
			return nil, "body criteria, but the body was not read"
		}
		re := firstMatch(r.body, rec.Body, vars)
		if re == nil {
			return nil, fmt.Sprintf("body matches none of %s", list(r.body))
		}
		reasons = append(reasons, fmt.Sprintf("body matches %s: /%s/", r.name, re))
	}
	if len(r.globs) > 0 {
		name, glob := matchAttachment(rec.Attachments, r.globs)
		if name == "" {
			return nil, fmt.Sprintf("no attachment named like %s", strings.Join(r.globs, ", "))
		}
		reasons = append(reasons, fmt.Sprintf("attachment %q matches %s", name, glob))
	}
	if len(r.types) > 0 {
		var hit string
		for _, a := range rec.Attachments {
			for _, t := range r.types {
				if ok, _ := path.Match(t, strings.ToLower(a.ContentType)); ok {
					hit = fmt.Sprintf("attachment %q is %s", a.Filename, a.ContentType)
					break
				}
			}
			if hit != "" {
				break
			}
		}
		if hit == "" {
			return nil, fmt.Sprintf("no attachment of type %s", strings.Join(r.types, ", "))
		}
		reasons = append(reasons, hit)
	}
	if len(r.include) > 0 {
		var hit string
		for _, a := range append(append([]message.Address(nil), rec.To...), rec.Cc...) {
			if e := addrMatches(a.Addr, r.include); e != "" {
				hit = fmt.Sprintf("recipient %s matches %s", a.Addr, e)
				break
			}
		}
		if hit == "" {
			return nil, fmt.Sprintf("no To/Cc recipient in %s", strings.Join(r.include, ", "))
		}
		reasons = append(reasons, hit)
	}
	if len(r.exclude) > 0 {
		for _, a := range rec.To {
			if e := addrMatches(a.Addr, r.exclude); e != "" {
				return nil, fmt.Sprintf("recipient %s is excluded by %s", a.Addr, e)
			}
		}
	}
	for _, h := range r.headers {
		v := headerValue(rec, h.key)
		m := h.re.FindStringSubmatch(v)
		if m == nil {
			return nil, fmt.Sprintf("header %s %q does not match /%s/", h.key, v, h.re)
		}
		addCaptures(h.re, m, vars)
		reasons = append(reasons, fmt.Sprintf("header %s matches /%s/", h.key, h.re))
	}
	return reasons, ""
}

func firstMatch(res []*regexp.Regexp, s string, vars map[string]string) *regexp.Regexp {
	for _, re := range res {
		if m := re.FindStringSubmatch(s); m != nil {
			addCaptures(re, m, vars)
			return re
		}
	}
	return nil
}

func addCaptures(re *regexp.Regexp, m []string, vars map[string]string) {
	for i, name := range re.SubexpNames() {
		if name != "" && i < len(m) && m[i] != "" {
			if _, set := vars[name]; !set {
				vars[name] = m[i]
			}
		}
	}
}

func list(res []*regexp.Regexp) string {
	s := make([]string, len(res))
	for i, re := range res {
		s[i] = "/" + re.String() + "/"
	}
	return strings.Join(s, ", ")
}

// matchAttachment matches file names case-insensitively (Cyrillic too:
// "Счет*.pdf" matches "СЧЕТ №12.PDF") against globs, on the base name.
func matchAttachment(atts []message.Attachment, globs []string) (name, glob string) {
	for _, a := range atts {
		n := a.Filename
		if i := strings.LastIndexAny(n, `/\`); i >= 0 {
			n = n[i+1:]
		}
		ln := strings.ToLower(n)
		for _, g := range globs {
			if ok, _ := path.Match(g, ln); ok {
				return a.Filename, g
			}
		}
	}
	return "", ""
}

// addrMatches returns the entry that matches addr: an address, "@domain"
// or "domain" (a domain also matches its subdomains).
func addrMatches(addr string, entries []string) string {
	_, domain, _ := strings.Cut(addr, "@")
	for _, e := range entries {
		if strings.Contains(strings.TrimPrefix(e, "@"), "@") {
			if e == addr {
				return e
			}
			continue
		}
		d := strings.TrimPrefix(e, "@")
		if domain == d || strings.HasSuffix(domain, "."+d) {
			return e
		}
	}
	return ""
}

// headerValue returns a header for rule matching: Record fields for the
// fields it parses, Record.Headers for the rest; "" when absent.
func headerValue(rec *message.Record, key string) string {
	addrs := func(l []message.Address) string {
		s := make([]string, len(l))
		for i, a := range l {
			if a.Name != "" {
				s[i] = a.Name + " <" + a.Addr + ">"
			} else {
				s[i] = a.Addr
			}
		}
		return strings.Join(s, ", ")
	}
	switch key {
	case "Subject":
		return rec.Subject
	case "From":
		return addrs(rec.From)
	case "To":
		return addrs(rec.To)
	case "Cc":
		return addrs(rec.Cc)
	case "Bcc":
		return addrs(rec.Bcc)
	case "Reply-To":
		return addrs(rec.ReplyTo)
	case "Sender":
		return addrs(rec.Sender)
	case "Message-Id":
		return rec.MessageID
	case "Content-Type":
		return rec.ContentType
	}
	return rec.Headers[key]
}

func firstToken(v string) string {
	v = strings.TrimSpace(v)
	if i := strings.IndexAny(v, " \t;("); i >= 0 {
		v = v[:i]
	}
	return v
}

// AutomaticAddress reports whether addr belongs to a program rather than a
// person: noreply@, no-reply@, do-not-reply@, mailer-daemon@, bounces@ and
// the like (separators and a +tag ignored). Nobody there reads a reminder,
// and the only "answer" from there is another program's, so followupd never
// reminds such an address, and a message sent only to such addresses is
// not tracked.
func AutomaticAddress(addr string) bool {
	local, _, ok := strings.Cut(strings.ToLower(strings.TrimSpace(addr)), "@")
	if !ok {
		return false
	}
	local, _, _ = strings.Cut(local, "+")
	local = separators.Replace(local)
	switch local {
	case "mailerdaemon", "bounce", "bounces", "autoreply", "autoresponder", "autorespond":
		return true
	}
	return strings.HasPrefix(local, "noreply") || strings.HasPrefix(local, "donotreply")
}

// separators are dropped from an address's local part by AutomaticAddress
// (built once: a Replacer per call was 3 % of a first sync's CPU).
var separators = strings.NewReplacer("-", "", "_", "", ".", "")

func automaticTo(to []message.Address) []string {
	var out []string
	for _, a := range to {
		if AutomaticAddress(a.Addr) {
			out = append(out, a.Addr)
		}
	}
	return out
}
