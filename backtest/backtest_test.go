package backtest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/emersion/go-imap/v2"

	"followupd/backtest"
	"followupd/config"
	"followupd/imapwatch/imaptest"
)

const (
	sales = "sales@seller.example"
	pw    = "secret"
)

var msk = mustLoc("Europe/Moscow")

func mustLoc(name string) *time.Location {
	l, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return l
}

// at is a wall time in Moscow (UTC+3, no DST).
func at(month time.Month, day, hour, min int) time.Time {
	return time.Date(2026, month, day, hour, min, 0, 0, msk)
}

// history is a seeded mailbox: what the sales account sent and received.
type history struct {
	t   testing.TB
	srv *imaptest.Server
}

func newHistory(t testing.TB) *history {
	t.Helper()
	srv := imaptest.NewServer(t)
	if err := srv.AddUser(sales, pw, "INBOX", "Sent", "Drafts"); err != nil {
		t.Fatal(err)
	}
	return &history{t: t, srv: srv}
}

func (h *history) put(mailbox string, date time.Time, hdr string) {
	h.t.Helper()
	h.putBody(mailbox, date, hdr, "Hello.")
}

func (h *history) putBody(mailbox string, date time.Time, hdr, body string) {
	h.t.Helper()
	raw := hdr + "Date: " + date.Format(time.RFC1123Z) + "\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body + "\r\n"
	if _, err := h.srv.AppendAt(sales, mailbox, []byte(raw), date); err != nil {
		h.t.Fatal(err)
	}
}

// offer puts a sent offer to client in Sent.
func (h *history) offer(id, client, subject string, date time.Time) {
	h.put("Sent", date, fmt.Sprintf("From: Sales <%s>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: <%s>\r\n", sales, client, subject, id))
}

// reply puts the client's answer to the offer id in INBOX.
func (h *history) reply(id, client, subject string, date time.Time, extra string) {
	h.put("INBOX", date, fmt.Sprintf("From: <%s>\r\nTo: <%s>\r\nSubject: Re: %s\r\nMessage-ID: <re.%s.%d>\r\nIn-Reply-To: <%s>\r\nReferences: <%s>\r\n%s",
		client, sales, subject, id, date.Unix(), id, id, extra))
}

func (h *history) config(extra string) *config.Config {
	h.t.Helper()
	host, port, _ := net.SplitHostPort(h.srv.Addr())
	dir := h.t.TempDir()
	h.t.Setenv("FOLLOWUPD_BACKTEST_PW", pw)
	toml := fmt.Sprintf(`state_dir = %q
time_zone = "Europe/Moscow"
send_window = "09:00-18:00"
%s
[[account]]
address = %q
display_name = "Sales"
password_env = "FOLLOWUPD_BACKTEST_PW"
imap = { host = %q, port = %s, security = "none" }
smtp = { host = "127.0.0.1", port = 1, security = "none" }

[[rule]]
name = "offer"
kind = "offer"
match.subject = ['(?i)offer']
  [[rule.step]]
  after = "3 business days"
  template = "first"
  [[rule.step]]
  after = "2 business days"
  template = "second"

[template.first]
body = "Did you have a chance to look at {{.Subject}}?"
[template.second]
body = "Hello again about {{.Subject}}."
`, dir, extra, sales, host, port)
	path := filepath.Join(dir, "followupd.toml")
	if err := os.WriteFile(path, []byte(toml), 0o600); err != nil {
		h.t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		h.t.Fatal(err)
	}
	return cfg
}

// snapshot lists every message of the user's folders with UID and flags.
func (h *history) snapshot() []string {
	h.t.Helper()
	c, err := h.srv.Dial(sales)
	if err != nil {
		h.t.Fatal(err)
	}
	defer c.Close()
	var out []string
	for _, mb := range []string{"INBOX", "Sent", "Drafts"} {
		sel, err := c.Select(mb, &imap.SelectOptions{ReadOnly: true}).Wait()
		if err != nil {
			h.t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s uidvalidity=%d exists=%d next=%d", mb, sel.UIDValidity, sel.NumMessages, sel.UIDNext))
		if sel.NumMessages == 0 {
			continue
		}
		var all imap.SeqSet
		all.AddRange(1, 0) // 1:*
		msgs, err := c.Fetch(all, &imap.FetchOptions{UID: true, Flags: true}).Collect()
		if err != nil {
			h.t.Fatal(err)
		}
		for _, m := range msgs {
			out = append(out, fmt.Sprintf("%s uid=%d flags=%v", mb, m.UID, m.Flags))
		}
	}
	return out
}

type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func TestBacktest(t *testing.T) {
	h := newHistory(t)
	until := at(time.June, 1, 12, 0)
	since := until.AddDate(0, 0, -90)

	// Older than -since: not replayed.
	h.offer("old@seller.example", "z@client-z.example", "Offer Z", at(time.February, 2, 10, 0))
	// Never answered: step 1 Thu 19 Mar, step 2 two business days later.
	h.offer("a@seller.example", "a@client-a.example", "Offer A", at(time.March, 16, 10, 0))
	// Answered after 2 days, before step 1 (Thu 2 Apr) falls due.
	h.offer("b@seller.example", "b@client-b.example", "Offer B", at(time.March, 30, 10, 0))
	h.reply("b@seller.example", "b@client-b.example", "Offer B", at(time.April, 1, 10, 0), "")
	// Answered the day after step 1 (Thu 16 Apr): one reminder, answered anyway.
	h.offer("c@seller.example", "c@client-c.example", "Offer C", at(time.April, 13, 10, 0))
	h.reply("c@seller.example", "c@client-c.example", "Offer C", at(time.April, 17, 15, 0), "")
	// An out-of-office without a return date does not stop the chain.
	h.offer("d@seller.example", "d@client-d.example", "Offer D", at(time.April, 20, 10, 0))
	h.reply("d@seller.example", "d@client-d.example", "Offer D", at(time.April, 20, 10, 5),
		"Auto-Submitted: auto-replied\r\nX-Autoreply: yes\r\n")
	// Thu 7 May is a company holiday: step 1 moves to Fri 8 May.
	h.offer("e@seller.example", "e@client-e.example", "Offer E", at(time.May, 4, 10, 0))
	// Not an offer: not tracked.
	h.offer("n@seller.example", "n@client-n.example", "Lunch on Friday?", at(time.May, 5, 10, 0))

	cfg := h.config(`holidays = ["2026-05-07"]`)
	before := h.snapshot()
	res, err := backtest.Run(context.Background(), cfg, backtest.Options{
		Since: since, Until: until,
		Logger: slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	if after := h.snapshot(); !slices.Equal(before, after) {
		t.Errorf("mailbox changed by the backtest:\nbefore %q\nafter  %q", before, after)
	}
	if res.Messages != 9 {
		t.Errorf("replayed %d messages, want 9 (the February offer is before -since)", res.Messages)
	}

	type want struct {
		reminders []time.Time
		outcome   string
		answered  time.Time
		after     bool
	}
	wants := map[string]want{
		"a@seller.example": {reminders: []time.Time{at(time.March, 19, 10, 0), at(time.March, 23, 10, 0)}, outcome: "finished"},
		"b@seller.example": {outcome: "answered", answered: at(time.April, 1, 10, 0)},
		"c@seller.example": {reminders: []time.Time{at(time.April, 16, 10, 0)}, outcome: "answered", answered: at(time.April, 17, 15, 0), after: true},
		"d@seller.example": {reminders: []time.Time{at(time.April, 23, 10, 0), at(time.April, 27, 10, 0)}, outcome: "finished"},
		"e@seller.example": {reminders: []time.Time{at(time.May, 8, 10, 0), at(time.May, 12, 10, 0)}, outcome: "finished"},
	}
	if len(res.Threads) != len(wants) {
		var ids []string
		for _, th := range res.Threads {
			ids = append(ids, th.MessageID)
		}
		t.Fatalf("tracked %v, want the %d offers A-E", ids, len(wants))
	}
	for _, th := range res.Threads {
		w, ok := wants[th.MessageID]
		if !ok {
			t.Errorf("tracked %s, not expected", th.MessageID)
			continue
		}
		var got []time.Time
		for i, r := range th.Reminders {
			got = append(got, r.At)
			if r.Step != i+1 {
				t.Errorf("%s: reminder %d is step %d", th.MessageID, i, r.Step)
			}
		}
		if !slices.EqualFunc(got, w.reminders, time.Time.Equal) {
			t.Errorf("%s: reminders at %v, want %v", th.MessageID, got, w.reminders)
		}
		if th.Outcome != w.outcome || !th.Answered.Equal(w.answered) || th.AnsweredAfterReminder() != w.after {
			t.Errorf("%s: outcome %s answered %v (after reminder %v), want %s %v (%v)", th.MessageID, th.Outcome, th.Answered, th.AnsweredAfterReminder(), w.outcome, w.answered, w.after)
		}
		if th.Rule != "offer" || th.Account != sales {
			t.Errorf("%s: rule %q account %q", th.MessageID, th.Rule, th.Account)
		}
	}

	st := res.Stats()
	if len(st) != 2 {
		t.Fatalf("stats %+v: want one rule/sender row and the total", st)
	}
	s := st[0]
	if s.Tracked != 5 || s.Reminders != 7 || s.Reminded != 4 || s.Answered != 2 || s.AnsweredBefore != 1 || s.AnsweredAfter != 1 || s.Finished != 3 {
		t.Errorf("stats = %+v", s)
	}
	// Medians: B answered after 2 days, C after 4 days 5 hours -> 3.1 days.
	if want := (48*time.Hour + (4*24+5)*time.Hour) / 2; s.MedianAnswer != want {
		t.Errorf("median to answer %v, want %v", s.MedianAnswer, want)
	}
	if want := 29 * time.Hour; s.MedianAfterReminder != want {
		t.Errorf("median after reminder %v, want %v", s.MedianAfterReminder, want)
	}

	var text bytes.Buffer
	if err := res.WriteText(&text, true); err != nil {
		t.Fatal(err)
	}
	t.Logf("report:\n%s", text.String())
	for _, s := range []string{"offer", sales, "Offer C", "answered after"} {
		if !strings.Contains(text.String(), s) {
			t.Errorf("text report lacks %q", s)
		}
	}

	var js bytes.Buffer
	if err := res.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(js.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		var keys []string
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		switch m["type"] {
		case "tracked":
			checkKeys(t, l, keys, "account", "message_id", "rule", "sent", "type")
			lines = append(lines, fmt.Sprintf("tracked %s %s", m["message_id"], m["sent"]))
		case "reminder":
			checkKeys(t, l, keys, "account", "message_id", "rule", "step", "time", "type")
			lines = append(lines, fmt.Sprintf("reminder %s %v %s", m["message_id"], m["step"], m["time"]))
		case "skipped":
			checkKeys(t, l, keys, "message_id", "reason", "step", "time", "type")
			lines = append(lines, fmt.Sprintf("skipped %s %v %s", m["message_id"], m["step"], m["time"]))
		default:
			t.Errorf("line %q: unknown type", l)
		}
	}
	wantLines := []string{
		"tracked a@seller.example 2026-03-16T10:00:00+03:00",
		"reminder a@seller.example 1 2026-03-19T10:00:00+03:00",
		"reminder a@seller.example 2 2026-03-23T10:00:00+03:00",
		"tracked b@seller.example 2026-03-30T10:00:00+03:00",
		"tracked c@seller.example 2026-04-13T10:00:00+03:00",
		"reminder c@seller.example 1 2026-04-16T10:00:00+03:00",
		"tracked d@seller.example 2026-04-20T10:00:00+03:00",
		"reminder d@seller.example 1 2026-04-23T10:00:00+03:00",
		"reminder d@seller.example 2 2026-04-27T10:00:00+03:00",
		"tracked e@seller.example 2026-05-04T10:00:00+03:00",
		"reminder e@seller.example 1 2026-05-08T10:00:00+03:00",
		"reminder e@seller.example 2 2026-05-12T10:00:00+03:00",
	}
	if !slices.Equal(lines, wantLines) {
		t.Errorf("json lines:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(wantLines, "\n"))
	}
}

func checkKeys(t *testing.T, line string, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("line %s: keys %v, want %v", line, got, want)
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
		err  bool
	}{
		{"90d", now.AddDate(0, 0, -90), false},
		{"2w", now.AddDate(0, 0, -14), false},
		{"36h", now.Add(-36 * time.Hour), false},
		{"2026-01-15", time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC), false},
		{"2027-01-15", time.Time{}, true},
		{"0d", time.Time{}, true},
		{"-5d", time.Time{}, true},
		{"ninety days", time.Time{}, true},
		{"", time.Time{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := backtest.ParseSince(tc.in, now, time.UTC)
			if (err != nil) != tc.err || !got.Equal(tc.want) {
				t.Errorf("ParseSince(%q) = %v, %v; want %v (error %v)", tc.in, got, err, tc.want, tc.err)
			}
		})
	}
}

// TestBacktestManualAwayAndSkip: the sender's own follow-up restarts the
// chain, an out-of-office with a return date holds it (rule policy
// postpone), and a step whose template cannot be rendered is reported as
// skipped.
func TestBacktestManualAwayAndSkip(t *testing.T) {
	h := newHistory(t)
	until := at(time.April, 30, 12, 0)

	// Manual follow-up on Wed 4 Mar 15:00: step 1 is due three business
	// days after it (Mon 9 Mar 15:00), not after the offer (Thu 5 Mar).
	h.offer("f@seller.example", "f@client-f.example", "Offer F", at(time.March, 2, 10, 0))
	h.put("Sent", at(time.March, 4, 15, 0), "From: Sales <"+sales+">\r\nTo: <f@client-f.example>\r\nSubject: Re: Offer F\r\nMessage-ID: <f2@seller.example>\r\nIn-Reply-To: <f@seller.example>\r\nReferences: <f@seller.example>\r\n")
	// Away until Wed 25 Mar: nothing is sent before Thu 26 Mar.
	h.offer("g@seller.example", "g@client-g.example", "Offer G", at(time.March, 16, 10, 0))
	h.putBody("INBOX", at(time.March, 16, 10, 5), "From: <g@client-g.example>\r\nTo: <"+sales+">\r\nSubject: Automatic reply: Offer G\r\nMessage-ID: <ooo.g@client-g.example>\r\nIn-Reply-To: <g@seller.example>\r\nAuto-Submitted: auto-replied\r\n",
		"I am out of the office until 25 March 2026.")
	// The invoice rule's template fails at send time.
	h.offer("i@seller.example", "i@client-i.example", "Invoice 17", at(time.April, 6, 10, 0))

	cfg := h.config(`
[[rule]]
name = "invoice"
match.subject = ['(?i)invoice']
  [[rule.step]]
  after = "1 business day"
  template = "broken"
[template.broken]
body = "Invoice {{.Subject}}"
`)
	cfg.Rule("offer").AutoReply = "postpone"
	// A template that passed the config check but fails on a real thread.
	broken := cfg.Templates["broken"]
	broken.BodyT = template.Must(template.New("broken").Parse("{{index .Recipients 5}}"))
	cfg.Templates["broken"] = broken
	res, err := backtest.Run(context.Background(), cfg, backtest.Options{Since: until.AddDate(0, 0, -60), Until: until})
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	if err := res.WriteText(&text, true); err != nil {
		t.Fatal(err)
	}
	t.Logf("report:\n%s", text.String())
	var js bytes.Buffer
	if err := res.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(js.String()), "\n") {
		var m struct {
			Type, Time, Sent, Reason string
			MessageID                string `json:"message_id"`
			Step                     int
		}
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		switch m.Type {
		case "tracked":
			got = append(got, fmt.Sprintf("tracked %s %s", m.MessageID, m.Sent))
		case "reminder":
			got = append(got, fmt.Sprintf("reminder %s %d %s", m.MessageID, m.Step, m.Time))
		case "skipped":
			if !strings.Contains(m.Reason, "rendering reminder") {
				t.Errorf("skip reason %q does not say the template failed", m.Reason)
			}
			got = append(got, fmt.Sprintf("skipped %s %d %s", m.MessageID, m.Step, m.Time))
		}
	}
	want := []string{
		"tracked f@seller.example 2026-03-02T10:00:00+03:00",
		"reminder f@seller.example 1 2026-03-09T15:00:00+03:00",
		"reminder f@seller.example 2 2026-03-11T15:00:00+03:00",
		"tracked g@seller.example 2026-03-16T10:00:00+03:00",
		"reminder g@seller.example 1 2026-03-26T09:00:00+03:00",
		"reminder g@seller.example 2 2026-03-30T09:00:00+03:00",
		"tracked i@seller.example 2026-04-06T10:00:00+03:00",
		"skipped i@seller.example 1 2026-04-07T10:00:00+03:00",
	}
	if !slices.Equal(got, want) {
		t.Errorf("json lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if s := res.Stats(); s[len(s)-1].Skipped != 1 || s[len(s)-1].Reminders != 4 {
		t.Errorf("totals %+v: want 4 reminders and 1 skipped step", s[len(s)-1])
	}
}
