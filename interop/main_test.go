package interop_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	_ "github.com/emersion/go-message/charset"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"followupd/clock"
	"followupd/config"
	"followupd/daemon"
	"followupd/internal/mailtest"
	"followupd/message"
	"followupd/store"
)

// binPath is the followupd binary built once by TestMain, for the
// scenarios that need a real process (5: SIGKILL, 10: exit status).
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "followupd-interop-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "interop: creating binary directory:", err)
		os.Exit(1)
	}
	// 0755: scenario 10 runs the binary as an unprivileged user.
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "interop: chmod binary directory:", err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "followupd")
	t0 := time.Now()
	cmd := exec.Command(goTool(), "build", "-o", binPath, ".")
	cmd.Dir = ".." // the module root: package main
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "interop: go build -o %s . failed: %v\n%s", binPath, err, out)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "interop: built %s in %v\n", binPath, time.Since(t0).Round(time.Millisecond))
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// goTool is the go command of the toolchain running the tests.
func goTool() string {
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return "go"
}

// The people of the suite. Every user has the password pw except where a
// scenario says otherwise.
const (
	ivan  = "ivan@seller.test"
	maria = "maria@seller.test"
	anna  = "anna@client.test"
	boris = "boris@buyer.test"
	olga  = "olga@third.test"
	pw    = "interop-Pw-5c1d"
)

func users(pass string, names ...string) []mailtest.User {
	var us []mailtest.User
	for _, n := range names {
		us = append(us, mailtest.User{Name: n, Password: pass})
	}
	return us
}

// monday is Monday 23 Nov 2026, 10:00 Moscow time: a plain working week.
func monday(t testing.TB) time.Time {
	loc, err := time.LoadLocation("Europe/Moscow")
	if err != nil {
		t.Fatal(err)
	}
	return time.Date(2026, 11, 23, 10, 0, 0, 0, loc)
}

// took logs a scenario's timing in the form the suite's log is read for.
func took(t testing.TB, n int, what string, begin time.Time) {
	t.Helper()
	t.Logf("scenario %d: %s took %v", n, what, time.Since(begin).Round(time.Millisecond))
}

// world is one scenario's mail world: a real stack, a fake clock for
// reminder delays (IMAP, SMTP and the daemon's server checks are real), a
// state directory, the daemon's events and logs.
type world struct {
	t      *testing.T
	s      *mailtest.Stack
	clk    *clock.Fake
	dir    string
	pwFile string
	pass   string
	events chan daemon.Event
	seen   []daemon.Event
	logs   *logBuffer
}

func newWorld(t *testing.T, opt mailtest.Options) *world {
	t.Helper()
	s := mailtest.Start(t, opt)
	pass := pw
	if len(opt.Users) > 0 {
		pass = opt.Users[0].Password
	}
	w := &world{
		t:      t,
		s:      s,
		clk:    clock.NewFake(monday(t)),
		dir:    t.TempDir(),
		pass:   pass,
		events: make(chan daemon.Event, 4096),
		logs:   &logBuffer{},
	}
	w.pwFile = filepath.Join(w.dir, "password")
	if err := os.WriteFile(w.pwFile, []byte(pass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log (tail):\n%s", w.logs.tail(150))
		}
		// INTEROP_LOGDIR=DIR keeps every scenario's full daemon log.
		if d := os.Getenv("INTEROP_LOGDIR"); d != "" {
			name := filepath.Join(d, strings.ReplaceAll(t.Name(), "/", "_")+".log")
			if err := os.WriteFile(name, []byte(w.logs.String()), 0o644); err != nil {
				t.Logf("keeping the daemon log: %v", err)
			}
		}
	})
	return w
}

// endpoint is one server of an account's config.
type endpoint struct {
	addr     string // host:port
	security string // none | tls | starttls
	ca       string // ca_file; "" = system roots only
}

type acctSpec struct {
	name, addr string
	imap, smtp endpoint
	extra      string // more keys of the [[account]] table
}

// plain is an account on the stack without TLS.
func (w *world) plain(addr string) acctSpec {
	return acctSpec{addr: addr,
		imap: endpoint{addr: w.s.IMAPAddr, security: "none"},
		smtp: endpoint{addr: w.s.SubmissionAddr, security: "none"}}
}

// offerRules is the standard chain: offers, reminders after 3 and then 2
// business days.
const offerRules = `
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
`

// config writes and loads a configuration: the fake clock's zone, calendar
// "ru", send window 09:00-18:00, the given accounts and rules.
func (w *world) config(top, rules string, accts ...acctSpec) *config.Config {
	w.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "state_dir = %q\ntime_zone = %q\ncalendar = \"ru\"\nsend_window = \"09:00-18:00\"\nlog_level = \"debug\"\n%s\n",
		filepath.Join(w.dir, "state"), w.clk.Now().Location().String(), top)
	for _, a := range accts {
		name := a.name
		if name == "" {
			name = strings.SplitN(a.addr, "@", 2)[0]
		}
		fmt.Fprintf(&b, "\n[[account]]\nname = %q\naddress = %q\ndisplay_name = %q\npassword_file = %q\nmax_per_hour = 3600\n%s\n",
			name, a.addr, "Sender "+name, w.pwFile, a.extra)
		for _, srv := range []struct {
			key string
			ep  endpoint
		}{{"imap", a.imap}, {"smtp", a.smtp}} {
			host, port, err := net.SplitHostPort(srv.ep.addr)
			if err != nil {
				w.t.Fatalf("%s address %q: %v", srv.key, srv.ep.addr, err)
			}
			fmt.Fprintf(&b, "[account.%s]\nhost = %q\nport = %s\nsecurity = %q\n", srv.key, host, port, srv.ep.security)
			if srv.ep.ca != "" {
				fmt.Fprintf(&b, "ca_file = %q\n", srv.ep.ca)
			}
		}
	}
	b.WriteString(rules)
	path := filepath.Join(w.dir, "followupd.toml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		w.t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		w.t.Fatalf("config:\n%s\n%v", b.String(), err)
	}
	return cfg
}

// daemonOptions are the in-process daemon's options: the world's clock,
// debug logs into the world's buffer, quick reconnects.
func (w *world) daemonOptions() daemon.Options {
	return daemon.Options{
		Clock:        w.clk,
		Logger:       slog.New(slog.NewTextHandler(w.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		OnEvent:      w.onEvent,
		ReplyWait:    50 * time.Millisecond,
		ReconnectMin: 20 * time.Millisecond,
		ReconnectMax: 200 * time.Millisecond,
		RetryBase:    time.Minute,
		RetryMax:     time.Hour,
	}
}

func (w *world) onEvent(ev daemon.Event) {
	select {
	case w.events <- ev:
	default:
		w.logs.Write([]byte("interop: event channel full, dropped " + ev.Kind + "\n"))
	}
}

// start starts a daemon without waiting for it; stop stops it and waits.
func (w *world) start(cfg *config.Config, opt daemon.Options) (*daemon.Daemon, func()) {
	w.t.Helper()
	d, err := daemon.New(cfg, opt)
	if err != nil {
		w.t.Fatalf("daemon.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					w.t.Errorf("daemon.Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				w.t.Errorf("daemon did not stop within 30s")
			}
			if err := d.Close(); err != nil {
				w.t.Errorf("closing daemon: %v", err)
			}
		})
	}
	w.t.Cleanup(stop)
	return d, stop
}

// run starts a daemon and waits until every account finished its first sync.
func (w *world) run(cfg *config.Config) (*daemon.Daemon, func()) {
	w.t.Helper()
	d, stop := w.start(cfg, w.daemonOptions())
	select {
	case <-d.Ready():
	case <-time.After(20 * time.Second):
		w.t.Fatal("daemon not ready within 20s")
	}
	return d, stop
}

// expect waits (real time, up to 15 s) for an event of kind about msgid
// ("" = any); events that do not match stay for later expectations.
func (w *world) expect(kind, msgid string) daemon.Event {
	w.t.Helper()
	return w.await(kind, msgid, 15*time.Second, time.Time{})
}

// expectPumping is expect while the fake clock creeps forward (200 ms every
// 20 ms, never past limit), for waits that run on the daemon's clock, such
// as the IMAP reconnect backoff.
func (w *world) expectPumping(kind, msgid string, limit time.Time) daemon.Event {
	w.t.Helper()
	return w.await(kind, msgid, 20*time.Second, limit)
}

func (w *world) await(kind, msgid string, timeout time.Duration, pumpLimit time.Time) daemon.Event {
	w.t.Helper()
	match := func(ev daemon.Event) bool { return ev.Kind == kind && (msgid == "" || ev.MessageID == msgid) }
	for i, ev := range w.seen {
		if match(ev) {
			w.seen = append(w.seen[:i:i], w.seen[i+1:]...)
			return ev
		}
	}
	deadline := time.After(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case ev := <-w.events:
			w.t.Logf("event %s account=%s id=%d step=%d %s", ev.Kind, ev.Account, ev.FollowUp, ev.Step, ev.Text)
			if match(ev) {
				return ev
			}
			w.seen = append(w.seen, ev)
		case <-tick.C:
			w.pump(pumpLimit)
		case <-deadline:
			w.t.Fatalf("no %q event for %q within %v", kind, msgid, timeout)
		}
	}
}

// pending reports whether an event of kind about msgid arrived and was not
// expected yet (it drains what is queued first).
func (w *world) pending(kind, msgid string) bool {
	for {
		select {
		case ev := <-w.events:
			w.seen = append(w.seen, ev)
			continue
		default:
		}
		break
	}
	for _, ev := range w.seen {
		if ev.Kind == kind && ev.MessageID == msgid {
			return true
		}
	}
	return false
}

// pump moves the fake clock 200 ms forward, never past limit (zero: not at all).
func (w *world) pump(limit time.Time) {
	if limit.IsZero() {
		return
	}
	next := w.clk.Now().Add(200 * time.Millisecond)
	if next.After(limit) {
		next = limit
	}
	w.clk.Set(next)
}

// quiet asserts that no event of kind arrives within d (real time), nor
// is waiting unexpected.
func (w *world) quiet(kind string, d time.Duration) {
	w.t.Helper()
	check := func(ev daemon.Event) {
		if ev.Kind == kind {
			w.t.Fatalf("unexpected %s event: id=%d step=%d %s", kind, ev.FollowUp, ev.Step, ev.Text)
		}
	}
	for _, ev := range w.seen {
		check(ev)
	}
	timeout := time.After(d)
	for {
		select {
		case ev := <-w.events:
			w.t.Logf("event %s account=%s id=%d step=%d %s", ev.Kind, ev.Account, ev.FollowUp, ev.Step, ev.Text)
			check(ev)
			w.seen = append(w.seen, ev)
		case <-timeout:
			return
		}
	}
}

// advanceTo moves the fake clock to t in hour steps so due timers fire in
// order, letting the daemon's goroutines run in between.
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

// rawMessage is a plain-text message; inReplyTo also fills References.
func rawMessage(id, inReplyTo, from, to, subject, body string, date time.Time) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "Message-ID: <%s>\r\n", id)
	if inReplyTo != "" {
		fmt.Fprintf(&b, "In-Reply-To: <%s>\r\nReferences: <%s>\r\n", inReplyTo, inReplyTo)
	}
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n%s\r\n",
		from, to, mimeWord(subject), date.Format(time.RFC1123Z), body)
	return []byte(b.String())
}

// mimeWord encodes a non-ASCII subject as an RFC 2047 word.
func mimeWord(s string) string {
	for _, r := range s {
		if r > 127 {
			return mimeQ(s)
		}
	}
	return s
}

func mimeQ(s string) string {
	var b strings.Builder
	b.WriteString("=?utf-8?q?")
	for _, c := range []byte(s) {
		switch {
		case c == ' ':
			b.WriteByte('_')
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "=%02X", c)
		}
	}
	b.WriteString("?=")
	return b.String()
}

// offer is what a sales person's mail client does: submit the offer through
// Postfix (SMTP AUTH as the sender), then save it to Sent.
func (w *world) offer(from, to, id, subject string, date time.Time) []byte {
	w.t.Helper()
	raw := rawMessage(id, "", from, to, subject, "Please find our offer attached.", date)
	if err := submit(w.s, from, w.pass, []string{to}, raw); err != nil {
		w.t.Fatalf("submitting offer %s: %v", id, err)
	}
	if err := w.s.Append(from, "Sent", raw, `\Seen`); err != nil {
		w.t.Fatalf("saving offer %s to Sent: %v", id, err)
	}
	return raw
}

// reply is the client answering from outside, through Postfix's MX port.
func (w *world) reply(from, to, id, inReplyTo, subject string, date time.Time) {
	w.t.Helper()
	raw := rawMessage(id, inReplyTo, from, to, subject, "Thank you, we accept.", date)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.s.Send(ctx, from, []string{to}, raw); err != nil {
		w.t.Fatalf("sending reply %s: %v", id, err)
	}
}

// submit sends raw through the submission port as user (STARTTLS first
// when the stack has TLS).
func submit(s *mailtest.Stack, user, pass string, to []string, raw []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.SubmissionAddr)
	if err != nil {
		return fmt.Errorf("dialing submission %s: %w", s.SubmissionAddr, err)
	}
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	var c *smtp.Client
	if tc := s.TLSConfig(); tc != nil {
		if c, err = smtp.NewClientStartTLS(conn, tc); err != nil {
			conn.Close()
			return fmt.Errorf("STARTTLS: %w", err)
		}
	} else {
		c = smtp.NewClient(conn)
		if err := c.Hello("client.interop.invalid"); err != nil {
			c.Close()
			return fmt.Errorf("EHLO: %w", err)
		}
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", user, pass)); err != nil {
		return fmt.Errorf("AUTH as %s: %w", user, err)
	}
	if err := c.SendMail(user, to, bytes.NewReader(raw)); err != nil {
		return fmt.Errorf("sending: %w", err)
	}
	return c.Quit()
}

// mailbox returns user's messages in mailbox once there are at least n (up
// to 30 s), parsed.
func (w *world) mailbox(user, mailbox string, n int) []*message.Record {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	raws, err := w.s.WaitDelivered(ctx, user, mailbox, n)
	if err != nil {
		w.t.Fatal(err)
	}
	var out []*message.Record
	for _, raw := range raws {
		rec, err := message.ParseHeader(raw)
		if err != nil {
			w.t.Fatalf("parsing a message in %s of %s: %v", mailbox, user, err)
		}
		out = append(out, rec)
	}
	return out
}

// own returns the reminders (followupd's own messages) among recs.
func own(recs []*message.Record) []*message.Record {
	var out []*message.Record
	for _, r := range recs {
		if r.IsOwn() {
			out = append(out, r)
		}
	}
	return out
}

// exactly asserts that user's mailbox holds n messages, of which reminders
// are own; it waits a little for late deliveries to show up.
func (w *world) exactly(user, mailbox string, n, reminders int) []*message.Record {
	w.t.Helper()
	recs := w.mailbox(user, mailbox, n)
	time.Sleep(200 * time.Millisecond) // a straggler would be delivered by now
	recs = w.mailbox(user, mailbox, n)
	if len(recs) != n || len(own(recs)) != reminders {
		var ids []string
		for _, r := range recs {
			ids = append(ids, r.MessageID)
		}
		w.t.Fatalf("%s of %s holds %d messages (%d reminders), want %d (%d): %v",
			mailbox, user, len(recs), len(own(recs)), n, reminders, ids)
	}
	return recs
}

func (w *world) followUp(d *daemon.Daemon, msgid string) *store.FollowUp {
	w.t.Helper()
	f, err := d.Store().ByMessageID(msgid)
	if err != nil {
		w.t.Fatalf("follow-up of %s: %v", msgid, err)
	}
	return f
}

// idleWatch is a bare IMAP client idling on user's INBOX: the baseline for
// how soon Dovecot announces a delivery.
type idleWatch struct {
	c    *imapclient.Client
	idle *imapclient.IdleCommand
	mu   sync.Mutex
	seen map[uint32]time.Time // message count -> when EXISTS first reached it
}

func startIdle(t *testing.T, s *mailtest.Stack, user, pass string) *idleWatch {
	t.Helper()
	iw := &idleWatch{seen: map[uint32]time.Time{}}
	h := &imapclient.UnilateralDataHandler{Mailbox: func(data *imapclient.UnilateralDataMailbox) {
		if data.NumMessages == nil {
			return
		}
		now := time.Now()
		iw.mu.Lock()
		defer iw.mu.Unlock()
		for n := *data.NumMessages; n > 0; n-- {
			if _, ok := iw.seen[n]; ok {
				break
			}
			iw.seen[n] = now
		}
	}}
	c, err := imapclient.DialInsecure(s.IMAPAddr, &imapclient.Options{UnilateralDataHandler: h})
	if err != nil {
		t.Fatal(err)
	}
	iw.c = c
	if err := c.Login(user, pass).Wait(); err != nil {
		t.Fatal(err)
	}
	sel, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	for n := sel.NumMessages; n > 0; n-- {
		iw.seen[n] = time.Time{}
	}
	if iw.idle, err = c.Idle(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		iw.idle.Close()
		c.Close()
	})
	return iw
}

// reached returns when the mailbox was first announced holding n messages,
// waiting up to 3 s for it (zero if it never was).
func (iw *idleWatch) reached(n uint32) time.Time {
	deadline := time.Now().Add(3 * time.Second)
	for {
		iw.mu.Lock()
		at, ok := iw.seen[n]
		iw.mu.Unlock()
		if ok || time.Now().After(deadline) {
			return at
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// logBuffer collects log output from any goroutine.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) tail(n int) string {
	lines := strings.Split(strings.TrimRight(l.String(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitLog waits (up to timeout, pumping the fake clock up to limit) until
// the log holds substr.
func (w *world) waitLog(substr string, timeout time.Duration, limit time.Time) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if strings.Contains(w.logs.String(), substr) {
			return true
		}
		w.pump(limit)
		time.Sleep(20 * time.Millisecond)
	}
	return false
}
