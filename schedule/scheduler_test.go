package schedule

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"followupd/clock"
)

// testLogger sends log output to t.Log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

type firedAt struct {
	id  uint64
	due time.Time
}

// harness runs a Scheduler on a fake clock and records what fires.
type harness struct {
	t     *testing.T
	clk   *clock.Fake
	s     *Scheduler
	fired chan firedAt
	done  chan error
	stop  context.CancelFunc
}

func start(t *testing.T, onFire func(h *harness, id uint64, due time.Time)) *harness {
	t.Helper()
	clk := clock.NewFake(t0)
	h := &harness{t: t, clk: clk, s: NewScheduler(clk, testLogger(t)), fired: make(chan firedAt, 10000), done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	h.stop = cancel
	go func() {
		h.done <- h.s.Run(ctx, func(ctx context.Context, id uint64, due time.Time) {
			if ctx == nil {
				t.Error("fire got a nil context")
			}
			h.fired <- firedAt{id, due}
			if onFire != nil {
				onFire(h, id, due)
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-h.done:
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	h.idle()
	return h
}

// idle waits (in real time, briefly) until Run has taken every change into
// account and is asleep on its timer.
func (h *harness) idle() {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !h.s.Idle() {
		if time.Now().After(deadline) {
			h.t.Fatal("scheduler never went idle")
		}
		time.Sleep(50 * time.Microsecond)
	}
}

// advance moves the fake clock and waits for Run to settle again.
func (h *harness) advance(d time.Duration) {
	h.t.Helper()
	h.clk.Advance(d)
	h.idle()
}

// expect checks that exactly these ids fired since the last call, in order.
// Run fires synchronously before going idle, so after idle() nothing is in
// flight.
func (h *harness) expect(ids ...uint64) []firedAt {
	h.t.Helper()
	var got []firedAt
	var gotIDs []uint64
	for {
		select {
		case f := <-h.fired:
			got = append(got, f)
			gotIDs = append(gotIDs, f.id)
			continue
		default:
		}
		break
	}
	if !slices.Equal(gotIDs, ids) {
		h.t.Fatalf("at t0+%v fired %v, want %v", h.clk.Now().Sub(t0), gotIDs, ids)
	}
	return got
}

func TestSchedulerFires(t *testing.T) {
	h := start(t, nil)
	h.s.Set(1, t0.Add(time.Hour))
	h.idle()
	h.advance(59 * time.Minute)
	h.expect()
	h.advance(time.Minute)
	got := h.expect(1)
	if !got[0].due.Equal(t0.Add(time.Hour)) {
		t.Errorf("fired with due %v, want %v", got[0].due, t0.Add(time.Hour))
	}
	if h.s.Len() != 0 {
		t.Errorf("Len() = %d after firing", h.s.Len())
	}
	h.advance(time.Hour)
	h.expect() // never twice
}

func TestSchedulerCancel(t *testing.T) {
	h := start(t, nil)
	h.s.Set(1, t0.Add(time.Hour))
	h.s.Set(2, t0.Add(time.Hour))
	h.idle()
	h.s.Cancel(1)
	h.s.Cancel(99) // not pending: no-op
	h.idle()
	h.advance(2 * time.Hour)
	h.expect(2)
}

func TestSchedulerMove(t *testing.T) {
	h := start(t, nil)
	h.s.Set(1, t0.Add(2*time.Hour))
	h.idle()
	h.s.Set(1, t0.Add(time.Hour)) // earlier
	h.idle()
	h.advance(time.Hour)
	h.expect(1)

	h.s.Set(2, h.clk.Now().Add(time.Hour))
	h.idle()
	h.s.Set(2, h.clk.Now().Add(3*time.Hour)) // later
	h.idle()
	h.advance(time.Hour)
	h.expect()
	if due, ok := h.s.Due(2); !ok || !due.Equal(t0.Add(4*time.Hour)) {
		t.Fatalf("Due(2) = %v, %v", due, ok)
	}
	h.advance(2 * time.Hour)
	h.expect(2)
}

func TestSchedulerDueOrderAndJumps(t *testing.T) {
	h := start(t, nil)
	// A week at once: everything fires in one wake-up, in due order, ties by id.
	h.s.Set(30, t0.Add(3*24*time.Hour))
	h.s.Set(10, t0.Add(24*time.Hour))
	h.s.Set(21, t0.Add(2*24*time.Hour))
	h.s.Set(20, t0.Add(2*24*time.Hour))
	h.s.Set(40, t0.Add(30*24*time.Hour))
	h.idle()
	h.advance(7 * 24 * time.Hour)
	h.expect(10, 20, 21, 30)
	if h.s.Len() != 1 {
		t.Fatalf("Len() = %d, want 1", h.s.Len())
	}
}

func TestSchedulerPastDueFiresAtOnce(t *testing.T) {
	h := start(t, nil)
	h.s.Set(1, t0.Add(-time.Hour))
	h.idle()
	h.expect(1)
}

// fire may schedule the next step itself, as the owner does after a send.
func TestSchedulerFireSetsNextStep(t *testing.T) {
	h := start(t, func(h *harness, id uint64, due time.Time) {
		if id < 3 {
			h.s.Set(id+1, due.Add(time.Hour))
		}
	})
	h.s.Set(1, t0.Add(time.Hour))
	h.idle()
	h.advance(time.Hour)
	h.expect(1)
	h.advance(time.Hour)
	h.expect(2)
	h.advance(5 * time.Hour)
	h.expect(3)
}

func TestSchedulerRunStops(t *testing.T) {
	clk := clock.NewFake(t0)
	s := NewScheduler(clk, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, func(context.Context, uint64, time.Time) {}) }()
	for !s.Idle() {
		time.Sleep(50 * time.Microsecond)
	}
	if err := s.Run(ctx, nil); !errors.Is(err, ErrRunning) {
		t.Errorf("second Run = %v, want ErrRunning", err)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop")
	}
	// It can run again afterwards.
	ctx2, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if err := s.Run(ctx2, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Run after restart = %v", err)
	}
}

// Cancelling ctx in the middle of a batch puts the unfired ids back.
func TestSchedulerStopMidBatch(t *testing.T) {
	clk := clock.NewFake(t0)
	s := NewScheduler(clk, testLogger(t))
	for id := uint64(1); id <= 3; id++ {
		s.Set(id, t0.Add(-time.Duration(4-id)*time.Minute))
	}
	ctx, cancel := context.WithCancel(context.Background())
	var got []uint64
	err := s.Run(ctx, func(_ context.Context, id uint64, _ time.Time) {
		got = append(got, id)
		cancel()
	})
	if !errors.Is(err, context.Canceled) || !slices.Equal(got, []uint64{1}) {
		t.Fatalf("Run = %v, fired %v; want Canceled after [1]", err, got)
	}
	if s.Len() != 2 {
		t.Fatalf("Len() = %d after stop, want 2 put back", s.Len())
	}
}

// A wall-clock jump is noticed within maxSleep even without a timer for it.
func TestSchedulerBoundedSleep(t *testing.T) {
	h := start(t, nil)
	if h.clk.Pending() != 1 {
		t.Fatalf("empty scheduler has %d timers armed, want 1 (maxSleep)", h.clk.Pending())
	}
	h.advance(maxSleep)
	h.expect()
}

func TestSchedulerConcurrentSetCancel(t *testing.T) {
	h := start(t, nil)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				id := uint64(g*1000 + i)
				h.s.Set(id, t0.Add(time.Duration(i+1)*time.Second))
				if i%2 == 1 {
					h.s.Cancel(id)
				}
			}
		}()
	}
	wg.Wait()
	h.idle()
	if h.s.Len() != 8*250 {
		t.Fatalf("Len() = %d, want %d", h.s.Len(), 8*250)
	}
	n := 0
	for h.s.Len() > 0 {
		h.advance(10 * time.Minute)
		for len(h.fired) > 0 {
			f := <-h.fired
			if f.id%2 == 1 {
				t.Fatalf("cancelled id %d fired", f.id)
			}
			n++
		}
	}
	if n != 8*250 {
		t.Fatalf("fired %d, want %d", n, 8*250)
	}
}
