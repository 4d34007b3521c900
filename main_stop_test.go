package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"followupd/imapwatch/imaptest"
	"followupd/internal/smtptest"
)

// Shutdown of the real binary (issue: SIGTERM must stop it within 10s,
// whatever the service manager or the servers do meanwhile).

// stopBinDir holds the binary stopBin made; TestMain removes it.
var stopBinDir string

func TestMain(m *testing.M) {
	code := m.Run()
	if stopBinDir != "" {
		os.RemoveAll(stopBinDir)
	}
	os.Exit(code)
}

// stopBin is the binary the stop tests run, built once.
var stopBin = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "followupd-stop-test-")
	if err != nil {
		return "", err
	}
	stopBinDir = dir
	bin := filepath.Join(dir, "followupd")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// stopWorld is an in-memory IMAP server with n accounts, an SMTP server and
// a config file watching all of them.
type stopWorld struct {
	imap    *imaptest.Server
	smtp    *smtptest.Server
	cfgPath string
}

func newStopWorld(t *testing.T, n int) *stopWorld {
	t.Helper()
	const pw = "secret"
	w := &stopWorld{imap: imaptest.NewServer(t)}
	var err error
	w.smtp, err = smtptest.Start("127.0.0.1:0", smtptest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.smtp.Close() })
	dir := t.TempDir()
	ihost, iport, _ := net.SplitHostPort(w.imap.Addr())
	shost, sport, _ := net.SplitHostPort(w.smtp.Addr())
	var sb strings.Builder
	fmt.Fprintf(&sb, "state_dir = %q\ntime_zone = \"UTC\"\n", filepath.Join(dir, "state"))
	for i := range n {
		user := fmt.Sprintf("u%04d@seller.test", i)
		if err := w.imap.AddUser(user, pw, "INBOX", "Sent", "Drafts"); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&sb, `
[[account]]
address = %q
password_env = "FOLLOWUPD_TEST_PW"
imap = { host = %q, port = %s, security = "none" }
smtp = { host = %q, port = %s, security = "none" }
folders = { inbox = "INBOX", sent = "Sent", drafts = "Drafts" }
`, user, ihost, iport, shost, sport)
	}
	sb.WriteString(`
[[rule]]
name = "offer"
match.subject = ['(?i)offer']
  [[rule.step]]
  after = "3 business days"
  template = "first"

[template.first]
body = "Any news?"
`)
	w.cfgPath = filepath.Join(dir, "followupd.toml")
	if err := os.WriteFile(w.cfgPath, []byte(sb.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return w
}

// stopProc is a running `followupd run` whose log is collected.
type stopProc struct {
	cmd    *exec.Cmd
	exited chan error

	mu  sync.Mutex
	log strings.Builder
}

func (w *stopWorld) start(t *testing.T, env ...string) *stopProc {
	t.Helper()
	bin, err := stopBin()
	if err != nil {
		t.Fatal(err)
	}
	p := &stopProc{cmd: exec.Command(bin, "run", "-config", w.cfgPath), exited: make(chan error, 1)}
	p.cmd.Env = append(os.Environ(), append([]string{"FOLLOWUPD_TEST_PW=secret", "JOURNAL_STREAM=", "NOTIFY_SOCKET="}, env...)...)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.log.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
		p.exited <- p.cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		if t.Failed() {
			t.Logf("daemon log (tail):\n%s", p.tail(20))
		}
	})
	return p
}

func (p *stopProc) has(s string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Contains(p.log.String(), s)
}

func (p *stopProc) tail(n int) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	log, _, _ := strings.Cut(p.log.String(), "SIGQUIT: quit") // the log, not the dump
	lines := strings.Split(strings.TrimRight(log, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func (p *stopProc) waitLog(t *testing.T, s string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !p.has(s) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q logged within %v", s, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop sends SIGTERM and fails the test unless the process exits 0 within
// 10s; on a hang it gets SIGQUIT so the log shows every goroutine.
func (p *stopProc) stop(t *testing.T) time.Duration {
	t.Helper()
	t0 := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.exited:
		took := time.Since(t0)
		if err != nil {
			t.Errorf("exit after SIGTERM: %v, want status 0", err)
		}
		if took > 10*time.Second {
			t.Errorf("stopping took %v, want < 10s", took)
		}
		if !p.has("followupd stopped") {
			t.Error(`no "followupd stopped" log line`)
		}
		return took
	case <-time.After(12 * time.Second):
	}
	_ = p.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-p.exited:
	case <-time.After(3 * time.Second):
	}
	p.mu.Lock()
	dump := p.log.String()
	p.mu.Unlock()
	t.Fatalf("still running 12s after SIGTERM; goroutines in followupd's code:\n%s", ownStacks(dump))
	return 0
}

// ownStacks condenses a SIGQUIT dump to the goroutines that run
// followupd's code, identical stacks counted once, frames without their
// arguments and file lines.
func ownStacks(dump string) string {
	args := regexp.MustCompile(`\(0x[0-9a-f, .{}?x]*\)$|\([^()]*\)$`)
	count := map[string]int{}
	var order []string
	for _, g := range strings.Split(dump, "\n\n") {
		head, body, ok := strings.Cut(g, "\n")
		if !ok || !strings.HasPrefix(head, "goroutine ") || !strings.Contains(body, "followupd/") && !strings.Contains(body, "main.") {
			continue
		}
		state := head
		if i := strings.Index(head, "["); i >= 0 {
			state = head[i:]
		}
		keep := []string{state}
		for _, l := range strings.Split(body, "\n") {
			if l == "" || strings.HasPrefix(l, "\t") || strings.HasPrefix(l, "runtime.") || strings.HasPrefix(l, "created by") {
				continue
			}
			keep = append(keep, "  "+args.ReplaceAllString(l, "(...)"))
		}
		k := strings.Join(keep, "\n")
		if count[k] == 0 {
			order = append(order, k)
		}
		count[k]++
	}
	var out []string
	for _, k := range order {
		out = append(out, fmt.Sprintf("%d× %s", count[k], k))
	}
	return strings.Join(out, "\n")
}

// TestStopWithStuckNotifySocket: a service manager that stopped reading its
// notify socket (the receive queue of a datagram socket is full, so a
// blocking send waits for ever) must neither keep SIGHUP's reload nor
// SIGTERM's shutdown from finishing.
func TestStopWithStuckNotifySocket(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	w := newStopWorld(t, 20)
	sockPath := filepath.Join(t.TempDir(), "notify.sock")
	sock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sockPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	p := w.start(t, "NOTIFY_SOCKET="+sockPath)

	// Read until READY=1, then stop reading and fill the queue.
	ready := make(chan struct{})
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := sock.Read(buf)
			if err != nil {
				return
			}
			if strings.Contains(string(buf[:n]), "READY=1") {
				close(ready)
				return
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(15 * time.Second):
		t.Fatal("no READY=1 within 15s")
	}
	filler, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: sockPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer filler.Close()
	full := false
	for i := 0; i < 100000 && !full; i++ {
		_ = filler.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
		if _, err := filler.Write([]byte("STATUS=filler")); err != nil {
			full = true
		}
	}
	if !full {
		t.Fatal("could not fill the notify socket's queue")
	}

	// A reload (RELOADING=1, READY=1), then SIGTERM (STOPPING=1).
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	took := p.stop(t)
	t.Logf("stopped %v after SIGTERM with the notify socket full", took)
}
