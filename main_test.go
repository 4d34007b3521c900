package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
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

func TestCommands(t *testing.T) {
	dir := t.TempDir()
	broken := filepath.Join(dir, "broken.toml")
	// Three problems on three lines; check must print all of them.
	if err := os.WriteFile(broken, []byte(`state_dir = "/tmp/x"
send_window = "25:00-18:00"
no_such_key = 1

[[account]]
address = "ivan@seller.test"
password_env = "X"
imap = { host = "imap.seller.test", security = "bogus" }
smtp = { host = "smtp.seller.test" }
`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("NOTIFY_SOCKET", "")
	t.Setenv("INVOCATION_ID", "")
	for _, tc := range []struct {
		name     string
		args     []string
		code     int
		stdout   string // regexp
		stderr   string // regexp
		minLines int    // of stderr matching FILE:LINE:
	}{
		{name: "version", args: []string{"version"}, code: 0, stdout: `^followupd \S+\n$`},
		{name: "unknown", args: []string{"frobnicate"}, code: 2, stderr: `unknown command "frobnicate"`},
		{name: "no command", args: nil, code: 2, stderr: `usage: followupd`},
		{name: "help", args: []string{"help"}, code: 0, stdout: `usage: followupd`},
		{name: "check broken", args: []string{"check", "-config", broken}, code: 1, minLines: 3},
		{name: "check missing", args: []string{"check", "-config", filepath.Join(dir, "nope.toml")}, code: 1, stderr: `nope\.toml`},
		{name: "run broken", args: []string{"run", "-config", broken}, code: 1, minLines: 3},
		{name: "run bad flag", args: []string{"run", "-bogus"}, code: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(tc.args, &out, &errb)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tc.code, errb.String())
			}
			if tc.stdout != "" && !regexp.MustCompile(tc.stdout).MatchString(out.String()) {
				t.Errorf("stdout %q does not match %s", out.String(), tc.stdout)
			}
			if tc.stderr != "" && !regexp.MustCompile(tc.stderr).MatchString(errb.String()) {
				t.Errorf("stderr %q does not match %s", errb.String(), tc.stderr)
			}
			if tc.minLines > 0 {
				re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(broken) + `:\d+: `)
				if n := len(re.FindAllString(errb.String(), -1)); n < tc.minLines {
					t.Errorf("%d FILE:LINE: problems, want >= %d:\n%s", n, tc.minLines, errb.String())
				}
			}
		})
	}
}

func TestServiceLogger(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	journal := fmt.Sprintf("%d:%d", st.Dev, st.Ino)
	for _, tc := range []struct {
		name, stream, format string
		want, not            []string
	}{
		{name: "journal", stream: journal, format: "text", want: []string{"<6>level=INFO msg=hello", "<3>level=ERROR msg=bad", "<4>level=WARN"}, not: []string{"time=", "msg=debugging"}},
		{name: "journal of another file", stream: "1:2", format: "text", want: []string{"time=", "level=INFO msg=hello"}, not: []string{"<6>"}},
		{name: "terminal or pipe", format: "text", want: []string{"time=", "level=INFO msg=hello"}, not: []string{"<6>"}},
		{name: "json", stream: journal, format: "json", want: []string{`"msg":"hello"`, `"time":`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := f.Truncate(0); err != nil {
				t.Fatal(err)
			}
			if _, err := f.Seek(0, 0); err != nil {
				t.Fatal(err)
			}
			t.Setenv("JOURNAL_STREAM", tc.stream)
			lv := new(slog.LevelVar)
			log, err := newServiceLogger(f, tc.format, "info", lv)
			if err != nil {
				t.Fatal(err)
			}
			log = log.With("account", "ivan")
			log.Debug("debugging")
			log.Info("hello", "n", 1)
			log.Warn("careful")
			log.Error("bad", "err", "boom")
			b, err := os.ReadFile(f.Name())
			if err != nil {
				t.Fatal(err)
			}
			got := string(b)
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("missing %q in\n%s", w, got)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(got, w) {
					t.Errorf("unexpected %q in\n%s", w, got)
				}
			}
			if tc.format == "json" {
				for _, line := range strings.Split(strings.TrimSpace(got), "\n") {
					if !json.Valid([]byte(line)) {
						t.Errorf("not JSON: %s", line)
					}
				}
			}
			// A reload lowers the level through the LevelVar.
			lv.Set(slog.LevelDebug)
			log.Debug("now debugging")
			b, _ = os.ReadFile(f.Name())
			if !strings.Contains(string(b), "now debugging") {
				t.Error("LevelVar change not applied")
			}
		})
	}
	if _, err := newServiceLogger(f, "xml", "info", new(slog.LevelVar)); err == nil {
		t.Error("format xml accepted")
	}
	if _, err := newServiceLogger(f, "text", "loud", new(slog.LevelVar)); err == nil {
		t.Error("level loud accepted")
	}
}

func TestSecondSignalExitsAtOnce(t *testing.T) {
	sigs := make(chan os.Signal, 2)
	done := make(chan struct{})
	cancelled := make(chan struct{})
	exited := make(chan int, 1)
	go handleSignals(done, sigs, nil, "", slog.New(slog.DiscardHandler), func() { close(cancelled) }, func(code int) { exited <- code })
	sigs <- syscall.SIGTERM
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("first SIGTERM did not cancel")
	}
	select {
	case code := <-exited:
		t.Fatalf("first signal exited (%d)", code)
	case <-time.After(50 * time.Millisecond):
	}
	sigs <- syscall.SIGINT
	select {
	case code := <-exited:
		if code == 0 {
			t.Error("second signal exited 0")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("second signal did not exit")
	}
	close(done)
}

// TestRunBinary builds followupd and runs it as systemd would, against an
// in-memory IMAP server: it must tell the notify socket READY=1 after the
// first sync, reload on SIGHUP (and reject a broken file with FILE:LINE
// lines, staying up), and exit 0 within 10s of SIGTERM.
func TestRunBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "followupd")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	imap := imaptest.NewServer(t)
	const user, pw = "ivan@seller.test", "secret"
	if err := imap.AddUser(user, pw, "INBOX", "Sent", "Drafts"); err != nil {
		t.Fatal(err)
	}
	smtp, err := smtptest.Start("127.0.0.1:0", smtptest.Options{Users: map[string]string{user: pw}})
	if err != nil {
		t.Fatal(err)
	}
	defer smtp.Close()
	// password_file is relative: found in $CREDENTIALS_DIRECTORY, as with
	// LoadCredential=.
	creds := filepath.Join(dir, "creds")
	if err := os.Mkdir(creds, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(creds, "ivan.pass"), []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ihost, iport, _ := net.SplitHostPort(imap.Addr())
	shost, sport, _ := net.SplitHostPort(smtp.Addr())
	cfgPath := filepath.Join(dir, "followupd.toml")
	writeCfg := func(body string) {
		t.Helper()
		cfg := fmt.Sprintf(`state_dir = %q
time_zone = "Europe/Moscow"

[[account]]
address = %q
password_file = "ivan.pass"
imap = { host = %q, port = %s, security = "none" }
smtp = { host = %q, port = %s, security = "none" }

[[rule]]
name = "offer"
match.subject = ['(?i)offer']
  [[rule.step]]
  after = "3 business days"
  template = "first"

[template.first]
body = %q
`, filepath.Join(dir, "state"), user, ihost, iport, shost, sport, body)
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeCfg("first")
	if err := os.Mkdir(filepath.Join(dir, "state"), 0o700); err != nil {
		t.Fatal(err)
	}

	// The notify socket systemd would listen on.
	sockPath := filepath.Join(dir, "notify.sock")
	sock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sockPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	var notesMu sync.Mutex
	var notes []string
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := sock.Read(buf)
			if err != nil {
				return
			}
			notesMu.Lock()
			notes = append(notes, string(buf[:n]))
			notesMu.Unlock()
		}
	}()
	noted := func(prefix string) int {
		notesMu.Lock()
		defer notesMu.Unlock()
		n := 0
		for _, s := range notes {
			for _, l := range strings.Split(s, "\n") {
				if strings.HasPrefix(l, prefix) {
					n++
				}
			}
		}
		return n
	}

	cmd := exec.Command(bin, "run", "-config", cfgPath)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sockPath, "CREDENTIALS_DIRECTORY="+creds, "JOURNAL_STREAM=")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	var logMu sync.Mutex
	var logs strings.Builder
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logMu.Lock()
			logs.WriteString(sc.Text() + "\n")
			logMu.Unlock()
		}
		exited <- cmd.Wait()
	}()
	defer func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			logMu.Lock()
			t.Logf("daemon log:\n%s", logs.String())
			logMu.Unlock()
		}
	}()
	logHas := func(s string) bool {
		logMu.Lock()
		defer logMu.Unlock()
		return strings.Contains(logs.String(), s)
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("READY=1", func() bool { return noted("READY=1") >= 1 })
	if noted("STATUS=") == 0 {
		t.Error("no STATUS= with READY=1")
	}

	// A good reload.
	writeCfg("second")
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor("configuration reloaded", func() bool { return logHas("configuration reloaded") })
	waitFor("RELOADING=1 and READY=1 again", func() bool { return noted("RELOADING=1") == 1 && noted("READY=1") >= 2 })

	// A broken one: rejected with FILE:LINE, the daemon stays up.
	if err := os.WriteFile(cfgPath, []byte("state_dir = 1\nbogus = true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor("rejection", func() bool { return logHas("new configuration rejected") })
	if !logHas(cfgPath+":1:") || !logHas(cfgPath+":2:") {
		t.Error("rejected config's problems not logged with FILE:LINE")
	}
	select {
	case err := <-exited:
		t.Fatalf("daemon exited after a broken reload: %v", err)
	case <-time.After(200 * time.Millisecond):
	}

	// SIGTERM: exit 0 within 10s, STOPPING=1 sent.
	t0 := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		took := time.Since(t0)
		t.Logf("exit after SIGTERM took %s", took)
		if err != nil {
			t.Errorf("exit: %v, want status 0", err)
		}
		if took > 10*time.Second {
			t.Errorf("stopping took %s, want < 10s", took)
		}
	case <-time.After(12 * time.Second):
		t.Fatal("no exit within 12s of SIGTERM")
	}
	if noted("STOPPING=1") == 0 {
		t.Error("no STOPPING=1")
	}
	if !logHas("followupd stopped") {
		t.Error("no \"followupd stopped\" log line")
	}
}
