package daemon

import (
	"context"
	"fmt"
	"time"

	"followupd/clock"
	"followupd/config"
	"followupd/message"
	"followupd/store"
)

// Replayer runs the daemon's own decisions over a mailbox history, in time
// order, on a simulated clock and without side effects: nothing connects,
// nothing is sent, every step that falls due is recorded as in dry-run mode
// (Event kind "sent"). `followupd backtest` feeds it the merged history of
// every account so rules can be tuned before the daemon is switched on.
//
// The caller hands messages to Ingest in time order; before a message at T
// is processed, every step due before T fires at its own due time, so a
// step is judged against what had arrived by that moment. Ingest and
// Advance run the same code as the daemon (the watcher's sink, the sender's
// step: calendar, send window, away windows, max_overdue, manual
// follow-ups, auto-replies), synchronously, on the caller's goroutine.
// A Replayer is not safe for concurrent use.
type Replayer struct {
	d    *Daemon
	clk  *clock.Fake
	live map[uint64]bool // follow-ups that may have a pending step
}

// NewReplayer returns a Replayer whose clock starts at start. db is a
// scratch store the caller owns (and removes); opt.Clock, opt.DB and
// opt.Replay are set by NewReplayer, opt.OnEvent still hears every decision.
func NewReplayer(cfg *config.Config, db *store.DB, start time.Time, opt Options) (*Replayer, error) {
	if db == nil {
		return nil, fmt.Errorf("replay: no store")
	}
	r := &Replayer{clk: clock.NewFake(start), live: make(map[uint64]bool)}
	onEvent := opt.OnEvent
	opt.OnEvent = func(ev Event) {
		if ev.FollowUp != 0 {
			r.live[ev.FollowUp] = true
		}
		if onEvent != nil {
			onEvent(ev)
		}
	}
	opt.Clock, opt.DB, opt.Replay = r.clk, db, true
	d, err := New(cfg, opt)
	if err != nil {
		return nil, err
	}
	r.d = d
	return r, nil
}

// Now is the replay clock.
func (r *Replayer) Now() time.Time { return r.clk.Now() }

// Store is the replay's store.
func (r *Replayer) Store() *store.DB { return r.d.db }

// NeedsBody says whether classification needs rec's body (for fetching).
func (r *Replayer) NeedsBody(rec *message.Record) bool { return r.d.cls.NeedsBody(rec) }

// Ingest fires every step due before rec's time, then processes rec at
// that time as the watcher's sink would. rec.Account names the configured
// account and rec.Role its folder's role. A message older than the clock
// (out of order) is processed at the clock's now.
func (r *Replayer) Ingest(ctx context.Context, rec *message.Record) error {
	a := r.d.accounts[rec.Account]
	if a == nil {
		return fmt.Errorf("replay: message %s: unknown account %q", rec.MessageID, rec.Account)
	}
	at := msgTime(rec)
	if err := r.Advance(ctx, at); err != nil {
		return err
	}
	s := &sink{d: r.d, name: a.cfg.Name}
	if err := s.HandleMessages(ctx, []*message.Record{rec}); err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	return nil
}

// maxFiresAt bounds how often one follow-up may fire at one instant before
// the replay calls it stuck (a step always moves its due time or its state).
const maxFiresAt = 16

// Advance fires, in due order and each at its due time, every step due
// before t, then sets the clock to t (never backwards).
func (r *Replayer) Advance(ctx context.Context, t time.Time) error {
	var lastID uint64
	var lastAt time.Time
	same := 0
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		id, due, ok := r.next()
		if !ok || !due.Before(t) {
			break
		}
		r.clk.Set(due)
		now := r.clk.Now()
		if id == lastID && now.Equal(lastAt) {
			if same++; same > maxFiresAt {
				return fmt.Errorf("replay: follow-up %d does not progress at %s", id, now.Format(time.RFC3339))
			}
		} else {
			lastID, lastAt, same = id, now, 0
		}
		// As Scheduler.Run does: the entry leaves the wheel before it fires.
		r.d.sched.Cancel(id)
		f, err := r.d.db.Get(id)
		if err != nil {
			return fmt.Errorf("replay: loading follow-up %d: %w", id, err)
		}
		a := r.d.accounts[f.Account]
		if a == nil {
			continue
		}
		r.d.step(ctx, a, id)
		r.live[id] = true
	}
	r.clk.Set(t)
	return nil
}

// next returns the earliest pending step (lowest id first on a tie),
// forgetting follow-ups with nothing pending.
func (r *Replayer) next() (uint64, time.Time, bool) {
	var (
		bestID  uint64
		bestDue time.Time
		found   bool
	)
	for id := range r.live {
		due, ok := r.d.sched.Due(id)
		if !ok {
			delete(r.live, id)
			continue
		}
		if !found || due.Before(bestDue) || (due.Equal(bestDue) && id < bestID) {
			bestID, bestDue, found = id, due, true
		}
	}
	return bestID, bestDue, found
}

// Pending returns the follow-ups with a step still due after the replay's
// now, with that due time.
func (r *Replayer) Pending() map[uint64]time.Time {
	out := make(map[uint64]time.Time)
	for id := range r.live {
		if due, ok := r.d.sched.Due(id); ok {
			out[id] = due
		}
	}
	return out
}
