package daemon_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/emersion/go-message/charset"

	"followupd/clock"
	"followupd/config"
	"followupd/daemon"
	"followupd/imapwatch/imaptest"
	"followupd/internal/smtptest"
	"followupd/message"
	"followupd/store"
)

// world is the mail world of one end-to-end test: an in-memory IMAP server
// holding every mailbox, an SMTP server delivering into it, a fake clock.
type world struct {
	t      *testing.T
	imap   *imaptest.Server
	smtp   *smtptest.Server
	clk    *clock.Fake
	dir    string
	events chan daemon.Event
	loc    *time.Location
	users  map[string]string
	seen   []daemon.Event // events received but not yet expected
	// proxy, when set (withProxy), stands between the daemon and the IMAP
	// server; the test itself still reaches the server directly (w.imap).
	proxy *imapProxy
}

const pw = "secret"

func newWorld(t *testing.T, start time.Time, users ...string) *world {
	t.Helper()
	w := &world{t: t, clk: clock.NewFake(start), dir: t.TempDir(), events: make(chan daemon.Event, 256), loc: start.Location(), users: map[string]string{}}
	w.imap = imaptest.NewServer(t)
	for _, u := range users {
		if err := w.imap.AddUser(u, pw, "INBOX", "Sent", "Drafts"); err != nil {
			t.Fatal(err)
		}
		w.users[u] = pw
	}
	var err error
	w.smtp, err = smtptest.Start("127.0.0.1:0", smtptest.Options{Users: w.users, OnMessage: func(m smtptest.Message) {
		for _, r := range m.To {
			_ = w.imap.Append(strings.ToLower(r), "INBOX", m.Data)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.smtp.Close() })
	t.Setenv("FOLLOWUPD_TEST_PW", pw)
	return w
}

// withProxy puts an imapProxy between the daemon and the IMAP server, for
// configs built from now on.
func (w *world) withProxy() *imapProxy {
	w.proxy = newIMAPProxy(w.t, w.imap.Addr())
	return w.proxy
}

// config builds a config for the given senders with the standard rules.
func (w *world) config(extra string, senders ...string) *config.Config {
	w.t.Helper()
	addr := w.imap.Addr()
	if w.proxy != nil {
		addr = w.proxy.Addr()
	}
	host, port := splitAddr(addr)
	shost, sport := splitAddr(w.smtp.Addr())
	var b strings.Builder
	fmt.Fprintf(&b, "state_dir = %q\ntime_zone = %q\ncalendar = \"ru\"\nsend_window = \"09:00-18:00\"\n%s\n", w.dir, w.loc.String(), extra)
	for _, s := range senders {
		fmt.Fprintf(&b, `
[[account]]
address = %q
display_name = "Sender"
password_env = "FOLLOWUPD_TEST_PW"
max_per_hour = 3600
imap = { host = %q, port = %s, security = "none" }
smtp = { host = %q, port = %s, security = "none" }
`, s, host, port, shost, sport)
	}
	b.WriteString(`
[[rule]]
name = "offer"
kind = "offer"
match.subject = ['(?i)коммерческое предложение|offer']
auto_reply = "postpone"
  [[rule.step]]
  after = "3 business days"
  template = "first"
  [[rule.step]]
  after = "2 business days"
  template = "second"

[template.first]
body = "Добрый день! Удалось ли посмотреть письмо «{{.Subject}}» от {{.SentDateText}}?"
[template.second]
body = "Hello again about {{.Subject}} (step {{.Step}} of {{.Steps}})."
`)
	path := filepath.Join(w.dir, "followupd.toml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		w.t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		w.t.Fatal(err)
	}
	return cfg
}

// run starts a daemon and waits until it is ready; the returned stop
// function stops it and waits.
func (w *world) run(cfg *config.Config) (*daemon.Daemon, func()) {
	w.t.Helper()
	return w.runWith(cfg, 0)
}

// runWith is run with the daemon's StopGrace set (0: its default), for a
// test that stops the daemon while a send hangs.
func (w *world) runWith(cfg *config.Config, stopGrace time.Duration) (*daemon.Daemon, func()) {
	w.t.Helper()
	d, stop := w.startWith(cfg, stopGrace)
	select {
	case <-d.Ready():
	case <-time.After(10 * time.Second):
		w.t.Fatal("daemon not ready within 10s")
	}
	return d, stop
}

// start is run without waiting for the first sync (the IMAP server may be
// down).
func (w *world) start(cfg *config.Config) (*daemon.Daemon, func()) {
	w.t.Helper()
	return w.startWith(cfg, 0)
}

func (w *world) startWith(cfg *config.Config, stopGrace time.Duration) (*daemon.Daemon, func()) {
	w.t.Helper()
	d, err := daemon.New(cfg, daemon.Options{
		Clock:        w.clk,
		Logger:       slog.New(slog.NewTextHandler(testWriter{w.t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		OnEvent:      func(ev daemon.Event) { w.events <- ev },
		ReplyWait:    50 * time.Millisecond,
		ReconnectMin: 20 * time.Millisecond,
		ReconnectMax: 200 * time.Millisecond,
		StopGrace:    stopGrace,
	})
	if err != nil {
		w.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				w.t.Errorf("daemon.Run: %v", err)
			}
			if err := d.Close(); err != nil {
				w.t.Errorf("closing: %v", err)
			}
		})
	}
	w.t.Cleanup(stop)
	return d, stop
}

// expect waits (real time) for an event of kind about msgid ("" = any);
// events that do not match stay for later expectations.
func (w *world) expect(kind, msgid string) daemon.Event {
	w.t.Helper()
	match := func(ev daemon.Event) bool { return ev.Kind == kind && (msgid == "" || ev.MessageID == msgid) }
	for i, ev := range w.seen {
		if match(ev) {
			w.seen = append(w.seen[:i:i], w.seen[i+1:]...)
			return ev
		}
	}
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev := <-w.events:
			w.t.Logf("event %s id=%d step=%d %s", ev.Kind, ev.FollowUp, ev.Step, ev.Text)
			if match(ev) {
				return ev
			}
			w.seen = append(w.seen, ev)
		case <-timeout:
			w.t.Fatalf("no %q event for %s within 10s", kind, msgid)
		}
	}
}

// quiet asserts no event of kind arrives within d (real time), nor is
// waiting unexpected.
func (w *world) quiet(kind string, d time.Duration) {
	w.t.Helper()
	check := func(ev daemon.Event) {
		if ev.Kind == kind {
			w.t.Fatalf("unexpected %s event: %s", kind, ev.Text)
		}
	}
	for _, ev := range w.seen {
		check(ev)
	}
	timeout := time.After(d)
	for {
		select {
		case ev := <-w.events:
			w.t.Logf("event %s id=%d step=%d %s", ev.Kind, ev.FollowUp, ev.Step, ev.Text)
			check(ev)
			w.seen = append(w.seen, ev)
		case <-timeout:
			return
		}
	}
}

// advanceTo moves the fake clock to t in small steps so every due timer
// fires in order, letting the daemon's goroutines run in between.
func (w *world) advanceTo(t time.Time) {
	for w.clk.Now().Before(t) {
		next := w.clk.Now().Add(time.Hour)
		if next.After(t) {
			next = t
		}
		w.clk.Set(next)
		time.Sleep(2 * time.Millisecond)
	}
}

func (w *world) sendOffer(from, to, id, subject string, date time.Time) {
	w.t.Helper()
	raw := rawMessage(id, "", from, to, subject, "Please find our offer attached.", date, "")
	if err := w.imap.Append(to, "INBOX", raw); err != nil && !strings.Contains(err.Error(), "no such user") {
		w.t.Fatal(err)
	}
	if err := w.imap.Append(from, "Sent", raw, `\Seen`); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) deliver(to string, raw []byte) {
	w.t.Helper()
	if err := w.imap.Append(to, "INBOX", raw); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) remindersTo(addr string) []*message.Record {
	var out []*message.Record
	for _, m := range w.smtp.Messages() {
		for _, r := range m.To {
			if strings.EqualFold(r, addr) {
				rec, err := message.ParseHeader(m.Data)
				if err != nil {
					w.t.Fatalf("parsing reminder: %v", err)
				}
				out = append(out, rec)
			}
		}
	}
	return out
}

func rawMessage(id, inReplyTo, from, to, subject, body string, date time.Time, extra string) []byte {
	var b strings.Builder
	if id != "" {
		fmt.Fprintf(&b, "Message-ID: <%s>\r\n", id)
	}
	if inReplyTo != "" {
		fmt.Fprintf(&b, "In-Reply-To: <%s>\r\nReferences: <%s>\r\n", inReplyTo, inReplyTo)
	}
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: =?utf-8?b?%s?=\r\nDate: %s\r\n%sMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n",
		from, to, b64(subject), date.Format(time.RFC1123Z), extra, body)
	return []byte(b.String())
}

type testWriter struct{ t *testing.T }

func (tw testWriter) Write(p []byte) (int, error) {
	tw.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// Monday 23 Nov 2026, 10:00 Moscow time: a plain working week.
func monday(t *testing.T) time.Time {
	loc, err := time.LoadLocation("Europe/Moscow")
	if err != nil {
		t.Fatal(err)
	}
	return time.Date(2026, 11, 23, 10, 0, 0, 0, loc)
}

const (
	seller = "ivan@seller.test"
	client = "anna@client.test"
)

func TestUnansweredOfferGetsBothReminders(t *testing.T) {
	start := monday(t)
	w := newWorld(t, start, seller, client)
	d, _ := w.run(w.config("", seller))
	w.sendOffer(seller, client, "offer-1@seller.test", "Коммерческое предложение №7", start)
	w.expect("tracked", "offer-1@seller.test")

	// Nothing before three business days (Thursday 10:00).
	w.advanceTo(start.Add(3*24*time.Hour - time.Minute))
	w.quiet("sent", 300*time.Millisecond)
	if n := len(w.remindersTo(client)); n != 0 {
		t.Fatalf("%d reminders before the delay", n)
	}
	w.advanceTo(start.Add(3 * 24 * time.Hour))
	w.expect("sent", "offer-1@seller.test")
	rs := w.remindersTo(client)
	if len(rs) != 1 {
		t.Fatalf("got %d reminders after step 1, want 1", len(rs))
	}
	r := rs[0]
	if got := strings.Join(r.InReplyTo, " "); got != "offer-1@seller.test" {
		t.Errorf("In-Reply-To = %q", got)
	}
	if len(r.References) == 0 || r.References[len(r.References)-1] != "offer-1@seller.test" {
		t.Errorf("References = %q, want to end with the offer", r.References)
	}
	if r.Subject != "Re: Коммерческое предложение №7" {
		t.Errorf("Subject = %q", r.Subject)
	}
	if len(r.From) != 1 || r.From[0].Addr != seller {
		t.Errorf("From = %v", r.From)
	}
	if !r.IsOwn() {
		t.Errorf("reminder %s not recognisable as our own", r.MessageID)
	}
	// Step 2: two business days after step 1 (Thursday) is Monday.
	w.advanceTo(time.Date(2026, 11, 30, 9, 59, 0, 0, start.Location()))
	w.quiet("sent", 300*time.Millisecond)
	w.advanceTo(time.Date(2026, 11, 30, 10, 0, 0, 0, start.Location()))
	w.expect("sent", "offer-1@seller.test")
	if n := len(w.remindersTo(client)); n != 2 {
		t.Fatalf("got %d reminders, want 2", n)
	}
	f, err := d.Store().ByMessageID("offer-1@seller.test")
	if err != nil {
		t.Fatal(err)
	}
	if f.State != store.StateFinished {
		t.Errorf("state %s, want finished", f.State)
	}
	// Our reminders synced back from Sent are neither tracked nor answers.
	w.quiet("answered", 300*time.Millisecond)
	if fs, _ := d.Store().List(store.Filter{}); len(fs) != 1 {
		t.Errorf("%d follow-ups, want 1 (a reminder in Sent was tracked?)", len(fs))
	}
}

func TestAnsweredOfferGetsNone(t *testing.T) {
	start := monday(t)
	w := newWorld(t, start, seller, client)
	d, _ := w.run(w.config("", seller))
	w.sendOffer(seller, client, "offer-2@seller.test", "Offer for 40 valves", start)
	w.expect("tracked", "offer-2@seller.test")
	w.advanceTo(start.Add(24 * time.Hour))
	w.deliver(seller, rawMessage("reply-2@client.test", "offer-2@seller.test", client, seller, "Re: Offer for 40 valves", "We accept.", w.clk.Now(), ""))
	w.expect("answered", "offer-2@seller.test")
	w.advanceTo(start.Add(10 * 24 * time.Hour))
	w.quiet("sent", 300*time.Millisecond)
	if n := len(w.remindersTo(client)); n != 0 {
		t.Fatalf("%d reminders to a client who answered", n)
	}
	f, _ := d.Store().ByMessageID("offer-2@seller.test")
	if f.State != store.StateAnswered {
		t.Errorf("state %s, want answered", f.State)
	}
}

func TestAutoReplyDoesNotStopChain(t *testing.T) {
	start := monday(t)
	w := newWorld(t, start, seller, client)
	w.run(w.config("", seller))
	w.sendOffer(seller, client, "offer-3@seller.test", "Offer: maintenance", start)
	w.expect("tracked", "offer-3@seller.test")
	w.deliver(seller, rawMessage("ooo-3@client.test", "offer-3@seller.test", client, seller, "Automatic reply: Offer: maintenance",
		"I am out of the office with no access to email.", start.Add(time.Minute), "Auto-Submitted: auto-replied\r\n"))
	w.expect("autoreply", "offer-3@seller.test")
	w.advanceTo(start.Add(3 * 24 * time.Hour))
	w.expect("sent", "offer-3@seller.test")
}

func TestReplyWhileDueCancelsSend(t *testing.T) {
	start := monday(t)
	w := newWorld(t, start, seller, client)
	// One reminder an hour: the second due reminder waits for its slot.
	cfg := w.config("", seller)
	cfg.Accounts[0].MaxPerHour = 1
	w.run(cfg)
	w.sendOffer(seller, client, "offer-4a@seller.test", "Offer A", start)
	w.sendOffer(seller, "boris@client.test", "offer-4b@seller.test", "Offer B", start)
	w.expect("tracked", "offer-4a@seller.test")
	w.expect("tracked", "offer-4b@seller.test")
	w.advanceTo(start.Add(3 * 24 * time.Hour))
	first := w.expect("sent", "")
	other, who := "offer-4b@seller.test", "boris@client.test"
	if first.MessageID == other {
		other, who = "offer-4a@seller.test", client
	}
	// While the other is due and waiting for its slot, its client answers.
	w.deliver(seller, rawMessage("reply-4@client.test", other, who, seller, "Re: offer", "Yes, thanks.", w.clk.Now(), ""))
	w.expect("answered", other)
	w.advanceTo(start.Add(3*24*time.Hour + 2*time.Hour))
	w.quiet("sent", 300*time.Millisecond)
	if n := len(w.remindersTo(who)); n != 0 {
		t.Fatalf("%d reminders sent after the reply arrived", n)
	}
}

func TestRestartMidChainNeitherLosesNorRepeats(t *testing.T) {
	start := monday(t)
	w := newWorld(t, start, seller, client)
	cfg := w.config("", seller)
	_, stop := w.run(cfg)
	w.sendOffer(seller, client, "offer-5@seller.test", "Offer five", start)
	w.expect("tracked", "offer-5@seller.test")
	w.advanceTo(start.Add(3 * 24 * time.Hour))
	w.expect("sent", "offer-5@seller.test")
	stop()

	// Restart with the same state: step 2 is due Monday 30th 10:00.
	w.run(w.config("", seller))
	w.quiet("sent", 300*time.Millisecond)
	if n := len(w.remindersTo(client)); n != 1 {
		t.Fatalf("%d reminders after restart, want still 1", n)
	}
	w.advanceTo(time.Date(2026, 11, 30, 10, 0, 0, 0, start.Location()))
	w.expect("sent", "offer-5@seller.test")
	w.advanceTo(time.Date(2026, 12, 10, 10, 0, 0, 0, start.Location()))
	w.quiet("sent", 300*time.Millisecond)
	if n := len(w.remindersTo(client)); n != 2 {
		t.Fatalf("%d reminders in all, want exactly 2", n)
	}
}

func TestTwoAccountsSideBySide(t *testing.T) {
	start := monday(t)
	maria := "maria@seller.test"
	boris := "boris@client.test"
	w := newWorld(t, start, seller, maria, client, boris)
	w.run(w.config("", seller, maria))
	w.sendOffer(seller, client, "offer-6a@seller.test", "Offer to Anna", start)
	w.sendOffer(maria, boris, "offer-6b@seller.test", "Offer to Boris", start)
	w.expect("tracked", "offer-6a@seller.test")
	w.expect("tracked", "offer-6b@seller.test")
	// Boris answers Maria; Anna doesn't answer Ivan.
	w.deliver(maria, rawMessage("reply-6@client.test", "offer-6b@seller.test", boris, maria, "Re: Offer to Boris", "Agreed.", start.Add(time.Hour), ""))
	w.expect("answered", "offer-6b@seller.test")
	w.advanceTo(start.Add(3 * 24 * time.Hour))
	w.expect("sent", "offer-6a@seller.test")
	rs := w.remindersTo(client)
	if len(rs) != 1 || rs[0].From[0].Addr != seller {
		t.Fatalf("reminders to anna: %d (from %v), want 1 from %s", len(rs), rs, seller)
	}
	if n := len(w.remindersTo(boris)); n != 0 {
		t.Fatalf("%d reminders to boris, who answered maria", n)
	}
}

func TestPublicHolidayAndWindow(t *testing.T) {
	// Offer on Wednesday 30 Dec 2026 at 17:30: three business days skip the
	// Russian New Year holidays (1-8 Jan) and the weekend.
	loc, _ := time.LoadLocation("Europe/Moscow")
	start := time.Date(2026, 12, 30, 17, 30, 0, 0, loc)
	w := newWorld(t, start, seller, client)
	w.run(w.config("", seller))
	w.sendOffer(seller, client, "offer-7@seller.test", "Offer for the new year", start)
	ev := w.expect("tracked", "offer-7@seller.test")
	_ = ev
	w.advanceTo(time.Date(2027, 1, 12, 17, 29, 0, 0, loc))
	w.quiet("sent", 300*time.Millisecond)
	if n := len(w.remindersTo(client)); n != 0 {
		t.Fatalf("reminder sent during the holidays")
	}
}
