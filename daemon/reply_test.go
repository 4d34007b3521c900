package daemon_test

// End-to-end tests of reply intelligence (issue 5): every way a tracked
// offer can be answered, auto-replied to, bounced, stopped or opted in,
// seen through the running daemon (imaptest + smtptest + clock.Fake). The
// incoming messages are testdata/reply/*.eml with placeholders (see the
// README there). The world helpers are in e2e_test.go.

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"followupd/daemon"
	"followupd/message"
	"followupd/store"
)

// vars are the placeholders of a testdata/reply message.
type vars map[string]string

// loadReply reads testdata/reply/name, fills its placeholders and turns
// its line endings into CRLF.
func loadReply(t *testing.T, name string, v vars) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "reply", name))
	if err != nil {
		t.Fatal(err)
	}
	var pairs []string
	for k, val := range v {
		pairs = append(pairs, "${"+k+"}", val)
	}
	s := strings.NewReplacer(pairs...).Replace(string(b))
	if i := strings.Index(s, "${"); i >= 0 {
		t.Fatalf("%s: placeholder left unfilled: %.30s", name, s[i:])
	}
	s = strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")
	return []byte(s)
}

// encWord writes s as an RFC 2047 encoded word when it is not ASCII.
func encWord(s string) string {
	for _, r := range s {
		if r >= 0x80 {
			return "=?utf-8?b?" + b64(s) + "?="
		}
	}
	return s
}

// offer is a message the sender writes; send files it in their Sent.
type offer struct {
	id, from, subject string
	to, cc, bcc       []string
	headers           string // extra header lines, each ending in \r\n
	flags             []string
}

func (o offer) raw(date time.Time) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "Message-ID: <%s>\r\nFrom: Ivan Seller <%s>\r\nTo: %s\r\n", o.id, o.from, strings.Join(o.to, ", "))
	if len(o.cc) > 0 {
		fmt.Fprintf(&b, "Cc: %s\r\n", strings.Join(o.cc, ", "))
	}
	if len(o.bcc) > 0 {
		fmt.Fprintf(&b, "Bcc: %s\r\n", strings.Join(o.bcc, ", "))
	}
	fmt.Fprintf(&b, "Subject: %s\r\nDate: %s\r\n%sMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nPlease find our offer attached.\r\n",
		encWord(o.subject), date.Format(time.RFC1123Z), o.headers)
	return []byte(b.String())
}

// send files o in the sender's Sent and returns its UID there.
func (w *world) send(o offer, date time.Time) uint32 {
	w.t.Helper()
	uid, err := w.imap.AppendAt(o.from, "Sent", o.raw(date), time.Time{}, append([]string{`\Seen`}, o.flags...)...)
	if err != nil {
		w.t.Fatal(err)
	}
	return uid
}

// followUp returns the follow-up of a tracked message.
func followUp(t *testing.T, d *daemon.Daemon, msgid string) *store.FollowUp {
	t.Helper()
	f, err := d.Store().ByMessageID(msgid)
	if err != nil {
		t.Fatalf("follow-up of %s: %v", msgid, err)
	}
	return f
}

// envelopes returns the RCPT TO lists of every submitted reminder.
func (w *world) envelopes() [][]string {
	var out [][]string
	for _, m := range w.smtp.Messages() {
		out = append(out, m.To)
	}
	return out
}

// Outlook Thread-Index values: an offer's (22 bytes) and a reply's (+5).
const (
	offerThreadIndex = "AdsZ9Kx0QUJDREVGR0hJSktMTU5PUA=="
	replyThreadIndex = "AdsZ9Kx0QUJDREVGR0hJSktMTU5PUAAAAAEC"
)

// TestReplyAnswers: what counts as the client's answer, and what does not,
// one daemon per case. An answer stops the chain before any reminder; a
// non-answer leaves step 1 to be sent.
func TestReplyAnswers(t *testing.T) {
	strict := "any_message_from_recipient = false\n"
	tests := []struct {
		name    string
		file    string
		to      string // the offer's recipient
		from    string // the incoming message's author ("" = the recipient)
		subject string
		cfg     string // extra configuration
		want    bool   // answered
		why     string // in the Outcome
	}{
		{name: "In-Reply-To, en", file: "reply-in-reply-to.en.eml", subject: "Offer for 40 valves", want: true, why: "in-reply-to"},
		{name: "References only, koi8-r, ru", file: "reply-references.ru.eml", subject: "Коммерческое предложение №12", cfg: strict, want: true, why: "in-reply-to"},
		{name: "Outlook Thread-Index, edited subject, en", file: "reply-thread-index.en.eml", subject: "Offer: service contract", cfg: strict, want: true, why: "Thread-Index"},
		{name: "Outlook Thread-Topic, edited subject, ru", file: "reply-thread-topic.ru.eml", subject: "Коммерческое предложение на сервис", cfg: strict, want: true, why: "same subject"},
		{name: "subject from recipient, ru prefixes and tag", file: "reply-subject.ru.eml", subject: "Коммерческое предложение №14", cfg: strict, want: true, why: "same subject"},
		{name: "subject from recipient, AW/Re[2]/[EXT], en", file: "reply-subject.en.eml", subject: "Offer 2026-17", cfg: strict, want: true, why: "same subject"},
		{name: "colleague at the client's domain, ru", file: "colleague.ru.eml", from: "boris@client.test", subject: "Коммерческое предложение №15", cfg: strict, want: true, why: "colleague"},
		{name: "colleague at the client's domain, en", file: "colleague.en.eml", from: "boris@client.test", subject: "Offer 2026-18", cfg: strict, want: true, why: "colleague"},
		{name: "colleague answers off", file: "colleague.en.eml", from: "boris@client.test", subject: "Offer 2026-19", cfg: strict + "colleague_answers = false\n", want: false},
		{name: "stranger at gmail.com, en", file: "colleague.en.eml", to: "anna.client@gmail.com", from: "petr.stranger@gmail.com", subject: "Offer 2026-20", want: false},
		{name: "stranger at mail.ru, ru", file: "colleague.ru.eml", to: "anna.client@mail.ru", from: "petr@mail.ru", subject: "Коммерческое предложение №21", want: false},
		{name: "stranger at a configured public domain", file: "colleague.en.eml", to: "anna@corp-free.test", from: "petr@corp-free.test", subject: "Offer 2026-22", cfg: "public_domains = [\"corp-free.test\"]\n", want: false},
		{name: "a person writes they are away, and answers", file: "person-away-words.ru.eml", subject: "Коммерческое предложение №26", want: true, why: "in-reply-to"},
		{name: "new thread from recipient, ru", file: "new-thread.ru.eml", subject: "Коммерческое предложение №23", want: true, why: "message from recipient"},
		{name: "new thread from recipient, en", file: "new-thread.en.eml", subject: "Offer 2026-24", want: true, why: "message from recipient"},
		{name: "new thread from recipient, any_message_from_recipient off", file: "new-thread.en.eml", subject: "Offer 2026-25", cfg: strict, want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := monday(t)
			w := newWorld(t, start, seller)
			d, _ := w.run(w.config(tc.cfg, seller))
			to := tc.to
			if to == "" {
				to = client
			}
			from := tc.from
			if from == "" {
				from = to
			}
			id := "offer@seller.test"
			w.send(offer{id: id, from: seller, to: []string{to}, subject: tc.subject, headers: "Thread-Index: " + offerThreadIndex + "\r\n"}, start)
			w.expect("tracked", id)
			w.deliver(seller, loadReply(t, tc.file, vars{
				"ID": "in@" + domainPart(from), "DATE": start.Add(time.Hour).Format(time.RFC1123Z), "FROM": from, "TO": seller,
				"OFFER": id, "SUBJECT": encWord(tc.subject), "THREAD_INDEX": replyThreadIndex,
			}))
			if tc.want {
				w.expect("answered", id)
				f := followUp(t, d, id)
				if f.State != store.StateAnswered || !strings.Contains(f.Outcome, from) || !strings.Contains(f.Outcome, tc.why) {
					t.Errorf("state %s, outcome %q; want answered by %s (%s)", f.State, f.Outcome, from, tc.why)
				}
				w.advanceTo(start.Add(8 * 24 * time.Hour))
				w.quiet("sent", 200*time.Millisecond)
				if n := len(w.smtp.Messages()); n != 0 {
					t.Fatalf("%d reminders after an answer", n)
				}
				return
			}
			w.advanceTo(start.Add(3 * 24 * time.Hour))
			w.expect("sent", id)
			w.quiet("answered", 50*time.Millisecond)
			if f := followUp(t, d, id); f.State != store.StateWaiting || f.Step != 2 {
				t.Errorf("state %s step %d, want waiting for step 2", f.State, f.Step)
			}
		})
	}
}

// advanceBy moves the fake clock d forward in steps of step, letting the
// daemon's goroutines run in between (paced sends are seconds apart).
func (w *world) advanceBy(d, step time.Duration) {
	end := w.clk.Now().Add(d)
	for w.clk.Now().Before(end) {
		w.clk.Set(w.clk.Now().Add(step))
		time.Sleep(time.Millisecond)
	}
}

// waitStored waits (real time) until the daemon has stored message msgid.
func waitStored(t *testing.T, d *daemon.Daemon, msgid string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if _, err := d.Store().Message(msgid); err == nil {
			return
		}
	}
	t.Fatalf("message %s not stored within 10s", msgid)
}

func domainPart(addr string) string {
	_, d, _ := strings.Cut(addr, "@")
	return d
}

// TestReplyInAnotherMailbox: every configured mailbox is watched, so the
// client's answer that lands with a colleague or in a shared sales@ stops
// the sender's follow-up.
func TestReplyInAnotherMailbox(t *testing.T) {
	maria, sales := "maria@seller.test", "sales@seller.test"
	for _, tc := range []struct{ name, deliverTo, file, subject string }{
		{"to a colleague, en", maria, "reply-in-reply-to.en.eml", "Offer for 12 pumps"},
		{"to the shared sales@, ru", sales, "reply-references.ru.eml", "Коммерческое предложение №30"},
		{"new thread to sales@, ru", sales, "new-thread.ru.eml", "Коммерческое предложение №31"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := monday(t)
			w := newWorld(t, start, seller, maria, sales)
			d, _ := w.run(w.config("", seller, maria, sales))
			id := "offer-team@seller.test"
			w.send(offer{id: id, from: seller, to: []string{client}, subject: tc.subject}, start)
			w.expect("tracked", id)
			w.deliver(tc.deliverTo, loadReply(t, tc.file, vars{
				"ID": "team-reply@client.test", "DATE": start.Add(2 * time.Hour).Format(time.RFC1123Z), "FROM": client, "TO": tc.deliverTo,
				"OFFER": id, "SUBJECT": encWord(tc.subject),
			}))
			ev := w.expect("answered", id)
			if ev.Account != "ivan@seller.test" && ev.Account != followUp(t, d, id).Account {
				t.Errorf("answered event for account %s", ev.Account)
			}
			w.advanceTo(start.Add(6 * 24 * time.Hour))
			w.quiet("sent", 200*time.Millisecond)
			if n := len(w.smtp.Messages()); n != 0 {
				t.Fatalf("%d reminders after an answer in %s", n, tc.deliverTo)
			}
		})
	}
}

// TestAutoRepliesAreNotAnswers: each auto-reply signal on its own (RFC
// 3834 header, vendor headers, subject markers in several languages,
// "message received" and ticket confirmations) is not an answer: step 1
// is still sent. One daemon, one offer per signal, each to its own client.
func TestAutoRepliesAreNotAnswers(t *testing.T) {
	tests := []struct {
		name, subject, subjectLine, headers string
	}{
		{"Auto-Submitted", "Offer A1", "Re: Offer A1", "Auto-Submitted: auto-replied\r\n"},
		{"Auto-Submitted auto-generated", "Offer A2", "Re: Offer A2", "Auto-Submitted: auto-generated\r\n"},
		{"X-Autoreply", "Коммерческое предложение А3", "Re: Коммерческое предложение А3", "X-Autoreply: yes\r\n"},
		{"X-Autorespond", "Offer A4", "Re: Offer A4", "X-Autorespond: Vacation\r\n"},
		{"Precedence auto_reply", "Offer A5", "Re: Offer A5", "Precedence: auto_reply\r\n"},
		{"Precedence junk", "Offer A6", "Re: Offer A6", "Precedence: junk\r\n"},
		{"X-Auto-Response-Suppress echo", "Offer A7", "RE: Offer A7", "X-Auto-Response-Suppress: All\r\n"},
		{"Automatic reply", "Offer A8", "Automatic reply: Offer A8", ""},
		{"Out of Office", "Offer A9", "Out of Office: Offer A9", ""},
		{"Автоматический ответ", "Коммерческое предложение А10", "Автоматический ответ: Коммерческое предложение А10", ""},
		{"Автоответ", "Коммерческое предложение А11", "Автоответ: Re: Коммерческое предложение А11", ""},
		{"Abwesenheitsnotiz", "Offer A12", "Abwesenheitsnotiz: Offer A12", ""},
		{"自动回复", "Offer A13", "自动回复: Offer A13", ""},
		{"Ваше письмо получено", "Коммерческое предложение А14", "Ваше письмо получено", ""},
		{"ticket created", "Offer A15", "[Support] Ticket #4521 created: Offer A15", ""},
		{"we received your message", "Offer A16", "We have received your message", ""},
	}
	start := monday(t)
	w := newWorld(t, start, seller)
	d, _ := w.run(w.config("", seller))
	ids := make([]string, len(tests))
	for i, tc := range tests {
		ids[i] = fmt.Sprintf("offer-a%d@seller.test", i)
		w.send(offer{id: ids[i], from: seller, to: []string{fmt.Sprintf("anna@client%d.test", i)}, subject: tc.subject}, start)
	}
	for _, id := range ids {
		w.expect("tracked", id)
	}
	for i, tc := range tests {
		from := fmt.Sprintf("anna@client%d.test", i)
		w.deliver(seller, loadReply(t, "autoreply.eml", vars{
			"ID": fmt.Sprintf("auto-%d@client%d.test", i, i), "DATE": start.Add(time.Minute).Format(time.RFC1123Z), "FROM": from, "TO": seller,
			"OFFER": ids[i], "SUBJECT_LINE": encWord(tc.subjectLine), "HEADERS": tc.headers,
		}))
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w.t = t
			ev := w.expect("autoreply", ids[i])
			if !strings.Contains(ev.Text, "not an answer") {
				t.Errorf("autoreply event %q", ev.Text)
			}
		})
	}
	w.t = t
	// Sixteen steps fall due at once; pacing (max_per_hour) spreads them.
	w.advanceTo(start.Add(3 * 24 * time.Hour))
	w.advanceBy(10*time.Minute, 2*time.Second)
	for i, tc := range tests {
		t.Run(tc.name+"/reminded", func(t *testing.T) {
			w.t = t
			w.expect("sent", ids[i])
			if f := followUp(t, d, ids[i]); f.State != store.StateWaiting || f.Step != 2 {
				t.Errorf("state %s step %d, want waiting for step 2", f.State, f.Step)
			}
		})
	}
	w.t = t
	w.quiet("answered", 50*time.Millisecond)
}

// TestOutOfOfficePostpones: with auto_reply = "postpone", an out-of-office
// with a readable return date holds the follow-up until the next business
// day after the return, capped by max_postpone (14 days).
func TestOutOfOfficePostpones(t *testing.T) {
	start := monday(t) // Mon 23 Nov 2026 10:00 MSK; step 1 due Thu 26 10:00
	loc := start.Location()
	capped := start.Add(time.Hour).Add(14 * 24 * time.Hour) // max_postpone from the auto-reply's date
	tests := []struct {
		name, file, ret, subject string
		until                    time.Time
	}{
		{"en back on 03.12", "ooo-return.en.eml", "03.12", "Offer for 7 boilers", time.Date(2026, 12, 4, 9, 0, 0, 0, loc)},
		{"ru вернусь 3 декабря", "ooo-return.ru.eml", "3 декабря", "Коммерческое предложение №40", time.Date(2026, 12, 4, 9, 0, 0, 0, loc)},
		{"ru new thread, до 3 декабря", "ooo-new-thread.ru.eml", "3 декабря", "Коммерческое предложение №42", time.Date(2026, 12, 4, 9, 0, 0, 0, loc)},
		{"en back on 12.03 capped", "ooo-return.en.eml", "12.03", "Offer for 8 boilers", capped},
		{"ru вернусь 12 марта capped", "ooo-return.ru.eml", "12 марта", "Коммерческое предложение №41", capped},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, start, seller)
			d, _ := w.run(w.config("", seller))
			id := "offer-ooo@seller.test"
			w.send(offer{id: id, from: seller, to: []string{client}, subject: tc.subject}, start)
			w.expect("tracked", id)
			w.deliver(seller, loadReply(t, tc.file, vars{
				"ID": "ooo@client.test", "DATE": start.Add(time.Hour).Format(time.RFC1123Z), "FROM": client, "TO": seller,
				"OFFER": id, "SUBJECT": encWord(tc.subject), "RETURN": tc.ret,
			}))
			w.expect("held", id)
			f := followUp(t, d, id)
			if f.State != store.StateHeld || !f.HeldUntil.Equal(tc.until) {
				t.Fatalf("state %s held until %s, want held until %s", f.State, f.HeldUntil.In(loc), tc.until)
			}
			if until, ok, err := d.Store().AwayUntil(client); err != nil || !ok || !until.Equal(tc.until) {
				t.Errorf("away window of %s: %s %v %v, want until %s", client, until, ok, err, tc.until)
			}
			w.advanceTo(tc.until.Add(-time.Minute))
			w.quiet("sent", 200*time.Millisecond)
			if n := len(w.smtp.Messages()); n != 0 {
				t.Fatalf("%d reminders while the contact is away", n)
			}
			w.advanceTo(tc.until.Add(time.Minute))
			w.expect("sent", id)
			w.quiet("answered", 50*time.Millisecond)
		})
	}
}

// TestAwayWindowPerContact: the away window belongs to the contact, so it
// holds another sender's follow-up of another rule (whose own policy is
// ignore) to the same contact, which never got an auto-reply itself.
func TestAwayWindowPerContact(t *testing.T) {
	start := monday(t)
	loc := start.Location()
	maria := "maria@seller.test"
	w := newWorld(t, start, seller, maria)
	invoiceRule := `
[[rule]]
name = "invoice"
kind = "invoice"
match.subject = ['(?i)сч[её]т №\d+']
auto_reply = "ignore"
  [[rule.step]]
  after = "3 business days"
  template = "first"
`
	cfg := w.config(invoiceRule, seller, maria)
	d, stop := w.run(cfg)
	offerID, invoiceID := "offer-away@seller.test", "invoice-away@seller.test"
	w.send(offer{id: offerID, from: seller, to: []string{client}, subject: "Коммерческое предложение №50"}, start)
	w.expect("tracked", offerID)
	w.advanceTo(start.Add(2 * time.Hour))
	w.send(offer{id: invoiceID, from: maria, to: []string{client}, subject: "Счёт №1250 на оплату"}, start.Add(2*time.Hour))
	w.expect("tracked", invoiceID)
	if f := followUp(t, d, invoiceID); f.Rule != "invoice" || f.Account == followUp(t, d, offerID).Account {
		t.Fatalf("invoice tracked by rule %s for %s", f.Rule, f.Account)
	}
	// Anna's responder answers Ivan's offer only (once every few days).
	w.deliver(seller, loadReply(t, "ooo-return.ru.eml", vars{
		"ID": "ooo-away@client.test", "DATE": start.Add(time.Hour).Format(time.RFC1123Z), "FROM": client, "TO": seller,
		"OFFER": offerID, "SUBJECT": encWord("Коммерческое предложение №50"), "RETURN": "3 декабря",
	}))
	w.expect("held", offerID)
	back := time.Date(2026, 12, 4, 9, 0, 0, 0, loc)
	// The window is remembered across a restart: the responder will not
	// answer again for days.
	stop()
	d, _ = w.run(cfg)
	// Maria's invoice falls due Thu 26 12:00 and is held by Anna's window.
	w.advanceTo(time.Date(2026, 11, 26, 12, 0, 0, 0, loc))
	ev := w.expect("held", invoiceID)
	if !strings.Contains(ev.Text, client) {
		t.Errorf("held event %q does not name the contact", ev.Text)
	}
	if f := followUp(t, d, invoiceID); f.State != store.StateHeld || !f.HeldUntil.Equal(back) {
		t.Errorf("invoice: state %s until %s, want held until %s", f.State, f.HeldUntil, back)
	}
	w.advanceTo(back.Add(-time.Minute))
	w.quiet("sent", 200*time.Millisecond)
	if n := len(w.smtp.Messages()); n != 0 {
		t.Fatalf("%d reminders to a contact who is away", n)
	}
	w.advanceTo(back.Add(30 * time.Minute))
	w.expect("sent", offerID)
	w.expect("sent", invoiceID)
}

// TestBouncesStopTheChain: RFC 3464 reports and the non-standard bounces
// of the usual MTAs, and "this address is no longer in use" notices, make
// the follow-up bounced with the failed address and the diagnostic.
func TestBouncesStopTheChain(t *testing.T) {
	tests := []struct {
		name, file, subject, diag string
	}{
		{"RFC 3464 Postfix", "bounce-postfix.eml", "Offer B1", "User unknown"},
		{"RFC 3464 Exchange", "bounce-exchange.eml", "Offer B2", "RecipientNotFound"},
		{"Gmail", "bounce-gmail.eml", "Offer B3", "does not exist"},
		{"Exim", "bounce-exim.eml", "Offer B4", "No Such User"},
		{"Yandex, ru", "bounce-yandex.ru.eml", "Коммерческое предложение Б5", "No such user"},
		{"Mail.ru, ru", "bounce-mailru.ru.eml", "Коммерческое предложение Б6", "user not found"},
		{"address gone, en", "gone.en.eml", "Offer B7", "no longer in use"},
		{"address gone, ru", "gone.ru.eml", "Коммерческое предложение Б8", "больше не используется"},
	}
	start := monday(t)
	w := newWorld(t, start, seller)
	d, _ := w.run(w.config("", seller))
	ids := make([]string, len(tests))
	for i, tc := range tests {
		ids[i] = fmt.Sprintf("offer-b%d@seller.test", i)
		w.send(offer{id: ids[i], from: seller, to: []string{fmt.Sprintf("buyer@client%d.test", i)}, subject: tc.subject}, start)
		w.expect("tracked", ids[i])
	}
	for i, tc := range tests {
		to := fmt.Sprintf("buyer@client%d.test", i)
		w.deliver(seller, loadReply(t, tc.file, vars{
			"ID": fmt.Sprintf("bounce-%d@mx.test", i), "DATE": start.Add(time.Minute).Format(time.RFC1123Z), "FROM": to, "TO": seller,
			"CLIENT": to, "OFFER": ids[i], "SUBJECT": encWord(tc.subject),
		}))
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w.t = t
			w.expect("bounced", ids[i])
			f := followUp(t, d, ids[i])
			to := fmt.Sprintf("buyer@client%d.test", i)
			if f.State != store.StateBounced || !strings.Contains(f.Outcome, to) || !strings.Contains(strings.ToLower(f.Outcome), strings.ToLower(tc.diag)) {
				t.Errorf("state %s outcome %q; want bounced naming %s and %q", f.State, f.Outcome, to, tc.diag)
			}
		})
	}
	w.t = t
	w.advanceTo(start.Add(8 * 24 * time.Hour))
	w.quiet("sent", 200*time.Millisecond)
	if n := len(w.smtp.Messages()); n != 0 {
		t.Fatalf("%d reminders to bounced addresses", n)
	}
}

// TestBouncesWithoutMessageID: two bounces without Message-ID from one
// MAILER-DAEMON in the same second, with the same subject, citing no
// message and differing only in the failed address
// (testdata/reply/bounce-no-msgid.eml), are two messages: the second is not
// taken for the first one seen again, and each bounces its own follow-up.
func TestBouncesWithoutMessageID(t *testing.T) {
	start := monday(t)
	w := newWorld(t, start, seller)
	d, _ := w.run(w.config("", seller))
	clients := []string{"buyer@client1.test", "buyer@client2.test"}
	offers := []string{"offer-nm1@seller.test", "offer-nm2@seller.test"}
	for i, to := range clients {
		w.send(offer{id: offers[i], from: seller, to: []string{to}, subject: fmt.Sprintf("Offer NM%d", i+1)}, start)
		w.expect("tracked", offers[i])
	}
	var dsnIDs []string
	for i, to := range clients {
		raw := loadReply(t, "bounce-no-msgid.eml", vars{"DATE": start.Add(time.Minute).Format(time.RFC1123Z), "TO": seller, "CLIENT": to})
		rec, err := message.ParseHeader(raw)
		if err != nil || !rec.SyntheticID {
			t.Fatalf("bounce %d: id %q synthetic %v, err %v; want a synthetic id", i, rec.MessageID, rec.SyntheticID, err)
		}
		dsnIDs = append(dsnIDs, rec.MessageID)
		// One after the other, as they arrive: the second comes when the
		// first is stored.
		w.deliver(seller, raw)
		w.expect("bounced", offers[i])
		waitStored(t, d, rec.MessageID)
	}
	if dsnIDs[0] == dsnIDs[1] {
		t.Fatalf("both bounces have the id %s", dsnIDs[0])
	}
	for i, to := range clients {
		if f := followUp(t, d, offers[i]); f.State != store.StateBounced || !strings.Contains(f.Outcome, to) {
			t.Errorf("%s: state %s outcome %q, want bounced naming %s", offers[i], f.State, f.Outcome, to)
		}
	}
	w.advanceTo(start.Add(8 * 24 * time.Hour))
	w.quiet("sent", 200*time.Millisecond)
	if n := len(w.smtp.Messages()); n != 0 {
		t.Fatalf("%d reminders to bounced addresses", n)
	}
}

// TestSenderActions: what the sender does in their own mail client. A draft
// or a message in Sent is never the client's answer; the sender's own
// follow-up in the thread restarts the chain; \Flagged, the stop keyword or
// the Stop folder stop it.
func TestSenderActions(t *testing.T) {
	start := monday(t)
	loc := start.Location()
	const stopFolder = "Followup/Stop"
	tests := []struct {
		name    string
		subject string
		flags   []string // on the Sent copy when first seen
		act     func(w *world, o offer, uid uint32)
		want    string // event after act: stopped, manual, or "" (none)
	}{
		{name: "draft in the thread is no answer", subject: "Offer S1", act: func(w *world, o offer, uid uint32) {
			if err := w.imap.Append(seller, "Drafts", loadReply(w.t, "drafts-reply.eml", vars{"ID": "draft@seller.test", "DATE": start.Add(time.Hour).Format(time.RFC1123Z),
				"FROM": seller, "TO": client, "OFFER": o.id, "SUBJECT": encWord(o.subject)}), `\Draft`); err != nil {
				w.t.Fatal(err)
			}
		}},
		{name: "client's reply filed in Sent is no answer", subject: "Коммерческое предложение С2", act: func(w *world, o offer, uid uint32) {
			if err := w.imap.Append(seller, "Sent", loadReply(w.t, "reply-in-reply-to.en.eml", vars{"ID": "filed@client.test", "DATE": start.Add(time.Hour).Format(time.RFC1123Z),
				"FROM": client, "TO": seller, "OFFER": o.id, "SUBJECT": encWord(o.subject)})); err != nil {
				w.t.Fatal(err)
			}
		}},
		{name: "manual follow-up restarts the chain", subject: "Коммерческое предложение С3", want: "manual", act: func(w *world, o offer, uid uint32) {
			w.clk.Set(time.Date(2026, 11, 25, 10, 0, 0, 0, loc))
			if err := w.imap.Append(seller, "Sent", loadReply(w.t, "manual-follow-up.ru.eml", vars{"ID": "manual@seller.test", "DATE": w.clk.Now().Format(time.RFC1123Z),
				"FROM": seller, "TO": client, "OFFER": o.id, "SUBJECT": encWord(o.subject)}), `\Seen`); err != nil {
				w.t.Fatal(err)
			}
		}},
		{name: `\Flagged later`, subject: "Offer S4", want: "stopped", act: func(w *world, o offer, uid uint32) {
			if err := w.imap.Store(seller, "Sent", uid, `\Flagged`); err != nil {
				w.t.Fatal(err)
			}
		}},
		{name: "stop keyword later", subject: "Offer S5", want: "stopped", act: func(w *world, o offer, uid uint32) {
			if err := w.imap.Store(seller, "Sent", uid, "$FollowupStop"); err != nil {
				w.t.Fatal(err)
			}
		}},
		{name: "moved to the Stop folder", subject: "Коммерческое предложение С6", want: "stopped", act: func(w *world, o offer, uid uint32) {
			if err := w.imap.Append(seller, stopFolder, o.raw(start), `\Seen`); err != nil {
				w.t.Fatal(err)
			}
		}},
		{name: `\Flagged when first seen`, subject: "Offer S7", flags: []string{`\Flagged`}, want: "stopped"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, start, seller)
			if err := w.imap.CreateMailbox(seller, stopFolder); err != nil {
				t.Fatal(err)
			}
			cfg := w.config("", seller)
			cfg.Accounts[0].Folders.Stop = stopFolder
			d, _ := w.run(cfg)
			o := offer{id: "offer-s@seller.test", from: seller, to: []string{client}, subject: tc.subject, flags: tc.flags}
			uid := w.send(o, start)
			w.expect("tracked", o.id)
			if tc.act != nil {
				tc.act(w, o, uid)
			}
			switch tc.want {
			case "stopped":
				w.expect("stopped", o.id)
				if f := followUp(t, d, o.id); f.State != store.StateStopped || f.Outcome == "" {
					t.Errorf("state %s outcome %q, want stopped with a reason", f.State, f.Outcome)
				}
				w.advanceTo(start.Add(8 * 24 * time.Hour))
				w.quiet("sent", 200*time.Millisecond)
				if n := len(w.smtp.Messages()); n != 0 {
					t.Fatalf("%d reminders after the sender stopped tracking", n)
				}
			case "manual":
				w.expect("manual", o.id)
				// Three business days from Wednesday's own follow-up: Monday 30th.
				if f := followUp(t, d, o.id); !f.Due.Equal(time.Date(2026, 11, 30, 10, 0, 0, 0, loc)) {
					t.Errorf("due %s after the manual follow-up, want Mon 30 Nov 10:00", f.Due.In(loc))
				}
				w.advanceTo(time.Date(2026, 11, 27, 17, 0, 0, 0, loc))
				w.quiet("sent", 200*time.Millisecond)
				w.advanceTo(time.Date(2026, 11, 30, 10, 1, 0, 0, loc))
				w.expect("sent", o.id)
			default:
				w.quiet("manual", 200*time.Millisecond)
				w.advanceTo(start.Add(3 * 24 * time.Hour))
				w.expect("sent", o.id)
				w.quiet("answered", 50*time.Millisecond)
			}
		})
	}
}

// waitSynced waits (real time) until the daemon has processed and stored
// mailbox up to uid: the sync state is committed with the batch's records,
// after the batch was processed.
func waitSynced(t *testing.T, d *daemon.Daemon, account, mailbox string, uid uint32) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if st, err := d.Store().SyncState(account, mailbox); err == nil && st.LastUID >= uid {
			return
		}
	}
	t.Fatalf("%s/%s not synced to uid %d within 10s", account, mailbox, uid)
}

// TestStopFolderBeforeSent: the sender's message found in the Stop folder
// before its Sent copy is tracked (Gmail labels put one message in INBOX,
// Sent and Stop at once; a first start syncs the folders in any order)
// still stops the follow-up when the Sent copy is tracked, also across a
// restart in between, and also when a copy in the INBOX (Cc to self) was
// seen before both. A different message in the Stop folder stops nothing.
func TestStopFolderBeforeSent(t *testing.T) {
	start := monday(t)
	const stopFolder = "Followup/Stop"
	tests := []struct {
		name    string
		inbox   bool // a copy in the INBOX is seen first
		restart bool // the daemon restarts before the Sent copy is filed
		other   bool // the Stop folder holds another message, not this one
	}{
		{name: "Stop copy first"},
		{name: "Stop copy first, restart", restart: true},
		{name: "INBOX copy, then Stop copy", inbox: true},
		{name: "INBOX copy, then Stop copy, restart", inbox: true, restart: true},
		{name: "another message in Stop", other: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, start, seller)
			if err := w.imap.CreateMailbox(seller, stopFolder); err != nil {
				t.Fatal(err)
			}
			cfg := w.config("", seller)
			cfg.Accounts[0].Folders.Stop = stopFolder
			acct := cfg.Accounts[0].Name
			d, stop := w.run(cfg)
			o := offer{id: "offer-sb@seller.test", from: seller, to: []string{client}, cc: []string{seller}, subject: "Коммерческое предложение СБ1"}
			if tc.inbox {
				uid, err := w.imap.AppendAt(seller, "INBOX", o.raw(start), time.Time{})
				if err != nil {
					t.Fatal(err)
				}
				waitSynced(t, d, acct, "INBOX", uid)
			}
			inStop := o
			if tc.other {
				inStop.id, inStop.subject = "other-sb@seller.test", "Коммерческое предложение СБ2"
			}
			uid, err := w.imap.AppendAt(seller, stopFolder, inStop.raw(start), time.Time{}, `\Seen`)
			if err != nil {
				t.Fatal(err)
			}
			waitSynced(t, d, acct, stopFolder, uid)
			if tc.restart {
				stop()
				d, _ = w.run(cfg)
			}
			w.send(o, start)
			w.expect("tracked", o.id)
			if tc.other {
				w.advanceTo(start.Add(3 * 24 * time.Hour))
				w.expect("sent", o.id)
				w.quiet("stopped", 50*time.Millisecond)
				return
			}
			ev := w.expect("stopped", o.id)
			if !strings.Contains(ev.Text, stopFolder) {
				t.Errorf("stopped event %q does not name the Stop folder", ev.Text)
			}
			if f := followUp(t, d, o.id); f.State != store.StateStopped || !strings.Contains(f.Outcome, stopFolder) {
				t.Errorf("state %s outcome %q, want stopped by %s", f.State, f.Outcome, stopFolder)
			}
			w.advanceTo(start.Add(8 * 24 * time.Hour))
			w.quiet("sent", 200*time.Millisecond)
			if n := len(w.smtp.Messages()); n != 0 {
				t.Fatalf("%d reminders for a message the sender put in the Stop folder", n)
			}
		})
	}
}

// TestOptIn: a copy to the sender's own plus address (ivan+fu2d@) tracks a
// message no rule matches, with that delay, and the reminder goes to the
// original recipients only, never to the plus address.
func TestOptIn(t *testing.T) {
	start := monday(t)
	loc := start.Location()
	tests := []struct {
		name, subject string
		to, cc, bcc   []string
		due           time.Time
	}{
		{"Bcc, en", "Meeting notes and next steps", []string{client}, nil, []string{"ivan+fu2d@seller.test"}, time.Date(2026, 11, 25, 10, 0, 0, 0, loc)},
		{"Cc, ru", "Протокол встречи", []string{client}, []string{"ivan+fu1d@seller.test"}, nil, time.Date(2026, 11, 24, 10, 0, 0, 0, loc)},
		{"To, hours, ru", "Документы для подписи", []string{client, "Ivan+FU4h@seller.test"}, nil, nil, start.Add(4 * time.Hour)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, start, seller)
			d, _ := w.run(w.config("", seller))
			o := offer{id: "optin@seller.test", from: seller, to: tc.to, cc: tc.cc, bcc: tc.bcc, subject: tc.subject}
			// The copy to the plus address lands in the sender's INBOX, and
			// is synced before the Sent copy: it is from the sender, never an
			// answer, and it must not hide the Sent copy as "already seen".
			w.deliver(seller, o.raw(start))
			waitStored(t, d, o.id)
			w.send(o, start)
			w.expect("tracked", o.id)
			f := followUp(t, d, o.id)
			if f.Rule != "opt-in" || !f.Due.Equal(tc.due) {
				t.Errorf("rule %s due %s, want opt-in due %s", f.Rule, f.Due.In(loc), tc.due)
			}
			for _, a := range append(slices.Clone(f.To), f.Cc...) {
				if strings.Contains(a.Addr, "+") {
					t.Errorf("follow-up keeps the plus address %s", a.Addr)
				}
			}
			w.advanceTo(tc.due.Add(time.Minute))
			w.expect("sent", o.id)
			w.quiet("answered", 50*time.Millisecond)
			env := w.envelopes()
			if len(env) != 1 || len(env[0]) != 1 || env[0][0] != client {
				t.Fatalf("reminder envelopes %v, want exactly [[%s]]", env, client)
			}
			r := w.remindersTo(client)[0]
			for _, a := range r.Recipients() {
				if a.Addr != client {
					t.Errorf("reminder header names %s", a.Addr)
				}
			}
		})
	}
}

// TestReminderRecipients: never a reminder to a program address, never to
// anyone outside the original To (Cc only with include_cc, Bcc never).
func TestReminderRecipients(t *testing.T) {
	start := monday(t)
	boris, carol := "boris@client.test", "carol@client.test"
	tests := []struct {
		name      string
		to, cc    []string
		includeCc bool
		want      []string // envelope of reminder 1; nil = not tracked
	}{
		{"only noreply: not tracked", []string{"noreply@client.test"}, nil, false, nil},
		{"only mailer-daemon: not tracked", []string{"MAILER-DAEMON@client.test"}, nil, false, nil},
		{"noreply dropped", []string{client, "no-reply@client.test"}, nil, false, []string{client}},
		{"Cc not reminded by default", []string{client}, []string{boris}, false, []string{client}},
		{"Cc with include_cc", []string{client}, []string{boris, "do-not-reply@client.test"}, true, []string{client, boris}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, start, seller)
			cfg := w.config("", seller)
			cfg.Rules[0].IncludeCc = tc.includeCc
			d, _ := w.run(cfg)
			o := offer{id: "offer-r@seller.test", from: seller, to: tc.to, cc: tc.cc, bcc: []string{carol}, subject: "Offer R"}
			w.send(o, start)
			if tc.want == nil {
				w.quiet("tracked", 300*time.Millisecond)
				if fs, _ := d.Store().List(store.Filter{}); len(fs) != 0 {
					t.Fatalf("%d follow-ups of a message to program addresses only", len(fs))
				}
				return
			}
			w.expect("tracked", o.id)
			w.advanceTo(start.Add(3 * 24 * time.Hour))
			w.expect("sent", o.id)
			env := w.envelopes()
			if len(env) != 1 {
				t.Fatalf("%d reminders, want 1", len(env))
			}
			got := slices.Sorted(slices.Values(env[0]))
			want := slices.Sorted(slices.Values(tc.want))
			if !slices.Equal(got, want) {
				t.Errorf("reminder envelope %v, want %v", got, want)
			}
		})
	}
}

// TestNoMailLoop: our reminders are never tracked nor taken for answers,
// and an auto-reply to a reminder is neither an answer nor a reason to
// send: the chain goes on at its own pace and ends.
func TestNoMailLoop(t *testing.T) {
	start := monday(t)
	loc := start.Location()
	w := newWorld(t, start, seller, client)
	d, _ := w.run(w.config("", seller))
	subject := "Коммерческое предложение №60"
	id := "offer-loop@seller.test"
	w.send(offer{id: id, from: seller, to: []string{client}, subject: subject}, start)
	w.expect("tracked", id)
	w.advanceTo(start.Add(3 * 24 * time.Hour))
	w.expect("sent", id)
	ms := w.smtp.Messages()
	if len(ms) != 1 {
		t.Fatalf("%d reminders, want 1", len(ms))
	}
	reminder, err := message.ParseHeader(ms[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	// The client's responder answers the reminder, and a copy of the
	// reminder comes back to the sender's INBOX (a Bcc to self).
	w.deliver(seller, loadReply(t, "reminder-autoreply.en.eml", vars{
		"ID": "loop-1@client.test", "DATE": w.clk.Now().Format(time.RFC1123Z), "FROM": client, "TO": seller,
		"OFFER": id, "REMINDER": reminder.MessageID, "SUBJECT": encWord(subject),
	}))
	w.deliver(seller, ms[0].Data)
	w.expect("autoreply", id)
	w.quiet("sent", 300*time.Millisecond)
	w.quiet("answered", 10*time.Millisecond)
	if n := len(w.smtp.Messages()); n != 1 {
		t.Fatalf("%d reminders after an auto-reply to the reminder, want still 1", n)
	}
	// Step 2 at its own time (Mon 30 Nov), then the chain ends.
	w.advanceTo(time.Date(2026, 11, 30, 10, 0, 0, 0, loc))
	w.expect("sent", id)
	ms = w.smtp.Messages()
	second, _ := message.ParseHeader(ms[len(ms)-1].Data)
	w.deliver(seller, loadReply(t, "reminder-autoreply.en.eml", vars{
		"ID": "loop-2@client.test", "DATE": w.clk.Now().Format(time.RFC1123Z), "FROM": client, "TO": seller,
		"OFFER": id, "REMINDER": second.MessageID, "SUBJECT": encWord(subject),
	}))
	w.expect("autoreply", id)
	w.advanceTo(time.Date(2026, 12, 14, 10, 0, 0, 0, loc))
	w.quiet("sent", 300*time.Millisecond)
	if n := len(w.smtp.Messages()); n != 2 {
		t.Fatalf("%d reminders in all, want 2", n)
	}
	f := followUp(t, d, id)
	if f.State != store.StateFinished {
		t.Errorf("state %s, want finished", f.State)
	}
	if fs, _ := d.Store().List(store.Filter{}); len(fs) != 1 {
		t.Errorf("%d follow-ups, want 1: a reminder or an auto-reply was tracked", len(fs))
	}
}

// TestAnswerSyncedBeforeOffer: INBOX and Sent sync concurrently (every
// first start, lookback), so the client's answer, out-of-office or bounce
// may be processed before its offer is tracked. It must still count when
// the offer is tracked. Each case stores the incoming message first, then
// files the offer.
func TestAnswerSyncedBeforeOffer(t *testing.T) {
	strict := "any_message_from_recipient = false\n"
	start := monday(t)
	loc := start.Location()
	tests := []struct {
		name, file, subject, from, cfg, ret string
		want                                string // answered, bounced, held
	}{
		{name: "In-Reply-To", file: "reply-in-reply-to.en.eml", subject: "Offer P1", want: "answered"},
		{name: "Thread-Index", file: "reply-thread-index.en.eml", subject: "Offer P2", cfg: strict, want: "answered"},
		{name: "Thread-Topic, ru", file: "reply-thread-topic.ru.eml", subject: "Коммерческое предложение П3", cfg: strict, want: "answered"},
		{name: "subject from recipient, ru", file: "reply-subject.ru.eml", subject: "Коммерческое предложение П4", cfg: strict, want: "answered"},
		{name: "colleague, en", file: "colleague.en.eml", subject: "Offer P5", from: "boris@client.test", cfg: strict, want: "answered"},
		{name: "new thread, ru", file: "new-thread.ru.eml", subject: "Коммерческое предложение П6", want: "answered"},
		{name: "RFC 3464 bounce", file: "bounce-postfix.eml", subject: "Offer P7", from: "mailer-daemon@mx.seller.test", want: "bounced"},
		{name: "Mail.ru bounce, no returned headers", file: "bounce-mailru.ru.eml", subject: "Offer P8", from: "mailer-daemon@corp.mail.ru", want: "bounced"},
		{name: "address gone", file: "gone.ru.eml", subject: "Коммерческое предложение П9", want: "bounced"},
		{name: "out-of-office with return date", file: "ooo-return.ru.eml", subject: "Коммерческое предложение П10", ret: "3 декабря", want: "held"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, start, seller)
			d, _ := w.run(w.config(tc.cfg, seller))
			from := tc.from
			if from == "" {
				from = client
			}
			id := "offer-p@seller.test"
			w.clk.Set(start.Add(2 * time.Hour))
			w.deliver(seller, loadReply(t, tc.file, vars{
				"ID": "early@" + domainPart(from), "DATE": start.Add(time.Hour).Format(time.RFC1123Z), "FROM": from, "TO": seller,
				"CLIENT": client, "OFFER": id, "SUBJECT": encWord(tc.subject), "THREAD_INDEX": replyThreadIndex, "RETURN": tc.ret,
			}))
			waitStored(t, d, "early@"+domainPart(from))
			w.send(offer{id: id, from: seller, to: []string{client}, subject: tc.subject, headers: "Thread-Index: " + offerThreadIndex + "\r\n"}, start)
			w.expect("tracked", id)
			w.expect(tc.want, id)
			f := followUp(t, d, id)
			switch tc.want {
			case "answered":
				if f.State != store.StateAnswered {
					t.Errorf("state %s, want answered", f.State)
				}
			case "bounced":
				if f.State != store.StateBounced || !strings.Contains(f.Outcome, client) {
					t.Errorf("state %s outcome %q, want bounced naming %s", f.State, f.Outcome, client)
				}
			case "held":
				if until := time.Date(2026, 12, 4, 9, 0, 0, 0, loc); f.State != store.StateHeld || !f.HeldUntil.Equal(until) {
					t.Errorf("state %s until %s, want held until %s", f.State, f.HeldUntil, until)
				}
				w.advanceTo(time.Date(2026, 12, 4, 8, 0, 0, 0, loc))
				w.quiet("sent", 200*time.Millisecond)
				if n := len(w.smtp.Messages()); n != 0 {
					t.Fatalf("%d reminders to a contact who is away", n)
				}
				return
			}
			w.advanceTo(start.Add(8 * 24 * time.Hour))
			w.quiet("sent", 200*time.Millisecond)
			if n := len(w.smtp.Messages()); n != 0 {
				t.Fatalf("%d reminders", n)
			}
		})
	}
}

// TestNotABounceNorAnswer: a delivery delay (RFC 3464 Action: delayed) and
// a read receipt (RFC 8098) neither stop the chain nor answer the offer.
func TestNotABounceNorAnswer(t *testing.T) {
	start := monday(t)
	tests := []struct{ name, file, subject string }{
		{"delayed DSN", "dsn-delayed.eml", "Offer N1"},
		{"read receipt, ru", "read-receipt.ru.eml", "Коммерческое предложение Н2"},
	}
	w := newWorld(t, start, seller)
	d, _ := w.run(w.config("", seller))
	for i, tc := range tests {
		id, to := fmt.Sprintf("offer-n%d@seller.test", i), fmt.Sprintf("buyer@client%d.test", i)
		w.send(offer{id: id, from: seller, to: []string{to}, subject: tc.subject}, start)
		w.expect("tracked", id)
		w.deliver(seller, loadReply(t, tc.file, vars{
			"ID": fmt.Sprintf("n%d@mx.test", i), "DATE": start.Add(time.Hour).Format(time.RFC1123Z), "FROM": to, "TO": seller,
			"CLIENT": to, "OFFER": id, "SUBJECT": encWord(tc.subject),
		}))
		waitStored(t, d, fmt.Sprintf("n%d@mx.test", i))
	}
	w.quiet("bounced", 200*time.Millisecond)
	w.quiet("answered", 10*time.Millisecond)
	w.advanceTo(start.Add(3 * 24 * time.Hour))
	w.advanceBy(2*time.Minute, 2*time.Second)
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w.t = t
			w.expect("sent", fmt.Sprintf("offer-n%d@seller.test", i))
		})
	}
	w.t = t
}

// firstReminder sends o at start, lets its first step go out (three
// business days later) and returns that reminder's header.
func (w *world) firstReminder(o offer, start time.Time) *message.Record {
	w.t.Helper()
	w.send(o, start)
	w.expect("tracked", o.id)
	w.advanceTo(start.Add(3 * 24 * time.Hour))
	w.expect("sent", o.id)
	reminder, err := message.ParseHeader(w.smtp.Messages()[0].Data)
	if err != nil {
		w.t.Fatal(err)
	}
	return reminder
}

// TestBounceOfReminder: a bounce of one of our reminders (citing the
// reminder, not the offer) stops the chain too.
func TestBounceOfReminder(t *testing.T) {
	start := monday(t)
	loc := start.Location()
	w := newWorld(t, start, seller)
	d, _ := w.run(w.config("", seller))
	id := "offer-rb@seller.test"
	reminder := w.firstReminder(offer{id: id, from: seller, to: []string{client}, subject: "Offer RB"}, start)
	w.deliver(seller, loadReply(t, "bounce-postfix.eml", vars{
		"ID": "rb@mx.test", "DATE": w.clk.Now().Format(time.RFC1123Z), "TO": seller,
		"CLIENT": client, "OFFER": reminder.MessageID, "SUBJECT": encWord("Re: Offer RB"),
	}))
	w.expect("bounced", id)
	if f := followUp(t, d, id); f.State != store.StateBounced || !strings.Contains(f.Outcome, client) {
		t.Errorf("state %s outcome %q", f.State, f.Outcome)
	}
	w.advanceTo(time.Date(2026, 12, 4, 10, 0, 0, 0, loc))
	w.quiet("sent", 200*time.Millisecond)
	if n := len(w.smtp.Messages()); n != 1 {
		t.Fatalf("%d reminders, want only the bounced one", n)
	}
}

// TestReplyToReminder: the client answering one of our reminders (citing
// the reminder, not the offer) ends the chain.
func TestReplyToReminder(t *testing.T) {
	start := monday(t)
	loc := start.Location()
	w := newWorld(t, start, seller)
	d, _ := w.run(w.config("", seller))
	id := "offer-rr@seller.test"
	reminder := w.firstReminder(offer{id: id, from: seller, to: []string{client}, subject: "Коммерческое предложение №70"}, start)
	w.deliver(seller, loadReply(t, "reply-in-reply-to.en.eml", vars{
		"ID": "rr@client.test", "DATE": w.clk.Now().Format(time.RFC1123Z), "FROM": "boris@client.test", "TO": seller,
		"OFFER": reminder.MessageID, "SUBJECT": encWord("Коммерческое предложение №70"),
	}))
	w.expect("answered", id)
	if f := followUp(t, d, id); f.State != store.StateAnswered || !strings.Contains(f.Outcome, "our reminder") {
		t.Errorf("state %s outcome %q, want answered via our reminder", f.State, f.Outcome)
	}
	w.advanceTo(time.Date(2026, 12, 4, 10, 0, 0, 0, loc))
	w.quiet("sent", 200*time.Millisecond)
	if n := len(w.smtp.Messages()); n != 1 {
		t.Fatalf("%d reminders, want 1", n)
	}
}
