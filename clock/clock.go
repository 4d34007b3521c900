// Package clock is the injectable notion of time every waiting part of
// followupd uses, so tests advance a fake clock instead of sleeping for a
// reminder's delay.
package clock

import (
	"sort"
	"sync"
	"time"
)

// Clock tells the time and makes timers. Real is the wall clock; Fake is
// advanced by tests.
type Clock interface {
	Now() time.Time
	// NewTimer returns a timer that fires once after d.
	NewTimer(d time.Duration) Timer
	// NewTimerAt returns a timer that fires once the clock reaches t (at
	// once when it has). A deadline computed from an earlier Now should
	// use it, not NewTimer(t.Sub(now)): the clock may have moved since,
	// and a fake one moved by a test in between would push the timer
	// late by the whole step.
	NewTimerAt(t time.Time) Timer
}

// Timer is the part of *time.Timer followupd uses.
type Timer interface {
	C() <-chan time.Time
	// Stop prevents the timer from firing; it reports whether it was active.
	Stop() bool
}

// Real is the system clock.
type Real struct{}

func (Real) Now() time.Time { return time.Now() }

func (Real) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

func (Real) NewTimerAt(t time.Time) Timer { return realTimer{time.NewTimer(time.Until(t))} }

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time { return r.t.C }
func (r realTimer) Stop() bool          { return r.t.Stop() }

// Fake is a manually advanced clock. Timers fire during Advance or Set, in
// due order, on buffered channels (capacity 1), so Advance never blocks.
// It is safe for concurrent use.
type Fake struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

// NewFake returns a fake clock set to now.
func NewFake(now time.Time) *Fake { return &Fake{now: now} }

func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *Fake) NewTimer(d time.Duration) Timer {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.timerAt(f.now.Add(d))
}

func (f *Fake) NewTimerAt(at time.Time) Timer {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.timerAt(at)
}

// timerAt arms a timer for at; f.mu is held.
func (f *Fake) timerAt(at time.Time) *fakeTimer {
	t := &fakeTimer{f: f, at: at, c: make(chan time.Time, 1), active: true}
	if !at.After(f.now) {
		t.active = false
		t.c <- f.now
		return t
	}
	f.timers = append(f.timers, t)
	return t
}

// Advance moves the clock forward by d, firing every timer that falls due.
func (f *Fake) Advance(d time.Duration) { f.Set(f.Now().Add(d)) }

// Set moves the clock to t (never backwards), firing timers that fall due.
func (f *Fake) Set(t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t.Before(f.now) {
		return
	}
	f.now = t
	sort.Slice(f.timers, func(i, j int) bool { return f.timers[i].at.Before(f.timers[j].at) })
	keep := f.timers[:0]
	for _, tm := range f.timers {
		if !tm.active {
			continue
		}
		if !tm.at.After(t) {
			tm.active = false
			select {
			case tm.c <- tm.at:
			default:
			}
			continue
		}
		keep = append(keep, tm)
	}
	f.timers = keep
}

// Pending reports how many timers are armed; tests use it to wait until a
// goroutine has gone to sleep before advancing.
func (f *Fake) Pending() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, t := range f.timers {
		if t.active {
			n++
		}
	}
	return n
}

type fakeTimer struct {
	f      *Fake
	at     time.Time
	c      chan time.Time
	active bool // guarded by f.mu
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Stop() bool {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	was := t.active
	t.active = false
	return was
}
