package send

import (
	"context"
	"errors"
	"sort"
	"testing"
	"time"

	"followupd/clock"
)

var t0 = time.Date(2026, 5, 18, 9, 0, 0, 0, time.UTC)

func TestPacerSpacing(t *testing.T) {
	type call struct {
		at       time.Duration // offset from t0 of the Reserve call
		min, max time.Duration // the slot must fall in [t0+min, t0+max]
	}
	gap20 := 3 * time.Minute // 20 per hour
	for _, tc := range []struct {
		name    string
		perHour int
		calls   []call
	}{
		{"idle pacer sends at once", 20, []call{{0, 0, 0}}},
		{"burst is spread by the gap plus jitter", 20, []call{
			{0, 0, 0},
			{0, gap20, gap20 + gap20/4},
			{0, 2 * gap20, 2*gap20 + 2*gap20/4},
			{0, 3 * gap20, 3*gap20 + 3*gap20/4},
		}},
		{"after a quiet spell, at once again", 20, []call{
			{0, 0, 0},
			{10 * time.Minute, 10 * time.Minute, 10 * time.Minute},
			{10*time.Minute + time.Second, 13 * time.Minute, 13*time.Minute + gap20/4},
		}},
		{"exactly one gap later is not delayed", 20, []call{
			{0, 0, 0},
			{gap20, gap20, gap20},
		}},
		{"one per hour", 1, []call{
			{0, 0, 0},
			{time.Minute, time.Hour, time.Hour + 15*time.Minute},
		}},
		{"zero means the default 20", 0, []call{
			{0, 0, 0},
			{0, gap20, gap20 + gap20/4},
		}},
		{"a caller behind the last slot waits for it", 60, []call{
			{0, 0, 0},
			{0, time.Minute, time.Minute + 15*time.Second},
			{-time.Hour, 2 * time.Minute, 2*time.Minute + 30*time.Second},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := NewPacer(tc.perHour, clock.NewFake(t0), 1)
			var prev time.Time
			for i, c := range tc.calls {
				got := p.Reserve(t0.Add(c.at))
				if got.Before(t0.Add(c.min)) || got.After(t0.Add(c.max)) {
					t.Errorf("call %d at +%v: slot +%v, want within [+%v, +%v]", i, c.at, got.Sub(t0), c.min, c.max)
				}
				if i > 0 && got.Sub(prev) < p.Gap() {
					t.Errorf("call %d: slots %v apart, less than the gap %v", i, got.Sub(prev), p.Gap())
				}
				prev = got
			}
		})
	}
}

// No hour ever holds more than perHour sends, whatever the arrival pattern,
// and the jitter actually varies.
func TestPacerNeverExceedsRate(t *testing.T) {
	for _, perHour := range []int{1, 7, 20, 120} {
		p := NewPacer(perHour, clock.NewFake(t0), int64(perHour))
		var slots []time.Time
		now := t0
		for i := 0; i < 300; i++ {
			slots = append(slots, p.Reserve(now))
			now = now.Add(time.Duration(i%5) * time.Second) // a dense morning
		}
		sort.Slice(slots, func(i, j int) bool { return slots[i].Before(slots[j]) })
		for i := range slots {
			n := 0
			for j := i; j < len(slots) && slots[j].Sub(slots[i]) < time.Hour; j++ {
				n++
			}
			if n > perHour {
				t.Fatalf("perHour %d: %d sends in the hour from %v", perHour, n, slots[i])
			}
		}
		gaps := map[time.Duration]bool{}
		for i := 1; i < len(slots); i++ {
			gaps[slots[i].Sub(slots[i-1])] = true
		}
		if len(gaps) < 10 {
			t.Errorf("perHour %d: only %d distinct gaps; jitter missing?", perHour, len(gaps))
		}
	}
}

func TestPacerSeedReproducible(t *testing.T) {
	a := NewPacer(20, clock.NewFake(t0), 42)
	b := NewPacer(20, clock.NewFake(t0), 42)
	c := NewPacer(20, clock.NewFake(t0), 43)
	same, differ := true, false
	for i := 0; i < 20; i++ {
		sa, sb, sc := a.Reserve(t0), b.Reserve(t0), c.Reserve(t0)
		same = same && sa.Equal(sb)
		differ = differ || !sa.Equal(sc)
	}
	if !same || !differ {
		t.Errorf("same seed same slots: %v; other seed differs: %v", same, differ)
	}
}

func TestPacerZeroNowUsesClock(t *testing.T) {
	clk := clock.NewFake(t0)
	p := NewPacer(20, clk, 1)
	if got := p.Reserve(time.Time{}); !got.Equal(t0) {
		t.Errorf("Reserve(zero) = %v, want the clock's %v", got, t0)
	}
}

func TestPacerWait(t *testing.T) {
	clk := clock.NewFake(t0)
	p := NewPacer(20, clk, 1)
	ctx := context.Background()
	if err := p.Wait(ctx); err != nil { // idle: no wait
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Wait(ctx) }()
	waitPending(t, clk)
	select {
	case err := <-done:
		t.Fatalf("Wait returned before its slot: %v", err)
	default:
	}
	clk.Advance(p.Gap() + p.Gap()/4)
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// Cancelling ends the wait with ctx's error.
	cctx, cancel := context.WithCancel(ctx)
	go func() { done <- p.Wait(cctx) }()
	waitPending(t, clk)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait = %v, want context.Canceled", err)
	}
}

// waitPending blocks until a goroutine has armed a timer on clk.
func waitPending(t *testing.T, clk *clock.Fake) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for clk.Pending() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no timer armed")
		}
		time.Sleep(time.Millisecond)
	}
}
