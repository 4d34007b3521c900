package mailtest

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// installHint is what a test says when the servers are missing.
const installHint = "dovecot/postfix not installed; run ./scripts/test to install"

// mailUID is the uid and gid Dovecot uses for mail access (a bare number
// needs no passwd entry; Dovecot refuses to touch mail as root).
const mailUID = 5000

// User is a mailbox on the stack: Name is the full address (and the IMAP and
// SMTP AUTH login), Password its plain-text password.
type User struct {
	Name     string
	Password string
}

// Options says which stack to start.
type Options struct {
	Users []User
	// Domains are delivered to Dovecot. Default: the users' domains.
	Domains []string
	// TLS adds a self-signed certificate (CAFile), STARTTLS on IMAP and on
	// the SMTP ports, IMAPS and SMTPS. On submission AUTH then needs TLS.
	TLS bool
	// Connections, when above a few hundred, sizes Dovecot for that many
	// concurrent IMAP connections (benchmarks: 1,000 accounts = 2,000 IDLE
	// connections): shared imap processes of 100 clients each
	// (service_count = 0) and raised client limits, so no kernel setting
	// (inotify instances) has to change. Zero keeps the defaults.
	Connections int
}

// Stack is a running Dovecot + Postfix pair. Its methods may be called from
// any goroutine.
type Stack struct {
	Dir            string // the temporary directory holding config, queue, mail and logs
	IMAPAddr       string // 127.0.0.1:port, plain (+ STARTTLS when TLS)
	IMAPSAddr      string // implicit TLS; empty without TLS
	SubmissionAddr string // SMTP with AUTH against Dovecot (STARTTLS when TLS)
	SMTPSAddr      string // implicit-TLS submission; empty without TLS
	MXAddr         string // port-25-style SMTP, no AUTH, accepts mail for Domains only
	LMTPAddr       string // Dovecot LMTP
	CAFile         string // PEM of the CA that signed the servers' certificate; empty without TLS

	opt     Options
	domains []string
	users   map[string]string // lowercased address -> password
	policy  *policyServer
	guard   *watchdog
	ports   ports

	mu      sync.Mutex // guards dovecot
	dovecot *dovecotProc
}

// ports are the listening ports of one stack; 0 means unused.
type ports struct {
	imap, imaps, lmtp, mx, submission, smtps int
}

// Start starts a stack for the test and registers its cleanup. It skips the
// test (fails it when CI=true) if the servers are not installed or the test
// does not run as root.
func Start(t testing.TB, opt Options) *Stack {
	t.Helper()
	begin := time.Now()
	requireServers(t)

	s := &Stack{opt: opt, users: make(map[string]string)}
	if err := s.checkOptions(); err != nil {
		t.Fatalf("mailtest: %v", err)
	}

	dir, err := os.MkdirTemp("", "mailtest-")
	if err != nil {
		t.Fatalf("mailtest: creating stack directory: %v", err)
	}
	s.Dir = dir
	t.Cleanup(func() {
		if t.Failed() && os.Getenv("MAILTEST_KEEP") == "1" {
			t.Logf("mailtest: keeping %s (MAILTEST_KEEP=1)", dir)
			return
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("mailtest: removing %s: %v", dir, err)
		}
	})
	// 0755, not MkdirTemp's 0700: the servers' unprivileged workers must
	// traverse it.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatalf("mailtest: chmod %s: %v", dir, err)
	}
	if err := s.makeDirs(); err != nil {
		t.Fatalf("mailtest: %v", err)
	}
	if opt.TLS {
		ca, err := writeCerts(filepath.Join(dir, "tls"))
		if err != nil {
			t.Fatalf("mailtest: %v", err)
		}
		s.CAFile = ca
	}

	s.guard, err = startWatchdog(s.path("postfix"))
	if err != nil {
		t.Fatalf("mailtest: %v", err)
	}
	s.policy, err = startPolicy()
	if err != nil {
		t.Fatalf("mailtest: %v", err)
	}
	// Registered after RemoveAll, so they run before it (cleanups are LIFO):
	// dump logs, stop Postfix, Dovecot, the policy server, the watchdog.
	t.Cleanup(func() {
		if err := s.guard.done(); err != nil {
			t.Errorf("mailtest: %v", err)
		}
	})
	t.Cleanup(func() {
		if err := s.policy.Close(); err != nil {
			t.Errorf("mailtest: closing policy server: %v", err)
		}
	})
	t.Cleanup(func() {
		if err := s.stopDovecot(); err != nil {
			t.Errorf("mailtest: %v", err)
		}
	})
	t.Cleanup(func() {
		if err := s.stopPostfix(); err != nil {
			t.Errorf("mailtest: %v", err)
		}
	})
	t.Cleanup(func() {
		if t.Failed() {
			s.dumpLogs(t)
		}
	})

	// Free ports are found by binding :0 and closing; another process may
	// take one before a server binds it, so a start that fails to bind is
	// retried with fresh ports.
	var dovecotTook, postfixTook time.Duration
	for attempt := 1; ; attempt++ {
		if err := s.pickPorts(); err != nil {
			t.Fatalf("mailtest: %v", err)
		}
		t0 := time.Now()
		err := s.startDovecot()
		dovecotTook = time.Since(t0)
		if err == nil {
			t0 = time.Now()
			err = s.startPostfix()
			postfixTook = time.Since(t0)
			if err != nil {
				if serr := s.stopDovecot(); serr != nil {
					t.Logf("mailtest: %v", serr)
				}
			}
		}
		if err == nil {
			break
		}
		if attempt == 3 || !errors.Is(err, errAddrInUse) {
			s.dumpLogs(t)
			t.Fatalf("mailtest: %v", err)
		}
		t.Logf("mailtest: attempt %d: %v; retrying with other ports", attempt, err)
	}
	t.Logf("mailtest: stack up in %v (dovecot %v, postfix %v) in %s: imap %s, submission %s, mx %s, lmtp %s",
		time.Since(begin).Round(time.Millisecond), dovecotTook.Round(time.Millisecond),
		postfixTook.Round(time.Millisecond), dir, s.IMAPAddr, s.SubmissionAddr, s.MXAddr, s.LMTPAddr)
	return s
}

// requireServers skips (locally) or fails (CI) a test that cannot run the
// real stack.
func requireServers(t testing.TB) {
	t.Helper()
	ci := os.Getenv("CI") == "true"
	var missing []string
	for _, name := range []string{"dovecot", "postfix", "postqueue"} {
		if _, err := lookBin(name); err != nil {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		if ci {
			t.Fatalf("mailtest: %s missing under CI=true; %s", strings.Join(missing, ", "), installHint)
		}
		t.Skip(installHint)
	}
	if os.Geteuid() != 0 {
		const why = "mailtest: the Dovecot/Postfix stack needs root (mail uid switching); run ./scripts/test as root"
		if ci {
			t.Fatal(why + " (CI=true)")
		}
		t.Skip(why)
	}
}

// lookBin finds a server binary on PATH or in the sbin directories a
// non-root PATH often lacks.
func lookBin(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/usr/local/sbin", "/sbin"} {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("mailtest: %s not found in PATH or sbin", name)
}

func (s *Stack) checkOptions() error {
	doms := map[string]bool{}
	for _, u := range s.opt.Users {
		at := strings.LastIndexByte(u.Name, '@')
		if at <= 0 || at == len(u.Name)-1 || strings.ContainsAny(u.Name, " \t\r\n:") {
			return fmt.Errorf("user %q: want a full address like ivan@seller.test", u.Name)
		}
		if u.Password == "" || strings.ContainsAny(u.Password, ":\r\n") {
			return fmt.Errorf("user %q: password must be non-empty without ':' or newlines", u.Name)
		}
		name := strings.ToLower(u.Name)
		if _, dup := s.users[name]; dup {
			return fmt.Errorf("user %q listed twice", u.Name)
		}
		s.users[name] = u.Password
		if len(s.opt.Domains) == 0 {
			doms[name[at+1:]] = true
		}
	}
	for _, d := range s.opt.Domains {
		if d == "" || strings.ContainsAny(d, " \t\r\n,@") {
			return fmt.Errorf("domain %q is not a domain name", d)
		}
		doms[strings.ToLower(d)] = true
	}
	if len(doms) == 0 {
		return errors.New("options need Users or Domains")
	}
	for d := range doms {
		s.domains = append(s.domains, d)
	}
	sort.Strings(s.domains)
	return nil
}

func (s *Stack) path(elem ...string) string {
	return filepath.Join(append([]string{s.Dir}, elem...)...)
}

func (s *Stack) makeDirs() error {
	for _, d := range []string{"dovecot", "dovecot/run", "dovecot/state", "mail", "postfix", "postfix/queue", "postfix/data"} {
		if err := os.MkdirAll(s.path(d), 0o755); err != nil {
			return fmt.Errorf("creating %s: %w", d, err)
		}
	}
	if err := os.Chown(s.path("mail"), mailUID, mailUID); err != nil {
		return fmt.Errorf("chown mail directory: %w", err)
	}
	return nil
}

func (s *Stack) pickPorts() error {
	n := 4
	if s.opt.TLS {
		n = 6
	}
	got, err := freePorts(n)
	if err != nil {
		return err
	}
	p := ports{imap: got[0], lmtp: got[1], mx: got[2], submission: got[3]}
	if s.opt.TLS {
		p.imaps, p.smtps = got[4], got[5]
	}
	s.ports = p
	addr := func(port int) string {
		if port == 0 {
			return ""
		}
		return fmt.Sprintf("127.0.0.1:%d", port)
	}
	s.IMAPAddr, s.IMAPSAddr, s.LMTPAddr = addr(p.imap), addr(p.imaps), addr(p.lmtp)
	s.MXAddr, s.SubmissionAddr, s.SMTPSAddr = addr(p.mx), addr(p.submission), addr(p.smtps)
	return nil
}

// freePorts returns n distinct ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var out []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		ls = append(ls, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

// waitGreeting dials addr until the server greets with prefix, the deadline
// passes or alive reports the server died.
func waitGreeting(addr, prefix string, deadline time.Time, alive func() error) error {
	var last error
	for time.Now().Before(deadline) {
		if err := alive(); err != nil {
			return err
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.SetDeadline(time.Now().Add(3 * time.Second))
			line, rerr := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if rerr == nil && strings.HasPrefix(line, prefix) {
				return nil
			}
			last = fmt.Errorf("greeting %q: %v", strings.TrimSpace(line), rerr)
		} else {
			last = err
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("no %q greeting on %s: %v", prefix, addr, last)
}

// dumpLogs writes the tail of every server log to the test log.
func (s *Stack) dumpLogs(t testing.TB) {
	t.Helper()
	for _, f := range []string{"dovecot/stderr.log", "dovecot/dovecot.log", "postfix/maillog"} {
		b, err := os.ReadFile(s.path(f))
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				t.Logf("mailtest: reading %s: %v", f, err)
			}
			continue
		}
		t.Logf("mailtest: tail of %s:\n%s", s.path(f), tail(string(b), 80))
	}
	if s.postfixPid() != 0 {
		out, err := s.postfixCmd("postqueue", "-p")
		t.Logf("mailtest: postfix queue (err %v):\n%s", err, out)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("[... %d lines]", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}
