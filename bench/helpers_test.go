package bench

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	_ "github.com/emersion/go-message/charset"

	"followupd/config"
	"followupd/internal/mailtest"
	"followupd/message"
)

// scale holds every size the benchmarks use; quick() is what CI runs.
type scale struct {
	full          bool
	syncMessages  int           // Sent + INBOX of the big account (half each)
	replyAccounts int           // accounts of the answer-latency run
	replies       int           // replies delivered, spread over replyAccounts
	replyRate     float64       // replies per second
	pending       int           // follow-ups for memory and restart-to-ready
	restartAccts  int           // accounts the restart-to-ready daemon watches
	accounts      int           // accounts of the accounts-per-process run
	idle          time.Duration // how long those accounts stay idle
	repeats       int           // runs of each timed measurement (median)
	syncRepeats   int           // runs of the initial sync (median; the noisiest figure)
}

func getScale() scale {
	if os.Getenv("BENCH_FULL") != "1" {
		return scale{syncMessages: 400, replyAccounts: 2, replies: 4, replyRate: 5, pending: 2000,
			restartAccts: 2, accounts: 4, idle: 2 * time.Second, repeats: 1, syncRepeats: 1}
	}
	sc := scale{full: true, syncMessages: 100_000, replyAccounts: 20, replies: 200, replyRate: 5,
		pending: 100_000, restartAccts: 10, accounts: 1000, idle: 5 * time.Minute, repeats: 3, syncRepeats: 5}
	if v, err := strconv.Atoi(os.Getenv("BENCH_SYNC_MESSAGES")); err == nil && v > 0 {
		sc.syncMessages = v // for profiling at a smaller size
	}
	if v := os.Getenv("BENCH_IDLE"); v != "" {
		d, err := time.ParseDuration(v)
		if err == nil {
			sc.idle = d
		}
	}
	return sc
}

// row is one line of RESULTS.md.
type row struct {
	Figure, Value, Limit, Ratio, Target, Verdict, Notes string
}

var outMu sync.Mutex

// record appends r to BENCH_OUT (tab-separated) in full runs and logs it.
func record(b testing.TB, sc scale, r row) {
	b.Helper()
	b.Logf("RESULT %s: %s (limit %s, ratio %s; target %s: %s) %s", r.Figure, r.Value, r.Limit, r.Ratio, r.Target, r.Verdict, r.Notes)
	out := os.Getenv("BENCH_OUT")
	if !sc.full || out == "" {
		return
	}
	outMu.Lock()
	defer outMu.Unlock()
	f, err := os.OpenFile(out, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	clean := func(s string) string { return strings.NewReplacer("\t", " ", "\n", " ", "|", "/").Replace(s) }
	fmt.Fprintf(f, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", clean(r.Figure), clean(r.Value), clean(r.Limit), clean(r.Ratio), clean(r.Target), clean(r.Verdict), clean(r.Notes))
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/1e6) }

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

// percentile of sorted durations (nearest rank).
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*p+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

func median(ds []time.Duration) time.Duration { return percentile(ds, 0.5) }

// mailWorld is a running stack with the users the benchmark asked for.
type mailWorld struct {
	s     *mailtest.Stack
	users []string
	pw    string
}

const benchPW = "bench-pw"

// startWorld starts a stack with n users named prefix%04d@seller.test
// (w.users), n more per extra prefix, and client@buyer.test.
func startWorld(b testing.TB, n int, prefix string, conns int, extra ...string) *mailWorld {
	b.Helper()
	w := &mailWorld{pw: benchPW}
	var us []mailtest.User
	for pi, p := range append([]string{prefix}, extra...) {
		for i := range n {
			u := fmt.Sprintf("%s%04d@seller.test", p, i)
			if pi == 0 {
				w.users = append(w.users, u)
			}
			us = append(us, mailtest.User{Name: u, Password: benchPW})
		}
	}
	us = append(us, mailtest.User{Name: "client@buyer.test", Password: benchPW})
	w.s = mailtest.Start(b, mailtest.Options{Users: us, Domains: []string{"seller.test", "buyer.test"}, Connections: conns})
	return w
}

// configText is a followupd config for users (all on the stack), with the
// offer rule; the password comes from $BENCH_PW.
func (w *mailWorld) configText(stateDir string, users []string, logLevel string) string {
	host, port, _ := strings.Cut(w.s.IMAPAddr, ":")
	shost, sport, _ := strings.Cut(w.s.SubmissionAddr, ":")
	var sb strings.Builder
	fmt.Fprintf(&sb, "state_dir = %q\ntime_zone = \"Europe/Moscow\"\ncalendar = \"ru\"\nlookback = \"14 days\"\nlog_level = %q\n", stateDir, logLevel)
	for _, u := range users {
		fmt.Fprintf(&sb, `
[[account]]
address = %q
password_env = "BENCH_PW"
imap = { host = %q, port = %s, security = "none" }
smtp = { host = %q, port = %s, security = "none" }
folders = { inbox = "INBOX", sent = "Sent", drafts = "Drafts" }
`, u, host, port, shost, sport)
	}
	sb.WriteString(`
[[rule]]
name = "offer"
kind = "offer"
match.subject = ['(?i)коммерческое предложение|offer']
  [[rule.step]]
  after = "30 days"
  template = "first"

[template.first]
body = "Добрый день! Удалось ли посмотреть письмо «{{.Subject}}»?"
`)
	return sb.String()
}

func (w *mailWorld) config(b testing.TB, stateDir string, users []string) (*config.Config, string) {
	b.Helper()
	os.Setenv("BENCH_PW", benchPW)
	path := filepath.Join(stateDir, "followupd.toml")
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(w.configText(stateDir, users, "info")), 0o600); err != nil {
		b.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		b.Fatal(err)
	}
	return cfg, path
}

var subjects = []string{
	"Коммерческое предложение по поставке оборудования №%d",
	"Счёт на оплату %d",
	"Re: встреча в четверг (%d)",
	"Offer for the Q3 service contract #%d",
	"Minutes of the call %d",
	"Invoice %d for March",
}

// encodeSubject writes s as an RFC 2047 word when it is not ASCII.
func encodeSubject(s string) string {
	for _, r := range s {
		if r > 127 {
			return mimeB(s)
		}
	}
	return s
}

func mimeB(s string) string {
	const max = 45 // bytes per word, so a line stays short
	var words []string
	for len(s) > 0 {
		n := 0
		for i := range s {
			if i > max {
				break
			}
			n = i
		}
		if len(s) <= max {
			n = len(s)
		}
		words = append(words, "=?UTF-8?B?"+b64(s[:n])+"?=")
		s = s[n:]
	}
	return strings.Join(words, "\r\n ")
}

const b64chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

func b64(s string) string {
	var out strings.Builder
	b := []byte(s)
	for i := 0; i < len(b); i += 3 {
		var v uint32
		n := min(3, len(b)-i)
		for j := 0; j < 3; j++ {
			v <<= 8
			if j < n {
				v |= uint32(b[i+j])
			}
		}
		for j := 0; j < 4; j++ {
			if j <= n {
				out.WriteByte(b64chars[(v>>(18-6*j))&63])
			} else {
				out.WriteByte('=')
			}
		}
	}
	return out.String()
}

var bodyLine = "Добрый день! Направляем вам обновлённое предложение; условия поставки и оплаты во вложении. Regards.\r\n"

// offerMsg is a message in Sent from user to a client, dated at.
func offerMsg(user, msgid, subject, to string, at time.Time, bodyLines int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Message-ID: <%s>\r\nDate: %s\r\nFrom: Seller <%s>\r\nTo: Client <%s>\r\nSubject: %s\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
		msgid, at.Format(time.RFC1123Z), user, to, encodeSubject(subject))
	for range bodyLines {
		b.WriteString(bodyLine)
	}
	return b.Bytes()
}

// replyMsg answers msgid.
func replyMsg(from, to, msgid, replyID, subject string, at time.Time, bodyLines int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Message-ID: <%s>\r\nDate: %s\r\nFrom: Client <%s>\r\nTo: <%s>\r\nSubject: %s\r\nIn-Reply-To: <%s>\r\nReferences: <%s>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
		replyID, at.Format(time.RFC1123Z), from, to, encodeSubject("Re: "+subject), msgid, msgid)
	for range bodyLines {
		b.WriteString(bodyLine)
	}
	return b.Bytes()
}

// writeMaildir writes msgs as files of dir/cur with flags (e.g. "S").
// dates, when given, are the messages' arrival times: Dovecot takes a
// Maildir file's mtime for its INTERNALDATE, so a seeded mailbox has the
// spread of delivery dates a real one has (nil: now).
func writeMaildir(dir string, start int, msgs [][]byte, dates []time.Time, flags string) error {
	for i, m := range msgs {
		name := fmt.Sprintf("%d.M%dP%d.bench,S=%d:2,%s", 1700000000+start+i, start+i, os.Getpid(), len(m), flags)
		p := filepath.Join(dir, "cur", name)
		if err := os.WriteFile(p, m, 0o600); err != nil {
			return err
		}
		if i < len(dates) {
			if err := os.Chtimes(p, dates[i], dates[i]); err != nil {
				return err
			}
		}
		if err := os.Chown(p, mailtest.MailUID, mailtest.MailUID); err != nil {
			return err
		}
	}
	return nil
}

// seedBig fills user's Sent and INBOX with n messages in total: offers in
// Sent (1% of them inside lookback, so tracked), replies and other mail in
// INBOX, 35% with Cyrillic subjects, 1.5-4 KB each. It returns how many
// offers are recent.
func seedBig(b testing.TB, w *mailWorld, user string, n int, now time.Time) {
	b.Helper()
	t0 := time.Now()
	rng := rand.New(rand.NewPCG(7, 11))
	sent, err := w.s.Maildir(user, "Sent")
	if err != nil {
		b.Fatal(err)
	}
	inbox, err := w.s.Maildir(user, "INBOX")
	if err != nil {
		b.Fatal(err)
	}
	half := n / 2
	var sentMsgs, inMsgs [][]byte
	var sentDates, inDates []time.Time
	for i := range half {
		at := now.Add(-time.Duration(30+rng.IntN(300)) * 24 * time.Hour)
		if i%100 == 0 {
			at = now.Add(-time.Duration(1+rng.IntN(10*24)) * time.Hour)
		}
		subj := fmt.Sprintf(subjects[i%len(subjects)], i)
		// Message-IDs as mail clients make them: random, so the store's
		// index takes them in no particular order (sequential ids would
		// append to the B+tree and flatter the store).
		id := fmt.Sprintf("%016x.%d@seller.test", rng.Uint64(), i)
		sentMsgs = append(sentMsgs, offerMsg(user, id, subj, fmt.Sprintf("client%d@buyer%d.test", i%3000, i%400), at, 12+rng.IntN(25)))
		sentDates = append(sentDates, at)
		from := fmt.Sprintf("client%d@buyer%d.test", rng.IntN(3000), rng.IntN(400))
		if i%3 == 0 {
			inMsgs = append(inMsgs, replyMsg(from, user, id, fmt.Sprintf("CA%016x%08x@mail.buyer.test", rng.Uint64(), rng.Uint32()), subj, at.Add(time.Hour), 12+rng.IntN(25)))
			inDates = append(inDates, at.Add(time.Hour))
		} else {
			inMsgs = append(inMsgs, offerMsg(from, fmt.Sprintf("%016x-%d@buyer%d.test", rng.Uint64(), i, i%400), fmt.Sprintf(subjects[(i+2)%len(subjects)], i), user, at, 12+rng.IntN(25)))
			inDates = append(inDates, at)
		}
	}
	if err := writeMaildir(sent, 0, sentMsgs, sentDates, "S"); err != nil {
		b.Fatal(err)
	}
	if err := writeMaildir(inbox, half, inMsgs, inDates, ""); err != nil {
		b.Fatal(err)
	}
	b.Logf("seeded %d messages into %s's Sent and INBOX in %v", 2*half, user, time.Since(t0).Round(time.Millisecond))
}

// login is a bare go-imap connection.
func login(w *mailWorld, user string, h *imapclient.UnilateralDataHandler) (*imapclient.Client, error) {
	c, err := imapclient.DialInsecure(w.s.IMAPAddr, &imapclient.Options{UnilateralDataHandler: h})
	if err != nil {
		return nil, err
	}
	if err := c.Login(user, w.pw).Wait(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// bareFetch is the limit of initial sync: one connection per folder, in
// parallel (as the daemon syncs them), UID FETCH 1:* of the daemon's header
// fields, flags, dates, size and BODYSTRUCTURE, streamed and discarded.
func bareFetch(w *mailWorld, user string, folders ...string) (time.Duration, int, error) {
	t0 := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, len(folders))
	counts := make([]int, len(folders))
	for i, f := range folders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := login(w, user, nil)
			if err != nil {
				errs[i] = err
				return
			}
			defer c.Close()
			if _, err := c.Select(f, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
				errs[i] = err
				return
			}
			var set imap.UIDSet
			set.AddRange(1, 0)
			cmd := c.Fetch(set, &imap.FetchOptions{UID: true, Flags: true, InternalDate: true, RFC822Size: true,
				BodyStructure: &imap.FetchItemBodyStructure{Extended: true},
				BodySection:   []*imap.FetchItemBodySection{{Specifier: imap.PartSpecifierHeader, HeaderFields: message.HeaderFields, Peek: true}}})
			for m := cmd.Next(); m != nil; m = cmd.Next() {
				if _, err := m.Collect(); err != nil {
					errs[i] = err
				}
				counts[i]++
			}
			if err := cmd.Close(); err != nil {
				errs[i] = err
			}
		}()
	}
	wg.Wait()
	n := 0
	for _, c := range counts {
		n += c
	}
	for _, err := range errs {
		if err != nil {
			return 0, n, err
		}
	}
	return time.Since(t0), n, nil
}

// quietLogger discards below warn.
func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// binDir holds the binary buildOnce made; TestMain removes it.
var binDir string

// buildOnce builds the followupd binary once per test binary.
var buildOnce = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "followupd-bench-bin-")
	if err != nil {
		return "", err
	}
	binDir = dir
	bin := filepath.Join(dir, "followupd")
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v: %s", err, out)
	}
	return bin, nil
})

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above %s", dir)
		}
		dir = parent
	}
}

// procStat reads a process's RSS (bytes) and CPU time (user+system).
func procStat(pid int) (rss int64, cpu time.Duration, err error) {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	i := bytes.LastIndexByte(st, ')')
	f := strings.Fields(string(st[i+1:]))
	// fields after ")": state(0) ... utime(11) stime(12) ... rss(21) pages
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	stt, _ := strconv.ParseInt(f[12], 10, 64)
	pages, _ := strconv.ParseInt(f[21], 10, 64)
	const hz = 100 // USER_HZ on Linux
	return pages * int64(os.Getpagesize()), time.Duration(ut+stt) * time.Second / hz, nil
}

func machine() string {
	var mem string
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		mem = strings.Fields(strings.SplitN(string(b), "\n", 2)[0])[1] + " kB"
	}
	return fmt.Sprintf("nproc %d, MemTotal %s, %s", runtime.NumCPU(), mem, runtime.Version())
}
