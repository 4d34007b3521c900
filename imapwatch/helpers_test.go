package imapwatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"followupd/config"
	"followupd/imapwatch/imaptest"
	"followupd/message"
)

const (
	testUser = "sales@example.com"
	testPass = "s3cret-pass"
)

// memSink records what a Watcher hands over. failMessages makes the next n
// HandleMessages calls fail.
type memSink struct {
	mu           sync.Mutex
	batches      map[string][][]*message.Record // by mailbox
	flags        []flagEvent
	states       map[string]State
	failMessages int
	calls        int
}

type flagEvent struct {
	mailbox     string
	role        message.Role
	uidvalidity uint32
	uid         uint32
	flags       []string
}

func newSink() *memSink {
	return &memSink{batches: map[string][][]*message.Record{}, states: map[string]State{}}
}

func (s *memSink) HandleMessages(_ context.Context, recs []*message.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.failMessages > 0 {
		s.failMessages--
		return errors.New("sink says no")
	}
	if len(recs) == 0 {
		return errors.New("empty batch")
	}
	mb := recs[0].Mailbox
	s.batches[mb] = append(s.batches[mb], recs)
	return nil
}

func (s *memSink) HandleFlags(_ context.Context, account, mailbox string, role message.Role, uidvalidity, uid uint32, flags []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if account != testUser {
		return fmt.Errorf("account %q", account)
	}
	s.flags = append(s.flags, flagEvent{mailbox, role, uidvalidity, uid, flags})
	return nil
}

func (s *memSink) LoadState(account, mailbox string) (State, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.states[account+"/"+mailbox], nil
}

func (s *memSink) SaveState(account, mailbox string, st State) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.states[account+"/"+mailbox] = st
	return nil
}

func (s *memSink) state(mailbox string) State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.states[testUser+"/"+mailbox]
}

// uids returns every UID delivered for mailbox, in delivery order.
func (s *memSink) uids(mailbox string) []uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []uint32
	for _, b := range s.batches[mailbox] {
		for _, r := range b {
			out = append(out, r.UID)
		}
	}
	return out
}

func (s *memSink) records(mailbox string) []*message.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*message.Record
	for _, b := range s.batches[mailbox] {
		out = append(out, b...)
	}
	return out
}

func (s *memSink) batchSizes(mailbox string) []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int
	for _, b := range s.batches[mailbox] {
		out = append(out, len(b))
	}
	return out
}

func (s *memSink) flagEvents() []flagEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]flagEvent(nil), s.flags...)
}

func (s *memSink) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.batches = map[string][][]*message.Record{}
	s.flags = nil
}

// waitFor polls cond (this waits for a server round trip, never for a
// reminder delay) and fails the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// setup starts a server with testUser, INBOX and the given mailboxes.
func setup(t *testing.T, mailboxes ...string) (*imaptest.Server, *config.Account) {
	t.Helper()
	srv := imaptest.NewServer(t)
	if err := srv.AddUser(testUser, testPass, mailboxes...); err != nil {
		t.Fatal(err)
	}
	return srv, srv.Account(testUser)
}

// run starts w and stops it (waiting for Run to return) when the test ends,
// or earlier through the returned stop func.
func run(t *testing.T, w *Watcher) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run = %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Errorf("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func waitReady(t *testing.T, w *Watcher) {
	t.Helper()
	select {
	case <-w.Ready():
	case <-time.After(5 * time.Second):
		t.Fatalf("watcher not ready; status %+v", w.Status())
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// rawMsg builds a small message; n makes it unique.
func rawMsg(n int, subject string, extra ...string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "Message-ID: <m%d@example.com>\r\n", n)
	fmt.Fprintf(&b, "From: Sales <%s>\r\n", testUser)
	b.WriteString("To: client@customer.example\r\n")
	fmt.Fprintf(&b, "Subject: %s\r\n", subject)
	b.WriteString("Date: Mon, 04 May 2026 10:00:00 +0300\r\n")
	for _, e := range extra {
		b.WriteString(e + "\r\n")
	}
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
	fmt.Fprintf(&b, "Body of message %d.\r\n", n)
	return []byte(b.String())
}

func appendN(t *testing.T, srv *imaptest.Server, mailbox string, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		if err := srv.Append(testUser, mailbox, rawMsg(i, fmt.Sprintf("Offer %d", i))); err != nil {
			t.Fatal(err)
		}
	}
}

func seq(from, to uint32) []uint32 {
	var out []uint32
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}
