package send

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"followupd/clock"
)

// DefaultPerHour is the pace when none is configured (config's default
// max_per_hour).
const DefaultPerHour = 20

// Pacer spreads one account's sends: consecutive slots are at least
// hour/perHour apart, plus a random jitter of up to a quarter of that gap
// when sends queue up. Because every gap is at least hour/perHour, no
// half-open hour ever holds more than perHour sends. An idle pacer hands out
// the requested time itself, so a lone reminder is not delayed.
//
// Reserve is the whole contract; a reserved slot that goes unused is simply
// a gap. A Pacer is safe for concurrent use.
type Pacer struct {
	clk clock.Clock
	gap time.Duration

	mu   sync.Mutex
	rng  *rand.Rand // guarded by mu
	last time.Time  // the latest reserved slot; zero before the first
}

// NewPacer returns a pacer allowing perHour sends per hour (DefaultPerHour
// when perHour <= 0). seed makes the jitter reproducible in tests.
func NewPacer(perHour int, clk clock.Clock, seed int64) *Pacer {
	if perHour <= 0 {
		perHour = DefaultPerHour
	}
	if clk == nil {
		clk = clock.Real{}
	}
	return &Pacer{
		clk: clk,
		gap: time.Hour / time.Duration(perHour),
		rng: rand.New(rand.NewPCG(uint64(seed), uint64(seed)^0x9e3779b97f4a7c15)),
	}
}

// Gap is the minimum spacing between two slots.
func (p *Pacer) Gap() time.Duration { return p.gap }

// Reserve returns the earliest time the next send may go, at or after now
// (the clock's now when zero), and reserves that slot.
func (p *Pacer) Reserve(now time.Time) time.Time {
	if now.IsZero() {
		now = p.clk.Now()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	slot := now
	if !p.last.IsZero() {
		if earliest := p.last.Add(p.gap); earliest.After(now) {
			slot = earliest
			if j := int64(p.gap / 4); j > 0 {
				slot = slot.Add(time.Duration(p.rng.Int64N(j)))
			}
		}
	}
	p.last = slot
	return slot
}

// Wait reserves a slot and sleeps on the pacer's clock until it comes. It
// returns ctx's error if ctx ends first; the slot then stays reserved.
func (p *Pacer) Wait(ctx context.Context) error {
	now := p.clk.Now()
	slot := p.Reserve(now)
	if !slot.After(now) {
		return nil
	}
	t := p.clk.NewTimerAt(slot)
	defer t.Stop()
	select {
	case <-t.C():
		return nil
	case <-ctx.Done():
		return fmt.Errorf("send: waiting for send slot at %s: %w", slot.Format(time.RFC3339), ctx.Err())
	}
}
