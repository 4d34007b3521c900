package classify

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"followupd/config"
	"followupd/message"
)

const offerID = "20260302101500.4F2A@seller.example"

var msk = time.FixedZone("MSK", 3*3600)

func load(t *testing.T, name string) *message.Record {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rec, _ := message.Parse(f, 0)
	rec.Role = message.RoleInbox
	return rec
}

func re(s string) config.Regexp { return config.Regexp{Regexp: regexp.MustCompile(s)} }

func testConfig() *config.Config {
	return &config.Config{
		Rules: []config.Rule{
			{Name: "invoice", Kind: "invoice", Match: config.Match{
				Subject:          []config.Regexp{re(`(?i)(сч[её]т|invoice)\D{0,20}(?P<number>\d[\d/-]*)`)},
				Attachment:       []string{"Счет*.pdf", "invoice*.pdf"},
				RecipientExclude: []string{"@seller.example"},
			}},
			{Name: "offer", Match: config.Match{
				Subject: []config.Regexp{re(`(?i)коммерческое предложение|commercial offer`)},
			}},
			{Name: "price-body", Kind: "quote", Match: config.Match{
				Body:             []config.Regexp{re(`(?i)прайс`)},
				RecipientInclude: []string{"buyer.example"},
				Header:           map[string]config.Regexp{"x-mailer": re(`Outlook`)},
			}},
		},
	}
}

func newTest(t *testing.T) *Classifier {
	t.Helper()
	c, err := New(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestIncomingFiles(t *testing.T) {
	c := newTest(t)
	tests := []struct {
		file       string
		kind       Kind
		failed     []string
		diag       string // substring
		returnDate string // 2006-01-02, "" = none
		gone       bool
	}{
		{file: "outlook-ooo-ru.eml", kind: KindAutoReply, returnDate: "2026-03-16"},
		{file: "ooo-en.eml", kind: KindAutoReply, returnDate: "2026-03-12"}, // not the quoted 31.03
		{file: "ooo-de.eml", kind: KindAutoReply, returnDate: "2026-03-12"},
		{file: "ticket-ack.eml", kind: KindAutoReply},
		{file: "exchange-ndr.eml", kind: KindBounce, failed: []string{"zakupki@buyer.example"}, diag: "RecipientNotFound"},
		{file: "postfix-bounce.eml", kind: KindBounce, failed: []string{"nobody@buyer.example"}, diag: "User unknown"},
		{file: "postfix-delayed.eml", kind: KindOther},
		{file: "yandex-bounce.eml", kind: KindBounce, failed: []string{"nobody@buyer.example"}, diag: "550 5.7.1"},
		{file: "mailru-bounce.eml", kind: KindBounce, failed: []string{"gone@buyer.example"}},
		{file: "gmail-dsn.eml", kind: KindBounce, failed: []string{"nobody@buyer.example"}, diag: "550 5.1.1"},
		{file: "address-gone.eml", kind: KindBounce, failed: []string{"old.manager@buyer.example"}, gone: true},
		{file: "read-receipt.eml", kind: KindOther},
		{file: "koi8r-reply.eml", kind: KindReply},
		{file: "thread-index-reply.eml", kind: KindReply},
		{file: "colleague-answer.eml", kind: KindReply},
		{file: "gmail-stranger.eml", kind: KindReply},
		{file: "human-ooo-words.eml", kind: KindReply},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			rec := load(t, tc.file)
			v := c.Incoming(rec)
			if v.Kind != tc.kind {
				t.Fatalf("Kind = %s, want %s (reasons %q)", v.Kind, tc.kind, v.Reasons)
			}
			if len(v.Reasons) == 0 {
				t.Error("no reasons")
			}
			if tc.failed != nil && !reflect.DeepEqual(v.FailedRecipients, tc.failed) {
				t.Errorf("FailedRecipients = %q, want %q", v.FailedRecipients, tc.failed)
			}
			if !strings.Contains(v.Diagnostic, tc.diag) {
				t.Errorf("Diagnostic = %q, want it to contain %q", v.Diagnostic, tc.diag)
			}
			var rd string
			if !v.ReturnDate.IsZero() {
				rd = v.ReturnDate.Format("2006-01-02")
			}
			if rd != tc.returnDate {
				t.Errorf("ReturnDate = %q, want %q (reasons %q)", rd, tc.returnDate, v.Reasons)
			}
			if v.AddressGone != tc.gone {
				t.Errorf("AddressGone = %v, want %v", v.AddressGone, tc.gone)
			}
			// A bounce must be threadable to what it bounces.
			if v.Kind == KindBounce && !tc.gone && tc.file != "gmail-dsn.eml" && tc.file != "mailru-bounce.eml" {
				if rec.Report == nil || rec.Report.OriginalMessageID != offerID {
					t.Errorf("Report = %+v, want the original id %s", rec.Report, offerID)
				}
			}
		})
	}
}

func TestNeedsBody(t *testing.T) {
	c := newTest(t)
	for _, name := range []string{"outlook-ooo-ru.eml", "exchange-ndr.eml", "postfix-bounce.eml", "yandex-bounce.eml", "mailru-bounce.eml", "gmail-dsn.eml", "address-gone.eml"} {
		raw, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		h, _ := message.ParseHeader(raw)
		h.Role = message.RoleInbox
		if !c.NeedsBody(h) {
			t.Errorf("%s: NeedsBody = false for a header-only bounce/auto-reply", name)
		}
	}
	reply := load(t, "koi8r-reply.eml")
	reply.HasBody, reply.Body = false, ""
	if c.NeedsBody(reply) {
		t.Error("NeedsBody = true for a plain reply")
	}
	sent := &message.Record{Role: message.RoleSent, To: []message.Address{{Addr: "a@buyer.example"}}}
	if !c.NeedsBody(sent) {
		t.Error("NeedsBody = false for Sent with a body rule")
	}
	c2, _ := New(&config.Config{Rules: testConfig().Rules[:2]})
	if c2.NeedsBody(sent) {
		t.Error("NeedsBody = true for Sent without body rules")
	}
}

func TestReturnDate(t *testing.T) {
	base := time.Date(2026, 3, 2, 10, 0, 0, 0, msk)
	tests := []struct{ body, want string }{
		{"I will be back on 12.03", "2026-03-12"},
		{"I will return on March 12th.", "2026-03-12"},
		{"Back on 12 March 2026", "2026-03-12"},
		{"Я в отпуске, вернусь 12 марта", "2026-03-12"},
		{"В отпуске до 15.03.2027", "2027-03-15"},
		{"Отсутствую с 1 по 14 марта", "2026-03-14"},
		{"Ich bin bis 12.03. nicht im Büro", "2026-03-12"},
		{"Back on 10.01", ""}, // 51 days ago: the start of an absence, not a return
		{"out until 2026-03-20", "2026-03-20"},
		{"call +7 495 123.45.67", ""},
		{"I am away", ""},
		{"back on 31.02", ""},
		{"out from 2 March to 9 March", "2026-03-09"},
		{"[dec] back on 10.01", "2027-01-10"},
		{"[dec] вернусь 12 января", "2027-01-12"},
	}
	for _, tc := range tests {
		rec := &message.Record{Date: base, Body: tc.body}
		if strings.HasPrefix(tc.body, "[dec]") { // a December auto-reply: a January date is next year
			rec.Date = time.Date(2026, 12, 20, 10, 0, 0, 0, msk)
		}
		d, _ := returnDate(rec)
		var got string
		if !d.IsZero() {
			got = d.Format("2006-01-02")
		}
		if got != tc.want {
			t.Errorf("returnDate(%q) = %q, want %q", tc.body, got, tc.want)
		}
	}
}

func TestSent(t *testing.T) {
	c := newTest(t)
	acct := &config.Account{Name: "ivan", Address: "Ivan@seller.example"}
	to := []message.Address{{Addr: "zakupki@buyer.example"}}
	date := time.Date(2026, 3, 2, 10, 0, 0, 0, msk)
	tests := []struct {
		name    string
		rec     message.Record
		tracked bool
		rule    string
		vars    map[string]string
		optIn   *config.Delay
	}{
		{name: "offer by subject", rec: message.Record{To: to, Subject: "Коммерческое предложение № 154"}, tracked: true, rule: "offer"},
		{name: "invoice with Cyrillic attachment", rec: message.Record{To: to, Subject: "Счет № 12/3 на оплату",
			Attachments: []message.Attachment{{Filename: "СЧЕТ №12.PDF", ContentType: "application/pdf"}}},
			tracked: true, rule: "invoice", vars: map[string]string{"number": "12/3"}},
		{name: "invoice without attachment falls to no rule", rec: message.Record{To: to, Subject: "Счет № 12"}},
		{name: "invoice to a colleague excluded", rec: message.Record{To: []message.Address{{Addr: "boss@seller.example"}}, Subject: "Счет 12",
			Attachments: []message.Attachment{{Filename: "Счет 12.pdf"}}}},
		{name: "colleague in Cc does not exclude", rec: message.Record{To: to, Cc: []message.Address{{Addr: "boss@seller.example"}}, Subject: "Invoice 7",
			Attachments: []message.Attachment{{Filename: "invoice-7.pdf"}}}, tracked: true, rule: "invoice", vars: map[string]string{"number": "7"}},
		{name: "body rule needs body, header and recipient", rec: message.Record{To: to, Subject: "цены", HasBody: true, Body: "Высылаю прайс",
			Headers: map[string]string{"X-Mailer": "Microsoft Outlook 16.0"}}, tracked: true, rule: "price-body"},
		{name: "body rule without header", rec: message.Record{To: to, Subject: "цены", HasBody: true, Body: "Высылаю прайс"}},
		{name: "body rule without body read", rec: message.Record{To: to, Subject: "цены", Headers: map[string]string{"X-Mailer": "Outlook"}}},
		{name: "own reminder never", rec: message.Record{To: to, MessageID: message.OwnPrefix + "1.1.abc@seller.example", Subject: "Re: Коммерческое предложение"}},
		{name: "own header never", rec: message.Record{To: to, Subject: "Коммерческое предложение", Headers: map[string]string{"X-Followupd": "id=1; step=1"}}},
		{name: "no To never", rec: message.Record{Bcc: to, Subject: "Коммерческое предложение"}},
		{name: "auto-submitted never", rec: message.Record{To: to, Subject: "Коммерческое предложение", Headers: map[string]string{"Auto-Submitted": "auto-generated"}}},
		{name: "auto-submitted no is fine", rec: message.Record{To: to, Subject: "Коммерческое предложение", Headers: map[string]string{"Auto-Submitted": "no"}}, tracked: true, rule: "offer"},
		{name: "opt-in days without rule", rec: message.Record{To: to, Bcc: []message.Address{{Addr: "ivan+fu3d@seller.example"}}, Subject: "hello"},
			tracked: true, rule: OptInRule, optIn: &config.Delay{BusinessDays: 3}},
		{name: "opt-in hours with rule", rec: message.Record{To: to, Cc: []message.Address{{Addr: "ivan+fu36h@seller.example"}}, Subject: "Commercial offer"},
			tracked: true, rule: "offer", optIn: &config.Delay{Duration: 36 * time.Hour}},
		{name: "someone else's plus address", rec: message.Record{To: to, Cc: []message.Address{{Addr: "petr+fu3d@seller.example"}}, Subject: "hello"}},
		{name: "plus address other domain", rec: message.Record{To: to, Cc: []message.Address{{Addr: "ivan+fu3d@other.example"}}, Subject: "hello"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := tc.rec
			rec.Role, rec.Date = message.RoleSent, date
			if rec.MessageID == "" {
				rec.MessageID = "m.1@seller.example"
			}
			v := c.Sent(acct, &rec)
			if v.Tracked != tc.tracked || v.Rule != tc.rule {
				t.Fatalf("Tracked=%v Rule=%q, want %v %q (reasons %q)", v.Tracked, v.Rule, tc.tracked, tc.rule, v.Reasons)
			}
			if !reflect.DeepEqual(v.Vars, tc.vars) {
				t.Errorf("Vars = %v, want %v", v.Vars, tc.vars)
			}
			if !reflect.DeepEqual(v.OptIn, tc.optIn) {
				t.Errorf("OptIn = %+v, want %+v", v.OptIn, tc.optIn)
			}
			if len(v.Reasons) == 0 {
				t.Error("no reasons")
			}
			if tc.tracked && tc.rule == "offer" && v.Kind != "offer" {
				t.Errorf("Kind = %q, want the rule name for a rule without kind", v.Kind)
			}
		})
	}
}

func TestAnswers(t *testing.T) {
	c := newTest(t)
	sentAt := time.Date(2026, 3, 2, 10, 15, 0, 0, msk)
	cand := Candidate{MessageID: offerID, Sent: []string{"followupd.1.1.aa@seller.example"},
		To: []message.Address{{Addr: "zakupki@buyer.example"}, {Addr: "john.smith@buyer.example"}}, Subject: "Commercial offer 154", SentAt: sentAt}
	gcand := cand
	gcand.To = []message.Address{{Addr: "client@gmail.com"}}
	// An Outlook offer: Thread-Index root of 22 bytes; a reply adds 5.
	ticand := cand
	ticand.ThreadIndex = "AdsZ9Kx0QUJDREVGR0hJSktMTU5PUA=="
	tiReply := map[string]string{"Thread-Index": "AdsZ9Kx0QUJDREVGR0hJSktMTU5PUAAAAAEC"}
	tiOther := map[string]string{"Thread-Index": "AdsZ9Kx0WldYWVpbXF1eX2BhYmNkZQAAAAEC"}
	all := AnswerOptions{ColleagueAnswers: true, AnyMessageFromRecipient: true}
	strict := AnswerOptions{}
	day := sentAt.Add(24 * time.Hour)
	from := func(a string) []message.Address { return []message.Address{{Addr: a}} }
	tests := []struct {
		name string
		in   message.Record
		cand Candidate
		opt  AnswerOptions
		want bool
	}{
		{"threaded", message.Record{InReplyTo: []string{offerID}, From: from("x@other.example"), Date: day}, cand, strict, true},
		{"threaded via References to our reminder", message.Record{References: []string{"a@b", "followupd.1.1.aa@seller.example"}, From: from("x@other.example"), Date: day}, cand, strict, true},
		{"thread-index only, same subject from recipient", message.Record{Subject: "RE: Commercial offer 154", From: from("zakupki@buyer.example"), Date: day}, cand, strict, true},
		{"thread-index root, edited subject, not a recipient", message.Record{Subject: "RE: delivery terms", Headers: tiReply, From: from("x@other.example"), Date: day}, ticand, strict, true},
		{"thread-index of another conversation", message.Record{Subject: "RE: delivery terms", Headers: tiOther, From: from("x@other.example"), Date: day}, ticand, strict, false},
		{"thread-index garbage", message.Record{Subject: "RE: delivery terms", Headers: map[string]string{"Thread-Index": "%%%"}, From: from("x@other.example"), Date: day}, ticand, strict, false},
		{"thread-topic keeps the subject from recipient", message.Record{Subject: "RE: вопросы", Headers: map[string]string{"Thread-Topic": "Commercial offer 154"}, From: from("zakupki@buyer.example"), Date: day}, cand, strict, true},
		{"thread-topic from a stranger", message.Record{Subject: "RE: вопросы", Headers: map[string]string{"Thread-Topic": "Commercial offer 154"}, From: from("x@other.example"), Date: day}, cand, all, false},
		{"subject from recipient before the offer", message.Record{Subject: "Commercial offer 154", From: from("zakupki@buyer.example"), Date: sentAt.Add(-2 * time.Hour)}, cand, strict, false},
		{"subject from recipient after the window", message.Record{Subject: "Re: Commercial offer 154", From: from("zakupki@buyer.example"), Date: sentAt.Add(90 * 24 * time.Hour)}, cand, strict, false},
		{"colleague at recipient domain", message.Record{Subject: "Re: Commercial offer 154", From: from("maria@buyer.example"), Date: day}, cand, all, true},
		{"colleague not allowed", message.Record{Subject: "Re: Commercial offer 154", From: from("maria@buyer.example"), Date: day}, cand, strict, false},
		{"gmail stranger is no colleague", message.Record{Subject: "Re: Commercial offer 154", From: from("someone@gmail.com"), Date: day}, gcand, all, false},
		{"extra public domain", message.Record{Subject: "Re: Commercial offer 154", From: from("x@corp-public.example")}, Candidate{MessageID: offerID, To: from("y@corp-public.example"), Subject: "Commercial offer 154", SentAt: sentAt},
			AnswerOptions{ColleagueAnswers: true, PublicDomains: []string{"corp-public.example"}}, false},
		{"any message from recipient", message.Record{Subject: "other topic", From: from("john.smith@buyer.example"), Date: day}, cand, all, true},
		{"any message from recipient off", message.Record{Subject: "other topic", From: from("john.smith@buyer.example"), Date: day}, cand, strict, false},
		{"own message never", message.Record{MessageID: "followupd.1.2.bb@seller.example", InReplyTo: []string{offerID}, From: from("zakupki@buyer.example"), Date: day}, cand, all, false},
		{"own header never", message.Record{Headers: map[string]string{"X-Followupd": "id=1"}, InReplyTo: []string{offerID}, Date: day}, cand, all, false},
		{"sent folder never", message.Record{Role: message.RoleSent, InReplyTo: []string{offerID}, From: from("zakupki@buyer.example"), Date: day}, cand, all, false},
		{"drafts never", message.Record{Role: message.RoleDrafts, InReplyTo: []string{offerID}, Date: day}, cand, all, false},
		{"unrelated stranger", message.Record{Subject: "hello", From: from("x@other.example"), Date: day}, cand, all, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			if in.Role == 0 {
				in.Role = message.RoleInbox
			}
			ok, why := c.Answers(&in, tc.cand, tc.opt)
			if ok != tc.want {
				t.Errorf("Answers = %v (%s), want %v", ok, why, tc.want)
			}
			if why == "" {
				t.Error("no reason")
			}
		})
	}
	// The testdata replies, as the daemon sees them.
	for name, want := range map[string]bool{"koi8r-reply.eml": true, "thread-index-reply.eml": true, "colleague-answer.eml": true, "gmail-stranger.eml": false} {
		ok, why := c.Answers(load(t, name), cand, all)
		if ok != want {
			t.Errorf("%s: Answers = %v (%s), want %v", name, ok, why, want)
		}
	}
}

func TestPublicDomain(t *testing.T) {
	c, err := New(&config.Config{PublicDomains: []string{"@Corp-Free.example"}})
	if err != nil {
		t.Fatal(err)
	}
	for d, want := range map[string]bool{"gmail.com": true, "Mail.RU": true, "corp-free.example": true, "buyer.example": false, "": false} {
		if got := c.PublicDomain(d); got != want {
			t.Errorf("PublicDomain(%q) = %v, want %v", d, got, want)
		}
	}
}

func TestAutomaticAddress(t *testing.T) {
	for addr, want := range map[string]bool{
		"noreply@client.example": true, "no-reply@client.example": true, "No_Reply@client.example": true,
		"noreply-billing@client.example": true, "do-not-reply@client.example": true, "DoNotReply@client.example": true,
		"mailer-daemon@client.example": true, "MAILER-DAEMON@client.example": true, "bounces+123@client.example": true,
		"anna@client.example": false, "norbert@client.example": false, "reply@client.example": false,
		"postmaster@client.example": false, "noreply": false, "": false,
	} {
		if got := AutomaticAddress(addr); got != want {
			t.Errorf("AutomaticAddress(%q) = %v, want %v", addr, got, want)
		}
	}
	c := newTest(t)
	rec := &message.Record{Role: message.RoleSent, Subject: "Commercial offer 154", To: []message.Address{{Addr: "noreply@buyer.example"}}}
	if v := c.Sent(nil, rec); v.Tracked || !strings.Contains(strings.Join(v.Reasons, ";"), "automatic address") {
		t.Errorf("offer to noreply@: %+v, want untracked as automatic", v)
	}
	rec.To = append(rec.To, message.Address{Addr: "anna@buyer.example"})
	if v := c.Sent(nil, rec); !v.Tracked {
		t.Errorf("offer to noreply@ and a person: %+v, want tracked", v)
	}
}

func TestManualFollowUp(t *testing.T) {
	c := newTest(t)
	sentAt := time.Date(2026, 3, 2, 10, 15, 0, 0, msk)
	cand := Candidate{MessageID: offerID, Sent: []string{"followupd.1.1.aa@seller.example"}, To: []message.Address{{Addr: "zakupki@buyer.example"}}, Subject: "Commercial offer 154", SentAt: sentAt}
	later := sentAt.Add(48 * time.Hour)
	tests := []struct {
		name string
		rec  message.Record
		want bool
	}{
		{"reply in thread", message.Record{MessageID: "m2@seller.example", InReplyTo: []string{offerID}, Date: later}, true},
		{"reply to our reminder", message.Record{MessageID: "m2@seller.example", References: []string{"followupd.1.1.aa@seller.example"}, Date: later}, true},
		{"same subject and recipient", message.Record{MessageID: "m2@seller.example", Subject: "Re: Commercial offer 154", To: []message.Address{{Addr: "Zakupki@buyer.example"}}, Date: later}, true},
		{"same subject, other recipient", message.Record{MessageID: "m2@seller.example", Subject: "Commercial offer 154", To: []message.Address{{Addr: "x@other.example"}}, Date: later}, false},
		{"the tracked message itself", message.Record{MessageID: offerID, Subject: "Commercial offer 154", To: cand.To, Date: sentAt}, false},
		{"our reminder is not manual", message.Record{MessageID: "followupd.1.1.aa@seller.example", InReplyTo: []string{offerID}, Date: later}, false},
		{"earlier message", message.Record{MessageID: "m0@seller.example", Subject: "Commercial offer 154", To: cand.To, Date: sentAt.Add(-time.Hour)}, false},
	}
	for _, tc := range tests {
		rec := tc.rec
		rec.Role = message.RoleSent
		if got := c.ManualFollowUp(&rec, cand); got != tc.want {
			t.Errorf("%s: ManualFollowUp = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestNew(t *testing.T) {
	if _, err := New(nil); err == nil {
		t.Error("New(nil) succeeded")
	}
	cfg := &config.Config{Rules: []config.Rule{{Name: "bad", Match: config.Match{Subject: []config.Regexp{{}}}}}}
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), `"bad"`) {
		t.Errorf("New with an empty regexp: err = %v", err)
	}
	for k, want := range map[Kind]string{KindOther: "other", KindReply: "reply", KindAutoReply: "autoreply", KindBounce: "bounce"} {
		if k.String() != want {
			t.Errorf("%d.String() = %q", k, k.String())
		}
	}
	_ = slices.Contains[[]string]
}
