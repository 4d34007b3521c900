package daemon

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"followupd/clock"
	"followupd/config"
	"followupd/imapwatch/imaptest"
	"followupd/internal/smtptest"
	"followupd/message"
	"followupd/store"
)

// rig runs one daemon against an in-memory IMAP server and a recording
// SMTP server, with a config file on disk that tests rewrite and reload.
type rig struct {
	t      *testing.T
	imap   *imaptest.Server
	smtp   *smtptest.Server
	clk    *clock.Fake
	dir    string
	path   string // the config file
	pwFile string
	logs   *syncBuffer
	notes  *notes
	events chan Event
	seen   []Event
	d      *Daemon
	run    chan error // Run's result
	cancel context.CancelFunc
}

const rigPW = "secret"

// Monday 23 Nov 2026, 10:00 Moscow time: a plain working week.
func rigStart(t *testing.T) time.Time {
	loc, err := time.LoadLocation("Europe/Moscow")
	if err != nil {
		t.Fatal(err)
	}
	return time.Date(2026, 11, 23, 10, 0, 0, 0, loc)
}

func newRig(t *testing.T, users ...string) *rig {
	t.Helper()
	r := &rig{t: t, clk: clock.NewFake(rigStart(t)), dir: t.TempDir(), logs: &syncBuffer{}, notes: &notes{}, events: make(chan Event, 256)}
	r.path = filepath.Join(r.dir, "followupd.toml")
	r.pwFile = filepath.Join(r.dir, "pw")
	if err := os.WriteFile(r.pwFile, []byte(rigPW+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r.imap = imaptest.NewServer(t)
	pws := map[string]string{}
	for _, u := range users {
		if err := r.imap.AddUser(u, rigPW, "INBOX", "Sent", "Drafts", "Stop"); err != nil {
			t.Fatal(err)
		}
		pws[u] = rigPW
	}
	var err error
	r.smtp, err = smtptest.Start("127.0.0.1:0", smtptest.Options{Users: pws})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.smtp.Close() })
	return r
}

// idleDaemon is a Daemon for seller's account (with a Stop folder when
// stop is set) made from a rig's config but not run: for tests that drive
// its sink and store directly.
func idleDaemon(t *testing.T, seller string, stop bool) (*rig, *config.Config, *Daemon) {
	t.Helper()
	r := newRig(t, seller)
	r.write("Hello", r.account(seller, ""))
	cfg := r.load()
	if stop {
		cfg.Accounts[0].Folders.Stop = "Stop"
	}
	d, err := New(cfg, Options{Clock: r.clk, Logger: slog.New(slog.NewTextHandler(r.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return r, cfg, d
}

// account is one [[account]] table; extra goes inside it.
func (r *rig) account(addr, extra string) string {
	host, port, _ := net.SplitHostPort(r.imap.Addr())
	shost, sport, _ := net.SplitHostPort(r.smtp.Addr())
	return fmt.Sprintf(`
[[account]]
address = %q
display_name = "Sender"
password_file = %q
max_per_hour = 3600
imap = { host = %q, port = %s, security = "none" }
smtp = { host = %q, port = %s, security = "none" }
%s
`, addr, r.pwFile, host, port, shost, sport, extra)
}

// write writes the config file: top-level settings, the accounts, and one
// offer rule whose first reminder says body.
func (r *rig) write(body string, accounts ...string) {
	r.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "state_dir = %q\ntime_zone = \"Europe/Moscow\"\ncalendar = \"ru\"\nsend_window = \"09:00-18:00\"\n", r.dir)
	for _, a := range accounts {
		b.WriteString(a)
	}
	fmt.Fprintf(&b, `
[[rule]]
name = "offer"
kind = "offer"
match.subject = ['(?i)offer']
  [[rule.step]]
  after = "3 business days"
  template = "first"

[template.first]
body = %q
`, body)
	if err := os.WriteFile(r.path, []byte(b.String()), 0o600); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) load() *config.Config {
	r.t.Helper()
	cfg, err := config.Load(r.path)
	if err != nil {
		r.t.Fatal(err)
	}
	return cfg
}

// start runs a daemon on the current file and waits until it is ready.
func (r *rig) start(opt Options) {
	r.t.Helper()
	opt.Clock = r.clk
	opt.Logger = slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opt.OnEvent = func(ev Event) { r.events <- ev }
	opt.Notify = r.notes.add
	opt.ReplyWait = 50 * time.Millisecond
	opt.ReconnectMin, opt.ReconnectMax = 20*time.Millisecond, 200*time.Millisecond
	d, err := New(r.load(), opt)
	if err != nil {
		r.t.Fatal(err)
	}
	r.d = d
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.run = make(chan error, 1)
	go func() { r.run <- d.Run(ctx) }()
	select {
	case <-d.Ready():
	case <-time.After(10 * time.Second):
		r.t.Fatal("daemon not ready within 10s")
	}
	r.t.Cleanup(func() {
		r.stop()
		if r.t.Failed() {
			r.t.Log(r.logs.String())
		}
	})
}

// stop cancels Run and returns how long it took to return.
func (r *rig) stop() time.Duration {
	if r.cancel == nil {
		return 0
	}
	t0 := time.Now()
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.run:
		if err != nil {
			r.t.Errorf("Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		r.t.Fatal("Run did not return within 20s of cancel")
	}
	took := time.Since(t0)
	if err := r.d.Close(); err != nil {
		r.t.Errorf("Close: %v", err)
	}
	return took
}

func (r *rig) acct(name string) *account { return r.d.current().accounts[name] }

// offer puts an offer from sender to client into sender's Sent.
func (r *rig) offer(from, to, id string) {
	r.t.Helper()
	raw := fmt.Sprintf("Message-ID: <%s>\r\nFrom: %s\r\nTo: %s\r\nSubject: Offer %s\r\nDate: %s\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nOur offer.\r\n",
		id, from, to, id, r.clk.Now().Format(time.RFC1123Z))
	if err := r.imap.Append(from, "Sent", []byte(raw), `\Seen`); err != nil {
		r.t.Fatal(err)
	}
}

// expect waits (real time) for an event of kind about msgid.
func (r *rig) expect(kind, msgid string) Event {
	r.t.Helper()
	for i, ev := range r.seen {
		if ev.Kind == kind && ev.MessageID == msgid {
			r.seen = append(r.seen[:i:i], r.seen[i+1:]...)
			return ev
		}
	}
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev := <-r.events:
			if ev.Kind == kind && ev.MessageID == msgid {
				return ev
			}
			r.seen = append(r.seen, ev)
		case <-timeout:
			r.t.Fatalf("no %q event for %s within 10s", kind, msgid)
		}
	}
}

// advance moves the fake clock in hour steps to t.
func (r *rig) advance(t time.Time) {
	for r.clk.Now().Before(t) {
		next := r.clk.Now().Add(time.Hour)
		if next.After(t) {
			next = t
		}
		r.clk.Set(next)
		time.Sleep(2 * time.Millisecond)
	}
}

// reminderBody returns the text of the last reminder sent to addr.
func (r *rig) reminderBody(addr string) string {
	r.t.Helper()
	var last []byte
	for _, m := range r.smtp.Messages() {
		for _, to := range m.To {
			if strings.EqualFold(to, addr) {
				last = m.Data
			}
		}
	}
	if last == nil {
		r.t.Fatalf("no reminder to %s", addr)
	}
	rec, err := message.Parse(bytes.NewReader(last), 1<<20)
	if err != nil {
		r.t.Fatal(err)
	}
	return rec.Body
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// notes records sd_notify states.
type notes struct {
	mu sync.Mutex
	l  []string
}

func (n *notes) add(s string) error {
	n.mu.Lock()
	n.l = append(n.l, s)
	n.mu.Unlock()
	return nil
}

func (n *notes) all() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.l...)
}

// index is the position of the first state at or after from that has
// prefix, or -1.
func (n *notes) index(from int, prefix string) int {
	for i, s := range n.all() {
		if i >= from && strings.HasPrefix(s, prefix) {
			return i
		}
	}
	return -1
}

const (
	ivan   = "ivan@seller.test"
	petr   = "petr@seller.test"
	olga   = "olga@seller.test"
	client = "anna@client.test"
)

func TestReloadKeepsUnchangedAccounts(t *testing.T) {
	r := newRig(t, ivan, petr, olga, client)
	r.write("first version {{.Subject}}", r.account(ivan, ""), r.account(petr, ""))
	r.start(Options{})
	if i := r.notes.index(0, "READY=1"); i < 0 {
		t.Fatalf("no READY=1 after the first sync; notes %q", r.notes.all())
	}
	oldIvan, oldPetr := r.acct(ivan), r.acct(petr)

	// ivan unchanged; petr watches a Stop folder now (an IMAP change);
	// olga is new; the template changed.
	r.write("second version {{.Subject}}", r.account(ivan, ""), r.account(petr, `folders = { stop = "Stop" }`), r.account(olga, ""))
	before := len(r.notes.all())
	if err := r.d.ReloadFile(r.path); err != nil {
		t.Fatalf("ReloadFile: %v", err)
	}
	rl := r.notes.index(before, "RELOADING=1")
	if rl < 0 || r.notes.index(rl, "READY=1") < 0 {
		t.Errorf("want RELOADING=1 then READY=1 around the reload; notes %q", r.notes.all()[before:])
	}
	newIvan, newPetr, newOlga := r.acct(ivan), r.acct(petr), r.acct(olga)
	if newIvan.watcher != oldIvan.watcher {
		t.Error("unchanged account's watcher was replaced")
	}
	for _, fs := range newIvan.watcher.Status() {
		if fs.Reconnects != 0 || !fs.Connected {
			t.Errorf("unchanged account's %s: connected %v, %d reconnects", fs.Mailbox, fs.Connected, fs.Reconnects)
		}
	}
	if newPetr.watcher == oldPetr.watcher {
		t.Error("changed account kept its watcher")
	}
	select {
	case <-oldPetr.watchDone:
	default:
		t.Error("changed account's old watcher still running")
	}
	if newOlga == nil {
		t.Fatal("added account missing after reload")
	}
	for _, a := range []*account{newPetr, newOlga} {
		select {
		case <-a.synced:
		case <-time.After(10 * time.Second):
			t.Fatalf("account %s not synced after reload", a.cfg.Name)
		}
	}
	if !strings.Contains(r.logs.String(), "configuration reloaded") {
		t.Error("no \"configuration reloaded\" log line")
	}

	// The kept watcher feeds the reloaded account; the new template applies.
	r.offer(ivan, client, "offer-1@seller.test")
	r.expect("tracked", "offer-1@seller.test")
	r.offer(olga, client, "offer-2@seller.test")
	r.expect("tracked", "offer-2@seller.test")
	r.advance(r.clk.Now().Add(3 * 24 * time.Hour))
	r.expect("sent", "offer-1@seller.test")
	r.expect("sent", "offer-2@seller.test")
	if body := r.reminderBody(client); !strings.Contains(body, "second version") {
		t.Errorf("reminder after reload = %q, want the new template", body)
	}

	// Removing petr stops its watcher.
	r.write("second version {{.Subject}}", r.account(ivan, ""), r.account(olga, ""))
	if err := r.d.ReloadFile(r.path); err != nil {
		t.Fatalf("ReloadFile: %v", err)
	}
	if r.acct(petr) != nil {
		t.Error("removed account still configured")
	}
	select {
	case <-newPetr.watchDone:
	default:
		t.Error("removed account's watcher still running")
	}
	if r.acct(ivan).watcher != oldIvan.watcher {
		t.Error("unchanged account's watcher replaced by the second reload")
	}
}

func TestReloadRejectsBrokenConfig(t *testing.T) {
	r := newRig(t, ivan, client)
	r.write("first version {{.Subject}}", r.account(ivan, ""))
	r.start(Options{})
	cfg, w := r.d.Config(), r.acct(ivan).watcher

	// Two problems on two lines: both must be logged with FILE:LINE.
	good, err := os.ReadFile(r.path)
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(good), `send_window = "09:00-18:00"`, `send_window = "25:00-18:00"`, 1)
	broken = strings.Replace(broken, `max_per_hour = 3600`, "max_per_hour = 3600\nno_such_key = 1", 1)
	if err := os.WriteFile(r.path, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.d.ReloadFile(r.path); err == nil {
		t.Fatal("ReloadFile accepted a broken config")
	}
	logs := r.logs.String()
	for _, key := range []string{"send_window", "no_such_key"} {
		re := regexp.MustCompile(regexp.QuoteMeta(r.path) + `:\d+: [^"]*` + key)
		if !re.MatchString(logs) {
			t.Errorf("no FILE:LINE problem for %s in the log", key)
		}
	}
	if !strings.Contains(logs, "the running one stays") {
		t.Error("rejection not logged")
	}
	if r.d.Config() != cfg || r.acct(ivan).watcher != w {
		t.Error("a rejected config changed the running daemon")
	}

	// A file that parses but cannot be applied (password unreadable)
	// is rejected as well.
	r.write("second version {{.Subject}}", strings.Replace(r.account(ivan, ""), r.pwFile, r.pwFile+".missing", 1))
	if err := r.d.ReloadFile(r.path); err == nil {
		t.Fatal("ReloadFile accepted a config whose password cannot be read")
	}
	if r.d.Config() != cfg {
		t.Error("an unusable config replaced the running one")
	}

	// The old configuration keeps working.
	r.offer(ivan, client, "offer-1@seller.test")
	r.expect("tracked", "offer-1@seller.test")
	r.advance(r.clk.Now().Add(3 * 24 * time.Hour))
	r.expect("sent", "offer-1@seller.test")
	if body := r.reminderBody(client); !strings.Contains(body, "first version") {
		t.Errorf("reminder = %q, want the old template", body)
	}
}

// dueStep tracks an offer and makes its step due while SMTP holds DATA.
func dueHeldStep(t *testing.T, r *rig) (release func()) {
	t.Helper()
	r.offer(ivan, client, "offer-1@seller.test")
	r.expect("tracked", "offer-1@seller.test")
	release = r.smtp.Hold()
	t.Cleanup(release)
	r.advance(r.clk.Now().Add(3 * 24 * time.Hour))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.smtp.WaitHeld(ctx); err != nil {
		t.Fatal(err)
	}
	return release
}

func TestShutdownFinishesInFlightSend(t *testing.T) {
	r := newRig(t, ivan, client)
	r.write("hello {{.Subject}}", r.account(ivan, ""))
	r.start(Options{})
	release := dueHeldStep(t, r)
	go func() { time.Sleep(300 * time.Millisecond); release() }()
	took := r.stop()
	if took > 10*time.Second {
		t.Errorf("shutdown took %s, want < 10s", took)
	}
	t.Logf("shutdown with a send in flight for 300ms took %s", took)
	r.expect("sent", "offer-1@seller.test")
	if n := r.notes.index(0, "STOPPING=1"); n < 0 {
		t.Error("no STOPPING=1")
	}
}

func TestShutdownWithStuckSendWithin10s(t *testing.T) {
	r := newRig(t, ivan, client)
	r.write("hello {{.Subject}}", r.account(ivan, ""))
	r.start(Options{}) // default StopGrace
	dueHeldStep(t, r)
	took := r.stop()
	t.Logf("shutdown with a stuck send took %s", took)
	if took > 10*time.Second {
		t.Errorf("shutdown took %s, want < 10s", took)
	}
	// The store is closed; reopen it to see what was recorded: the
	// message was written in full, so the step must not be retried blindly.
	db, err := store.Open(filepath.Join(r.dir, DBFile), store.Options{Timeout: time.Second})
	if err != nil {
		t.Fatalf("reopening store after shutdown: %v", err)
	}
	defer db.Close()
	f, err := db.ByMessageID("offer-1@seller.test")
	if err != nil {
		t.Fatal(err)
	}
	if f.State == store.StateWaiting && f.Step == 1 {
		t.Errorf("step whose message went out in full is waiting for a retry (attempts %d)", f.Attempts)
	}
	t.Logf("state after shutdown: %s step %d", f.State, f.Step)
}

func TestShutdownIdleWithinASecond(t *testing.T) {
	r := newRig(t, ivan, petr, client)
	r.write("hello", r.account(ivan, ""), r.account(petr, ""))
	r.start(Options{})
	if n := r.imap.Conns(); n < 4 {
		t.Fatalf("%d IMAP connections before shutdown, want >= 4", n)
	}
	took := r.stop()
	t.Logf("idle shutdown took %s", took)
	if took > time.Second {
		t.Errorf("idle shutdown took %s, want < 1s", took)
	}
	deadline := time.Now().Add(2 * time.Second)
	for r.imap.Conns() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := r.imap.Conns(); n != 0 {
		t.Errorf("%d IMAP connections left open after shutdown", n)
	}
}

func TestWatchdogAndStatus(t *testing.T) {
	r := newRig(t, ivan, client)
	r.write("hello", r.account(ivan, ""))
	r.start(Options{WatchdogInterval: 10 * time.Millisecond, StatusInterval: 10 * time.Millisecond})
	deadline := time.Now().Add(5 * time.Second)
	for (r.notes.index(0, "WATCHDOG=1") < 0 || r.notes.index(0, "STATUS=") < 0) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if r.notes.index(0, "WATCHDOG=1") < 0 {
		t.Error("no WATCHDOG=1")
	}
	i := r.notes.index(0, "STATUS=")
	if i < 0 {
		t.Fatal("no STATUS=")
	}
	if st := r.notes.all()[i]; !strings.Contains(st, "1/1 accounts connected") || !strings.Contains(st, "pending") {
		t.Errorf("status %q", st)
	}
}

func TestReloadAppliesLogLevel(t *testing.T) {
	r := newRig(t, ivan, client)
	r.write("hello", r.account(ivan, ""))
	lv := new(slog.LevelVar)
	r.start(Options{LogLevel: lv})
	b, err := os.ReadFile(r.path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.path, []byte("log_level = \"warn\"\n"+string(b)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.d.ReloadFile(r.path); err != nil {
		t.Fatal(err)
	}
	if lv.Level() != slog.LevelWarn {
		t.Errorf("level after reload = %s, want WARN", lv.Level())
	}
	if r.d.Config().LogLevel != "warn" {
		t.Errorf("Config().LogLevel = %q", r.d.Config().LogLevel)
	}
}

func TestReloadBeforeRun(t *testing.T) {
	r := newRig(t, ivan, petr, client)
	r.write("first", r.account(ivan, ""))
	d, err := New(r.load(), Options{Clock: r.clk, Logger: slog.New(slog.NewTextHandler(r.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	r.write("second", r.account(ivan, ""), r.account(petr, ""))
	if err := d.Reload(r.load()); err != nil {
		t.Fatal(err)
	}
	// Run starts the reloaded accounts.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	select {
	case <-d.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("not ready")
	}
	if n := len(d.current().accounts); n != 2 {
		t.Errorf("%d accounts running, want 2", n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Error(err)
	}
	if err := d.Reload(r.load()); err == nil {
		t.Error("Reload after shutdown succeeded")
	}
	if err := d.Close(); err != nil {
		t.Error(err)
	}
}
