package schedule

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"followupd/clock"
)

// ErrRunning is returned by Run when the Scheduler is already running.
var ErrRunning = errors.New("schedule: scheduler already running")

// maxSleep bounds how long Run sleeps, so wall-clock jumps are noticed.
const maxSleep = 5 * time.Minute

// Scheduler owns a Wheel and the one goroutine (Run) that advances it.
// Set, Cancel, Len, Due and Idle are safe for concurrent use.
type Scheduler struct {
	clk  clock.Clock
	log  *slog.Logger
	kick chan struct{} // capacity 1; written under mu by Set/Cancel, read by Run

	mu      sync.Mutex
	wheel   *Wheel    // guarded by mu; only Run's goroutine calls Advance
	running bool      // guarded by mu
	gen     uint64    // guarded by mu; bumped by every Set and Cancel
	idleGen uint64    // guarded by mu; gen Run last went to sleep with
	asleep  bool      // guarded by mu; Run is blocked with a timer armed
	armedAt time.Time // guarded by mu; when Run's timer fires
}

// NewScheduler returns a Scheduler with an empty wheel (1s ticks) starting
// at clk.Now(). A nil logger discards.
func NewScheduler(clk clock.Clock, logger *slog.Logger) *Scheduler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Scheduler{
		clk:   clk,
		log:   logger.With("pkg", "schedule"),
		kick:  make(chan struct{}, 1),
		wheel: NewWheel(clk.Now(), time.Second),
	}
}

// Set makes id due at due, inserting it or moving its existing entry, and
// wakes Run. A due time already past fires at once.
func (s *Scheduler) Set(id uint64, due time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.wheel.Insert(id, due)
	s.poke()
}

// Cancel forgets id; a no-op if it is not pending.
func (s *Scheduler) Cancel(id uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.wheel.Remove(id)
	s.poke()
}

// poke records a change and kicks Run. Called with mu held, so Run, which
// drains the kick channel under mu, never sees a kick it already served.
func (s *Scheduler) poke() {
	s.gen++
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Len returns the number of pending ids.
func (s *Scheduler) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.wheel.Len()
}

// Due returns id's pending due time.
func (s *Scheduler) Due(id uint64) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.wheel.Due(id)
}

// Idle reports whether Run is asleep with every Set and Cancel so far taken
// into account and its timer not yet expired by the clock. Tests using
// clock.Fake poll it before each Advance: once Idle, an Advance reaching the
// earliest due time is sure to wake Run.
func (s *Scheduler) Idle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.asleep && s.idleGen == s.gen && s.clk.Now().Before(s.armedAt)
}

type firing struct {
	id  uint64
	due time.Time
}

// Run advances the wheel until ctx ends, then returns ctx.Err(). It sleeps
// on a clock timer until the earliest due time (at most maxSleep) or a kick,
// and calls fire synchronously, in due order, for each id whose due time
// has passed, after removing it from the wheel. If ctx ends in the middle of
// a batch, the ids not yet fired are put back. Only one Run at a time.
func (s *Scheduler) Run(ctx context.Context, fire func(ctx context.Context, id uint64, due time.Time)) error {
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return ErrRunning
	}
	s.running = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.running, s.asleep = false, false
		s.mu.Unlock()
	}()

	var batch []firing
	collect := func(id uint64, due time.Time) { batch = append(batch, firing{id, due}) }
	for {
		if err := ctx.Err(); err != nil {
			s.log.Debug("scheduler stopping", "err", err)
			return err
		}
		s.mu.Lock()
		s.asleep = false
		select {
		case <-s.kick:
		default:
		}
		now := s.clk.Now()
		batch = batch[:0]
		s.wheel.Advance(now, collect)
		if len(batch) > 0 {
			s.mu.Unlock()
			if err := s.fireBatch(ctx, batch, fire); err != nil {
				s.log.Debug("scheduler stopping", "err", err)
				return err
			}
			continue // firing took time; look again
		}
		d := maxSleep
		if next, ok := s.wheel.Next(); ok {
			d = min(d, next.Sub(now))
		}
		if d <= 0 { // cannot happen after Advance(now); never spin on it
			d = time.Millisecond
		}
		// At the deadline, not after d: the clock may have moved since now
		// was read (a test's fake clock set meanwhile would otherwise push
		// the wake-up back by its whole step).
		s.armedAt = now.Add(d)
		timer := s.clk.NewTimerAt(s.armedAt)
		s.idleGen = s.gen
		s.asleep = true
		s.mu.Unlock()

		select {
		case <-ctx.Done():
			timer.Stop()
		case <-s.kick:
			timer.Stop()
		case <-timer.C():
		}
	}
}

func (s *Scheduler) fireBatch(ctx context.Context, batch []firing, fire func(context.Context, uint64, time.Time)) error {
	for i, f := range batch {
		if err := ctx.Err(); err != nil {
			s.restore(batch[i:])
			return err
		}
		s.log.Debug("follow-up due", "followup", f.id, "due", f.due)
		fire(ctx, f.id, f.due)
	}
	return nil
}

// restore puts back ids removed for firing but not fired, unless a Set
// placed them again meanwhile.
func (s *Scheduler) restore(rest []firing) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range rest {
		if _, ok := s.wheel.Due(f.id); !ok {
			s.wheel.Insert(f.id, f.due)
		}
	}
}
