package imapwatch

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"followupd/config"
)

func TestDialLimiterNeverMoreThanN(t *testing.T) {
	for _, n := range []int{1, 3, 8} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			l := NewDialLimiter(n)
			if l.Cap() != n {
				t.Fatalf("Cap = %d, want %d", l.Cap(), n)
			}
			var cur, peak atomic.Int32
			var wg sync.WaitGroup
			for range 50 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					release, err := l.Acquire(context.Background())
					if err != nil {
						t.Error(err)
						return
					}
					c := cur.Add(1)
					for {
						p := peak.Load()
						if c <= p || peak.CompareAndSwap(p, c) {
							break
						}
					}
					time.Sleep(time.Millisecond) // hold the slot so others pile up
					cur.Add(-1)
					release()
					release() // twice: harmless
				}()
			}
			wg.Wait()
			if p := peak.Load(); p > int32(n) {
				t.Errorf("peak %d holders, limit %d", p, n)
			}
			if p := peak.Load(); p < int32(min(n, 2)) {
				t.Errorf("peak %d holders: the limiter serialised more than asked", p)
			}
			if l.InUse() != 0 {
				t.Errorf("InUse = %d after every release", l.InUse())
			}
		})
	}
}

func TestDialLimiterCancelWhileWaiting(t *testing.T) {
	l := NewDialLimiter(1)
	release, err := l.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan error, 1)
	go func() {
		r, err := l.Acquire(ctx)
		if r != nil {
			r()
		}
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("Acquire returned %v while the only slot was held", err)
	case <-time.After(20 * time.Millisecond):
	}
	cancel()
	select {
	case err := <-got:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Acquire after cancel = %v, want context.Canceled", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Acquire did not return after ctx was cancelled")
	}
	// An already-ended ctx gets no slot even when one is free.
	release()
	if _, err := l.Acquire(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Acquire with an ended ctx = %v", err)
	}
	if l.InUse() != 0 {
		t.Errorf("InUse = %d, want 0", l.InUse())
	}
	var nl *DialLimiter
	if r, err := nl.Acquire(ctx); err != nil || r == nil {
		t.Errorf("nil limiter: %v", err)
	}
}

// slowGreeter is an IMAP server that answers each connection with PREAUTH
// after delay, and counts the connections still waiting for it (those in
// Dial on the client's side).
type slowGreeter struct {
	ln    net.Listener
	delay time.Duration

	mu            sync.Mutex
	waiting, peak int
	accepted      int
}

func startSlowGreeter(t *testing.T, delay time.Duration) *slowGreeter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &slowGreeter{ln: ln, delay: delay}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			g.mu.Lock()
			g.accepted++
			g.waiting++
			g.peak = max(g.peak, g.waiting)
			g.mu.Unlock()
			go func() {
				time.Sleep(g.delay)
				g.mu.Lock()
				g.waiting--
				g.mu.Unlock()
				_, _ = c.Write([]byte("* PREAUTH [CAPABILITY IMAP4rev1] hi\r\n"))
				// Keep it open until the client goes (it reads nothing more).
				buf := make([]byte, 512)
				for {
					if _, err := c.Read(buf); err != nil {
						c.Close()
						return
					}
				}
			}()
		}
	}()
	return g
}

func (g *slowGreeter) account() *config.Account {
	host, port, _ := net.SplitHostPort(g.ln.Addr().String())
	p, _ := strconv.Atoi(port)
	return &config.Account{Name: "a", Address: "a@example.com", IMAP: config.Server{Host: host, Port: p, Security: config.SecurityNone}}
}

func (g *slowGreeter) stats() (peak, accepted int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.peak, g.accepted
}

// Dial with a shared limiter: the server never sees more than N
// connections waiting for their greeting; without one it sees them all.
func TestDialHonoursLimiter(t *testing.T) {
	for _, tc := range []struct {
		name    string
		limiter *DialLimiter
		maxPeak int
		minPeak int
	}{
		{"limit 3", NewDialLimiter(3), 3, 2},
		{"no limit", nil, 12, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := startSlowGreeter(t, 30*time.Millisecond)
			acct := g.account()
			var wg sync.WaitGroup
			for range 12 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c, err := Dial(context.Background(), acct, "", DialOptions{Limiter: tc.limiter, Timeout: 5 * time.Second})
					if err != nil {
						t.Error(err)
						return
					}
					c.Close()
				}()
			}
			wg.Wait()
			peak, accepted := g.stats()
			if accepted != 12 {
				t.Errorf("accepted %d connections, want 12", accepted)
			}
			if peak > tc.maxPeak || peak < tc.minPeak {
				t.Errorf("peak %d connections waiting for a greeting, want %d..%d", peak, tc.minPeak, tc.maxPeak)
			}
			if tc.limiter.InUse() != 0 {
				t.Errorf("slots still held: %d", tc.limiter.InUse())
			}
		})
	}
}

// A Dial waiting for a slot returns when its ctx ends, and the wait is not
// part of Timeout.
func TestDialCancelWhileWaitingForSlot(t *testing.T) {
	g := startSlowGreeter(t, 0)
	l := NewDialLimiter(1)
	hold, err := l.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	_, err = Dial(ctx, g.account(), "", DialOptions{Limiter: l})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Dial while every slot is held = %v, want the ctx deadline", err)
	}
	if d := time.Since(t0); d > 2*time.Second {
		t.Errorf("Dial took %v to notice ctx", d)
	}
	if _, accepted := g.stats(); accepted != 0 {
		t.Errorf("the server saw %d connections; want none without a slot", accepted)
	}
	// Once the slot is free, a Dial with a short Timeout still succeeds
	// after having waited longer than that Timeout.
	go func() {
		time.Sleep(60 * time.Millisecond)
		hold()
	}()
	c, err := Dial(context.Background(), g.account(), "", DialOptions{Limiter: l, Timeout: 40 * time.Millisecond})
	if err != nil {
		t.Fatalf("Dial after waiting for the slot: %v", err)
	}
	c.Close()
}

// Every watcher of a process shares the limiter: while its only slot is
// held, no folder connects; released, all do.
func TestWatchersShareDialLimiter(t *testing.T) {
	srv, acct := setup(t, "Sent")
	appendN(t, srv, "Sent", 1, 3)
	l := NewDialLimiter(1)
	hold, err := l.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	sink := newSink()
	w := New(acct, testPass, sink, Options{Logger: testLogger(t), DialLimiter: l})
	run(t, w)
	time.Sleep(50 * time.Millisecond) // room for a wrong connect
	if n := srv.Conns(); n != 0 {
		t.Errorf("%d connections while the only dial slot is held", n)
	}
	hold()
	waitReady(t, w)
	if got := sink.uids("Sent"); len(got) != 3 {
		t.Errorf("Sent uids = %v", got)
	}
	if l.InUse() != 0 {
		t.Errorf("slots held after every folder connected: %d", l.InUse())
	}
}
