package interop_test

import (
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"followupd/store"
)

// Scenario 10: the bbolt file is locked by another process, unreadable by
// the daemon's user, or corrupt: `followupd run` says so clearly, naming
// the file, exits non-zero, and leaves the file exactly as it was. No mail
// server is needed: the store is opened before anything connects.
func TestScenario10BadStateFile(t *testing.T) {
	begin := time.Now()
	dir, err := os.MkdirTemp("", "followupd-statefile-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil { // the unprivileged run must traverse it
		t.Fatal(err)
	}
	stateDir := filepath.Join(dir, "state")
	dbPath := filepath.Join(stateDir, "followupd.db")
	writeFile(t, filepath.Join(dir, "password"), "unused\n", 0o644)
	cfgPath := filepath.Join(dir, "followupd.toml")
	// Port 9 on loopback: nothing listens; the daemon must fail before it
	// would ever dial.
	writeFile(t, cfgPath, fmt.Sprintf(`
state_dir = %q
[[account]]
name = "ivan"
address = "ivan@seller.test"
password_file = %q
imap = { host = "127.0.0.1", port = 9, security = "none" }
smtp = { host = "127.0.0.1", port = 9, security = "none" }
[[rule]]
name = "offer"
match.subject = ['offer']
  [[rule.step]]
  after = "1 business day"
  template = "t"
[template.t]
body = "Any news?"
`, stateDir, filepath.Join(dir, "password")), 0o644)

	// A real database with a tracked-looking history: created by the store.
	fresh := func() {
		t.Helper()
		os.RemoveAll(stateDir)
		db, err := store.Open(dbPath, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.PutMeta("interop", []byte("keep me")); err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(stateDir, 0o755); err != nil {
			t.Fatal(err)
		}
	}

	type fileState struct {
		sum  [32]byte
		size int64
		mode os.FileMode
		uid  uint32
		mt   time.Time
	}
	snapshot := func() fileState {
		t.Helper()
		b, err := os.ReadFile(dbPath)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(dbPath)
		if err != nil {
			t.Fatal(err)
		}
		return fileState{sum: sha256.Sum256(b), size: fi.Size(), mode: fi.Mode(), uid: fi.Sys().(*syscall.Stat_t).Uid, mt: fi.ModTime()}
	}

	cases := []struct {
		name    string
		prepare func() (cleanup func())
		asUser  bool     // run the daemon as nobody (65534)
		want    []string // in the daemon's error output, besides the path
	}{
		{name: "locked by another process", prepare: func() func() {
			fresh()
			held, err := store.Open(dbPath, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			return func() { held.Close() }
		}, want: []string{"locked by another process", "already running"}},
		{name: "unreadable", prepare: func() func() {
			fresh()
			if err := os.Chmod(dbPath, 0o600); err != nil {
				t.Fatal(err)
			}
			return nil
		}, asUser: true, want: []string{"permission denied", "check owner and permissions"}},
		{name: "corrupt: garbage", prepare: func() func() {
			fresh()
			junk := make([]byte, 64<<10)
			rand.Read(junk)
			writeFile(t, dbPath, string(junk), 0o600)
			return nil
		}, want: []string{"not a valid followupd database"}},
		{name: "corrupt: both meta pages damaged", prepare: func() func() {
			fresh()
			b, err := os.ReadFile(dbPath)
			if err != nil {
				t.Fatal(err)
			}
			ps := os.Getpagesize()
			for _, page := range []int{0, 1} {
				for i := 16; i < 64; i++ { // magic, version, page size, ... checksum
					b[page*ps+i] ^= 0xA5
				}
			}
			writeFile(t, dbPath, string(b), 0o600)
			return nil
		}, want: []string{"not a valid followupd database"}},
		{name: "corrupt: truncated", prepare: func() func() {
			fresh()
			b, err := os.ReadFile(dbPath)
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, dbPath, string(b[:100]), 0o600)
			return nil
		}, want: []string{"not a valid followupd database"}},
	}
	for _, c := range cases {
		t.Run(strings.NewReplacer(" ", "_", ":", "").Replace(c.name), func(t *testing.T) {
			if c.asUser && os.Geteuid() != 0 {
				// Like mailtest: a plain user may skip locally, CI runs as root.
				if os.Getenv("CI") == "true" {
					t.Fatal("needs root to run the daemon as another user (CI=true)")
				}
				t.Skip("needs root to run the daemon as another user")
			}
			t0 := time.Now()
			if cleanup := c.prepare(); cleanup != nil {
				defer cleanup()
			}
			before := snapshot()
			out := &logBuffer{}
			p := startProc(t, nil, out, func(cmd *exec.Cmd) {
				if c.asUser {
					cmd.SysProcAttr.Credential = &syscall.Credential{Uid: 65534, Gid: 65534}
				}
			}, "run", "-config", cfgPath)
			code := p.wait(15 * time.Second)
			msg := strings.TrimSpace(out.String())
			if code <= 0 {
				t.Errorf("exit code %d (-1: killed by a signal; %d: still running after 15s), want an error exit; output:\n%s", code, stillRunning, msg)
			}
			for _, want := range append([]string{dbPath}, c.want...) {
				if !strings.Contains(msg, want) {
					t.Errorf("output does not say %q:\n%s", want, msg)
				}
			}
			if strings.Contains(msg, "panic") || strings.Contains(msg, "goroutine ") {
				t.Errorf("the daemon crashed instead of refusing:\n%s", msg)
			}
			if after := snapshot(); after != before {
				t.Errorf("the database file changed: before %+v, after %+v", before, after)
			}
			entries, _ := os.ReadDir(stateDir)
			if len(entries) != 1 {
				var names []string
				for _, e := range entries {
					names = append(names, e.Name())
				}
				t.Errorf("state directory holds %v, want only followupd.db", names)
			}
			t.Logf("scenario 10: %s: exit %d in %v: %s", c.name, code, time.Since(t0).Round(time.Millisecond), firstLine(msg))
		})
	}
	took(t, 10, "locked / unreadable / corrupt state file -> clear error, exit non-zero, untouched", begin)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
