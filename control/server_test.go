package control

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fake is a Backend with canned answers.
type fake struct{ backup []byte }

func (fake) Status(context.Context) (*Status, error) {
	return &Status{Version: "test", Counts: map[string]int{"waiting": 2}}, nil
}
func (fake) List(_ context.Context, q ListQuery) ([]FollowUp, error) {
	if q.State == "bogus" {
		return nil, Errorf(CodeBadRequest, "unknown state %q", q.State)
	}
	return []FollowUp{{ID: 1, State: "waiting", Account: q.Account}}, nil
}
func (fake) Show(_ context.Context, id uint64) (*Thread, error) {
	return nil, Errorf(CodeNotFound, "no follow-up %d", id)
}
func (fake) Cancel(_ context.Context, id uint64) (*FollowUp, error) {
	return nil, errors.New("disk on fire")
}
func (fake) Snooze(_ context.Context, id uint64, r SnoozeRequest) (*FollowUp, error) {
	return &FollowUp{ID: id, Outcome: r.By}, nil
}
func (fake) Resolve(_ context.Context, id uint64, r ResolveRequest) (*FollowUp, error) {
	return nil, Errorf(CodeConflict, "cannot resolve %d", id)
}
func (fake) Approve(_ context.Context, r ApproveRequest) (*ApproveResult, error) {
	return &ApproveResult{Approved: []FollowUp{}}, nil
}
func (f fake) Backup(_ context.Context, w io.Writer) (int64, error) {
	n, err := w.Write(f.backup)
	return int64(n), err
}

func serve(t *testing.T, path string) *Server {
	t.Helper()
	s, err := Listen(path, fake{backup: bytes.Repeat([]byte("bolt"), 10000)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

func TestServerAndClient(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "control.sock")
	serve(t, path)
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket %v %v", fi, err)
	}
	c := NewClient(path)
	ctx := context.Background()

	st, err := c.Status(ctx)
	if err != nil || st.Counts["waiting"] != 2 {
		t.Errorf("status %+v %v", st, err)
	}
	fus, err := c.List(ctx, ListQuery{Account: "a b"})
	if err != nil || len(fus) != 1 || fus[0].Account != "a b" {
		t.Errorf("list %+v %v", fus, err)
	}
	f, err := c.Snooze(ctx, 7, SnoozeRequest{By: "2 days"})
	if err != nil || f.ID != 7 || f.Outcome != "2 days" {
		t.Errorf("snooze %+v %v", f, err)
	}
	for _, tc := range []struct {
		name string
		call func() error
		code string
	}{
		{"not found", func() error { _, err := c.Show(ctx, 9); return err }, CodeNotFound},
		{"conflict", func() error { _, err := c.Resolve(ctx, 9, ResolveRequest{Outcome: "sent"}); return err }, CodeConflict},
		{"bad request", func() error { _, err := c.List(ctx, ListQuery{State: "bogus"}); return err }, CodeBadRequest},
		{"internal", func() error { _, err := c.Cancel(ctx, 9); return err }, CodeInternal},
		{"unknown field", func() error {
			return c.do(ctx, http.MethodPost, "/approve", map[string]any{"everything": true}, new(ApproveResult))
		}, CodeBadRequest},
		{"unknown path", func() error { return c.do(ctx, http.MethodGet, "/nope", nil, new(Status)) }, CodeNotFound},
		{"bad id", func() error { return c.do(ctx, http.MethodGet, "/followups/x", nil, new(Thread)) }, CodeBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			var e *Error
			if !errors.As(err, &e) || e.Code != tc.code {
				t.Errorf("got %v, want code %s", err, tc.code)
			}
		})
	}

	var buf bytes.Buffer
	n, err := c.Backup(ctx, &buf)
	if err != nil || n != 40000 || buf.Len() != 40000 {
		t.Errorf("backup %d bytes, %v", n, err)
	}
}

func TestListenRefusals(t *testing.T) {
	dir := t.TempDir()
	// A regular file is never removed.
	file := filepath.Join(dir, "file.sock")
	os.WriteFile(file, []byte("x"), 0o600)
	if _, err := Listen(file, fake{}, nil); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("regular file: %v", err)
	}
	// A live socket belongs to another daemon.
	live := filepath.Join(dir, "live.sock")
	serve(t, live)
	if _, err := Listen(live, fake{}, nil); err == nil || !strings.Contains(err.Error(), "another followupd") {
		t.Errorf("live socket: %v", err)
	}
	// A stale socket (its process died) is replaced.
	stale := filepath.Join(dir, "stale.sock")
	ln, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if _, err := NewClient(stale).Status(context.Background()); !isNotRunning(err) {
		t.Errorf("stale socket: %v, want NotRunningError", err)
	}
	serve(t, stale)
	if _, err := NewClient(stale).Status(context.Background()); err != nil {
		t.Errorf("after replacing the stale socket: %v", err)
	}
}

func TestNotRunning(t *testing.T) {
	path := filepath.Join(t.TempDir(), "control.sock")
	_, err := NewClient(path).Status(context.Background())
	if !isNotRunning(err) || !strings.Contains(err.Error(), "followupd is not running (no socket at "+path+")") {
		t.Errorf("got %v", err)
	}
	var o, e bytes.Buffer
	if code := Main("list", []string{"-socket", path}, &o, &e); code != ExitNotRunning || !strings.Contains(e.String(), "systemctl start followupd") {
		t.Errorf("list: exit %d %s", code, e.String())
	}
}

func TestVersionMismatch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "control.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(versionHeader, "2")
		w.Write([]byte("{}"))
	})}
	go srv.Serve(ln)
	defer srv.Close()
	if _, err := NewClient(path).Status(context.Background()); err == nil || !strings.Contains(err.Error(), `speaks control protocol "2"`) {
		t.Errorf("got %v", err)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"show"}, {"show", "x"}, {"snooze", "1"}, {"snooze", "1", "whenever"}, {"resolve", "1", "maybe"},
		{"approve"}, {"approve", "1", "-all"}, {"backup"}, {"status", "extra"},
	} {
		var o, e bytes.Buffer
		if code := Main(args[0], append([]string{"-socket", "/nonexistent"}, args[1:]...), &o, &e); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, e.String())
		}
	}
}

func isNotRunning(err error) bool {
	var nr *NotRunningError
	return errors.As(err, &nr)
}
