package clock

import (
	"testing"
	"time"
)

func fired(t Timer) bool {
	select {
	case <-t.C():
		return true
	default:
		return false
	}
}

// A timer set for a deadline fires when the clock reaches it, also when the
// clock moved between the read of Now the deadline came from and the
// timer's creation; NewTimer(d) counts from the clock's time at creation.
func TestFakeTimers(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	f := NewFake(t0)
	now := f.Now()
	f.Set(t0.Add(10 * time.Minute)) // a test moves the clock meanwhile
	at := f.NewTimerAt(now.Add(3 * time.Minute))
	if !fired(at) {
		t.Error("NewTimerAt for a passed deadline did not fire at once")
	}
	later := f.NewTimerAt(t0.Add(15 * time.Minute))
	rel := f.NewTimer(3 * time.Minute) // 10:13
	if fired(later) || fired(rel) || f.Pending() != 2 {
		t.Fatalf("timers fired early (pending %d)", f.Pending())
	}
	f.Set(t0.Add(13 * time.Minute))
	if !fired(rel) || fired(later) {
		t.Error("at 10:13: NewTimer(3m) from 10:10 should fire, the 10:15 deadline not")
	}
	if later.Stop() != true || f.Pending() != 0 {
		t.Error("Stop of an armed timer")
	}
	f.Set(t0.Add(time.Hour))
	if fired(later) {
		t.Error("a stopped timer fired")
	}
}

func TestRealTimerAt(t *testing.T) {
	r := Real{}
	tm := r.NewTimerAt(r.Now().Add(-time.Second))
	select {
	case <-tm.C():
	case <-time.After(5 * time.Second):
		t.Fatal("a real timer for a passed deadline did not fire")
	}
}
