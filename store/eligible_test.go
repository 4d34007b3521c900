package store_test

import (
	"errors"
	"testing"
	"time"

	"followupd/store"
)

// The eligibility mark moves the point max_overdue counts from without a
// transition: no history entry however often it is refreshed, and gone as
// soon as the step, due time or state changes.
func TestMarkEligible(t *testing.T) {
	h := newH(t)
	f := h.reach(store.StateWaiting)
	if got := f.OverdueBase(); !got.Equal(f.Due) {
		t.Fatalf("base without a mark %s, want due %s", got, f.Due)
	}
	seen := f.Due.Add(time.Hour)
	for i := 0; i < 50; i++ { // a retry every hour of a two-day outage
		if err := h.db.MarkEligible(f.ID, f.Step, f.Due, seen.Add(time.Duration(i)*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	g, err := h.db.Get(f.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := seen.Add(49 * time.Hour); !g.OverdueBase().Equal(want) {
		t.Errorf("base %s, want the last mark %s", g.OverdueBase(), want)
	}
	if len(g.History) != len(f.History) || g.State != store.StateWaiting {
		t.Errorf("marking wrote %d history entries, state %s", len(g.History)-len(f.History), g.State)
	}
	// An older time does not move the mark back.
	if err := h.db.MarkEligible(f.ID, f.Step, f.Due, seen); err != nil {
		t.Fatal(err)
	}
	if g, _ := h.db.Get(f.ID); !g.OverdueBase().Equal(seen.Add(49 * time.Hour)) {
		t.Errorf("an older mark moved the base to %s", g.OverdueBase())
	}
	// Another step or due time: refused.
	if err := h.db.MarkEligible(f.ID, f.Step+1, f.Due, seen); !errors.Is(err, store.ErrNoChange) {
		t.Errorf("marking another step: %v, want ErrNoChange", err)
	}
	if err := h.db.MarkEligible(f.ID, f.Step, f.Due.Add(time.Minute), seen); !errors.Is(err, store.ErrNoChange) {
		t.Errorf("marking another due time: %v, want ErrNoChange", err)
	}
	// A snooze (new due) drops it; so does leaving waiting.
	s, err := h.db.Transition(f.ID, store.EvSnooze, h.clk.Now(), "snoozed", func(f *store.FollowUp) error {
		f.Due = f.Due.Add(24 * time.Hour)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if s.Eligible != nil || !s.OverdueBase().Equal(s.Due) {
		t.Errorf("after a snooze: mark %+v, base %s", s.Eligible, s.OverdueBase())
	}
	if err := h.db.MarkEligible(f.ID, s.Step, s.Due, s.Due.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n := h.mustMove(f.ID, store.EvDue, store.StateSending); n.Eligible != nil {
		t.Errorf("in sending with the mark %+v", n.Eligible)
	}
	// Not waiting: refused.
	if err := h.db.MarkEligible(f.ID, s.Step, s.Due, s.Due.Add(2*time.Hour)); !errors.Is(err, store.ErrNoChange) {
		t.Errorf("marking a step in sending: %v, want ErrNoChange", err)
	}
}
