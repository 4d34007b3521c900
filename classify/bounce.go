package classify

import (
	"fmt"
	"net/mail"
	"regexp"
	"strings"

	"followupd/message"
)

// reportKind handles multipart/report types that are never bounces: read
// receipts (RFC 8098 disposition-notification) and abuse/feedback reports
// (RFC 5965 feedback-report).
func reportKind(rec *message.Record) (Verdict, bool) {
	ct := rec.ContentType
	switch {
	case strings.Contains(ct, "report-type=disposition-notification"):
		return Verdict{Kind: KindOther, Reasons: []string{"read receipt (RFC 8098 disposition-notification)"}}, true
	case strings.Contains(ct, "report-type=feedback-report"):
		return Verdict{Kind: KindOther, Reasons: []string{"feedback/abuse report (RFC 5965)"}}, true
	}
	return Verdict{}, false
}

// bounceSubjects are the subjects of delivery-failure notices, matched at
// the start of a lower-cased subject (no Re:/Fwd: before them). Postfix,
// Sendmail, Exim, qmail, Exchange (en/ru/de/fr/it/es), Gmail, Domino,
// Yandex, Mail.ru and others.
var bounceSubjects = regexp.MustCompile(`^(?:` + strings.Join([]string{
	`undelivered mail returned to sender`,
	`undeliverable\b`, `undelivered\b`, `undeliverable mail`,
	`delivery status notification \(failure\)`,
	`delivery status notification: (?:error|failed)`,
	`mail delivery failed`, `mail delivery failure`, `message delivery has failed`,
	`returned mail\b`, `returned mail:`, `mail system error - returned mail`,
	`failure notice`, `failure delivery`, `failed delivery`, `delivery failure`,
	`permanent delivery failure`, `delivery notification: delivery has failed`,
	`non delivery notification`, `non-delivery`, `nondeliverable`, `non remis`,
	`non recapitabile`, `unzustellbar`, `no se puede entregar`, `onbestelbaar`,
	`sorry, your message could not be delivered`, `mail failed, returning to sender`,
	`postmaster notify: see transcript`, `message not delivered`, `could not deliver`,
	`address not found`, `notice: mail delivery status`,
	`недоставленное сообщение`, `не доставлено`, `сообщение не доставлено`,
	`ваше сообщение не доставлено`, `ошибка доставки`, `не удалось доставить`,
	`メールエラー通知`, `退信`, `系统退信`,
}, "|") + `)`)

// delaySubjects: warnings that the message is still queued (not a bounce).
var delaySubjects = regexp.MustCompile(`(?:delayed mail|message delayed|delivery delayed|message \S{1,80} delayed|` +
	`\(delay\)|still being retried|warning: could not send message for past|` +
	`delivery status notification \(delay\)|mail delivery delayed|задержка доставки|доставка задерживается)`)

// bounceSubject returns the matched marker, or "".
func bounceSubject(subject string) string {
	s := strings.ToLower(strings.TrimSpace(subject))
	// bounceSubjects is anchored, so it fails fast on most subjects; the
	// unanchored delaySubjects is only asked about the few it matched (it
	// was 11 % of a first sync's CPU when asked first).
	m := bounceSubjects.FindString(s)
	if m == "" || delaySubjects.MatchString(s) {
		return ""
	}
	return m
}

// daemonSender: the notice comes from the mail system (RFC 5321 §4.5.5,
// RFC 3464 §2: null reverse path; MAILER-DAEMON, postmaster).
func daemonSender(rec *message.Record) bool {
	for _, a := range rec.From {
		local, _, _ := strings.Cut(a.Addr, "@")
		switch local {
		case "mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon", "mdaemon", "mail.delivery.system":
			return true
		}
		n := strings.ToLower(a.Name)
		if strings.Contains(n, "mail delivery") || strings.Contains(n, "mailer-daemon") || strings.Contains(n, "postmaster") {
			return true
		}
	}
	return false
}

func nullReturnPath(rec *message.Record) bool {
	rp := strings.TrimSpace(rec.Headers["Return-Path"])
	return rp == "<>" || rp == "< >"
}

// bounceBody are phrases of a failure notice's human-readable part.
var bounceBody = regexp.MustCompile(`(?i)(?:could not be delivered|couldn't be delivered|undeliverable|` +
	`delivery (?:has |to the following recipients? )?failed|permanent(?:ly)? (?:fatal )?error|failed permanently|` +
	`user unknown|unknown user|no such user|mailbox (?:unavailable|not found|is full|full)|does not exist|` +
	`recipient address rejected|address rejected|unrouteable|host unknown|` +
	`message was not delivered|returned to sender|this is a permanent error|did not reach the following recipient|` +
	`recipient name is not recognized|unknown recipient|could not be delivered|` +
	`not delivered to|delivery failure|delivery failed|` +
	`не может быть доставлено|не было доставлено|не доставлено|не удалось доставить|` +
	`адрес(?:ат)? не существует|почтовый ящик не (?:существует|найден))`)

var reSMTPCode = regexp.MustCompile(`\b(?:5[0-9][0-9][ -]|5\.[0-9]{1,3}\.[0-9]{1,3})`)

// bounce detects a delivery failure: an RFC 3464 report with a failed
// recipient, or a vendor-format notice (X-Failed-Recipients; a bounce
// subject; a daemon sender with failure words in the text).
func bounce(rec *message.Record) (Verdict, bool) {
	isDSN := strings.HasPrefix(rec.ContentType, "multipart/report") &&
		(strings.Contains(rec.ContentType, "delivery-status") || !strings.Contains(rec.ContentType, "report-type="))
	var failed, delayed []message.DSNRecipient
	if rec.Report != nil {
		for _, r := range rec.Report.Recipients {
			switch dsnOutcome(r) {
			case "failed":
				failed = append(failed, r)
			case "delayed":
				delayed = append(delayed, r)
			}
		}
	}
	if len(failed) > 0 {
		v := Verdict{Kind: KindBounce}
		for _, r := range failed {
			if r.FinalRecipient != "" {
				v.FailedRecipients = appendUnique(v.FailedRecipients, r.FinalRecipient)
			}
			if v.Diagnostic == "" {
				v.Diagnostic = r.Diagnostic
				if v.Diagnostic == "" {
					v.Diagnostic = r.Status
				}
			}
		}
		v.Reasons = []string{fmt.Sprintf("delivery status report (RFC 3464): Action failed for %s", strings.Join(v.FailedRecipients, ", "))}
		if len(v.FailedRecipients) == 0 {
			v.FailedRecipients = bodyFailedRecipients(rec)
		}
		return v, true
	}
	if rec.Report != nil && len(rec.Report.Recipients) > 0 {
		why := "delivery status report without a failed recipient"
		if len(delayed) > 0 {
			why = fmt.Sprintf("delivery delayed, not failed (RFC 3464 Action delayed for %s)", delayed[0].FinalRecipient)
		}
		return Verdict{Kind: KindOther, Reasons: []string{why}}, true
	}

	subj := strings.ToLower(strings.TrimSpace(rec.Subject))
	daemon := daemonSender(rec)
	if (isDSN || daemon || nullReturnPath(rec)) && delaySubjects.MatchString(subj) {
		return Verdict{Kind: KindOther, Reasons: []string{fmt.Sprintf("delivery delay warning (subject %q)", rec.Subject)}}, true
	}

	var reasons []string
	if xf := rec.Headers["X-Failed-Recipients"]; strings.TrimSpace(xf) != "" {
		reasons = append(reasons, "X-Failed-Recipients: "+xf)
	}
	if m := bounceSubject(rec.Subject); m != "" {
		reasons = append(reasons, fmt.Sprintf("bounce subject %q", m))
	}
	if isDSN {
		// A report whose DSN part was not read (header-only fetch) or not
		// parseable: the report type says what it is.
		reasons = append(reasons, "multipart/report; report-type=delivery-status")
	}
	if len(reasons) == 0 && (daemon || nullReturnPath(rec)) {
		text := rec.Subject + "\n" + rec.Body
		// A null reverse path is also used by auto-replies (RFC 3834 §3.3),
		// but they do not say the message could not be delivered.
		if m := bounceBody.FindString(text); m != "" {
			who := "mail system sender"
			if !daemon {
				who = "null Return-Path"
			}
			reasons = append(reasons, fmt.Sprintf("%s and failure text %q", who, m))
		}
	}
	if len(reasons) == 0 {
		return Verdict{}, false
	}
	v := Verdict{Kind: KindBounce, Reasons: reasons}
	for _, a := range strings.Split(rec.Headers["X-Failed-Recipients"], ",") {
		if a = strings.ToLower(strings.Trim(strings.TrimSpace(a), "<>")); strings.Contains(a, "@") {
			v.FailedRecipients = appendUnique(v.FailedRecipients, a)
		}
	}
	if len(v.FailedRecipients) == 0 {
		v.FailedRecipients = bodyFailedRecipients(rec)
	}
	v.Diagnostic = bodyDiagnostic(rec.Body)
	return v, true
}

// dsnOutcome folds a DSN recipient to failed / delayed / ok. A missing
// Action is read from the Status class (RFC 3463: 5 permanent, 4 transient).
func dsnOutcome(r message.DSNRecipient) string {
	switch r.Action {
	case "failed", "expired", "failure", "fail", "bounced":
		return "failed"
	case "delayed", "delay":
		return "delayed"
	case "delivered", "relayed", "expanded", "deliverable":
		return "ok"
	}
	switch {
	case strings.HasPrefix(r.Status, "5"):
		return "failed"
	case strings.HasPrefix(r.Status, "4"):
		return "delayed"
	case strings.HasPrefix(r.Status, "2"):
		return "ok"
	}
	return ""
}

var reAddr = regexp.MustCompile(`[A-Za-z0-9.!#$%&'*+/=?^_{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+`)

// bodyFailedRecipients guesses the failed addresses of a non-standard
// bounce: the returned message's To when known, narrowed to those the text
// names; else the addresses the text names, minus the bounce's own
// parties and mail-system mailboxes.
func bodyFailedRecipients(rec *message.Record) []string {
	text := rec.Body
	if i := originalMarker(text); i >= 0 {
		text = text[:i]
	}
	var named []string
	for _, m := range reAddr.FindAllString(text, 50) {
		named = appendUnique(named, strings.ToLower(strings.Trim(m, ".")))
	}
	if rec.Report != nil && len(rec.Report.OriginalTo) > 0 {
		var out []string
		for _, a := range rec.Report.OriginalTo {
			for _, n := range named {
				if n == a {
					out = appendUnique(out, a)
				}
			}
		}
		if len(out) > 0 {
			return out
		}
		if len(rec.Report.OriginalTo) == 1 {
			return []string{rec.Report.OriginalTo[0]}
		}
	}
	own := map[string]bool{}
	for _, l := range [][]message.Address{rec.From, rec.To, rec.Cc, rec.Sender, rec.ReplyTo} {
		for _, a := range l {
			own[a.Addr] = true
		}
	}
	var out []string
	for _, n := range named {
		local, _, _ := strings.Cut(n, "@")
		if own[n] || local == "postmaster" || local == "mailer-daemon" || strings.HasPrefix(local, "mailer-daemon") {
			continue
		}
		if _, err := mail.ParseAddress(n); err != nil {
			continue
		}
		out = append(out, n)
		if len(out) == 10 {
			break
		}
	}
	return out
}

var reOriginal = regexp.MustCompile(`(?im)^.*(?:below this line is a copy of the message|this is a copy of the message|original message (?:follows|headers)|` +
	`-+ ?original message ?-+|^received: from|^return-path:|the original message was received)`)

func originalMarker(text string) int {
	if loc := reOriginal.FindStringIndex(text); loc != nil && loc[0] > 0 {
		return loc[0]
	}
	return -1
}

// bodyDiagnostic returns the first line of the text that holds an SMTP
// reply code or enhanced status (5xx, 5.x.x), trimmed.
func bodyDiagnostic(body string) string {
	if i := originalMarker(body); i >= 0 {
		body = body[:i]
	}
	for _, line := range strings.Split(body, "\n") {
		if reSMTPCode.MatchString(line) {
			line = strings.Join(strings.Fields(line), " ")
			if len(line) > 300 {
				line = line[:300]
			}
			return strings.ToValidUTF8(line, "")
		}
	}
	// QUIRK: Mail.ru and some gateways state the failure in words with no
	// SMTP code ("Message was not accepted -- invalid mailbox", daemon
	// testdata bounce-mailru.ru.eml): take the first line saying so.
	for _, line := range strings.Split(body, "\n") {
		if reFailureLine.MatchString(line) {
			line = strings.Join(strings.Fields(line), " ")
			if len(line) > 300 {
				line = line[:300]
			}
			return strings.ToValidUTF8(line, "")
		}
	}
	return ""
}

var reFailureLine = regexp.MustCompile(`(?i)(?:user (?:unknown|not found)|no such (?:user|mailbox|address)|invalid (?:mailbox|recipient)|` +
	`mailbox (?:unavailable|not found|is full|does not exist)|is unavailable|does not exist|` +
	`пользовател\p{L}* не (?:найден|существует)|(?:адрес|ящик)\p{L}* не существует|не существует)`)

func appendUnique(l []string, s string) []string {
	for _, x := range l {
		if x == s {
			return l
		}
	}
	return append(l, s)
}
