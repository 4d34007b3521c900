package store_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	"followupd/clock"
	"followupd/message"
	"followupd/store"
	"followupd/store/storetest"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC) // a Monday

var allStates = []store.State{
	store.StateNone, store.StateWaiting, store.StateHeld, store.StateSending, store.StateDraft,
	store.StateAnswered, store.StateBounced, store.StateStopped, store.StateFailed,
	store.StateFinished, store.StateUncertain,
}

func allEvents() []store.Event {
	var evs []store.Event
	for e := store.EvTrack; e <= store.EvApprove; e++ {
		evs = append(evs, e)
	}
	return evs
}

// newFollowUp is what classify/schedule hand to Track.
func newFollowUp(msgid string, due time.Time) *store.FollowUp {
	return &store.FollowUp{
		Account: "work", MessageID: msgid, Rule: "offers", Kind: "offer", Subject: "Offer " + msgid,
		From:  message.Address{Addr: "me@seller.example"},
		To:    []message.Address{{Name: "Client", Addr: "Client@Buyer.Example"}},
		Cc:    []message.Address{{Addr: "boss@buyer.example"}},
		State: store.StateWaiting, Step: 1, SentAt: t0, LastSent: t0, Due: due,
	}
}

// h drives follow-ups through the store with a fake clock.
type h struct {
	t   *testing.T
	db  *storetest.DB
	clk *clock.Fake
	n   int
}

func newH(t *testing.T) *h {
	return &h{t: t, db: storetest.New(t), clk: clock.NewFake(t0)}
}

func (h *h) track() *store.FollowUp {
	h.t.Helper()
	h.n++
	f, created, err := h.db.Track(newFollowUp(fmt.Sprintf("offer-%d@seller.example", h.n), t0.Add(72*time.Hour)), h.clk.Now(), "rule offers matched")
	if err != nil || !created {
		h.t.Fatalf("track: created=%v err=%v", created, err)
	}
	return f
}

// move applies ev with the state change a real caller would make.
func (h *h) move(id uint64, ev store.Event, to store.State) (*store.FollowUp, error) {
	h.t.Helper()
	h.clk.Advance(time.Hour)
	now := h.clk.Now()
	return h.db.Transition(id, ev, now, "test "+ev.String(), func(f *store.FollowUp) error {
		from := f.State
		f.State = to
		switch {
		case ev == store.EvDue:
			f.SendID = message.NewOwnMessageID("seller.example", f.ID, f.Step)
		case ev == store.EvTempFail:
			f.Attempts++
		case to == store.StateHeld:
			f.HeldUntil = now.Add(7 * 24 * time.Hour)
			f.Due = f.HeldUntil
		case to == store.StateWaiting && (ev == store.EvSkip || ((from == store.StateSending || from == store.StateDraft || from == store.StateUncertain) && ev != store.EvRetry)):
			f.Step++
			f.LastSent = now
			f.Due = now.Add(72 * time.Hour)
		case to == store.StateWaiting:
			f.Due = now.Add(48 * time.Hour)
		}
		return nil
	})
}

func (h *h) mustMove(id uint64, ev store.Event, to store.State) *store.FollowUp {
	h.t.Helper()
	f, err := h.move(id, ev, to)
	if err != nil {
		h.t.Fatalf("%s -> %s: %v", ev, to, err)
	}
	return f
}

// reach returns a fresh follow-up in state s along legal transitions.
func (h *h) reach(s store.State) *store.FollowUp {
	h.t.Helper()
	f := h.track()
	path := map[store.State][]struct {
		ev store.Event
		to store.State
	}{
		store.StateWaiting:   nil,
		store.StateHeld:      {{store.EvAway, store.StateHeld}},
		store.StateSending:   {{store.EvDue, store.StateSending}},
		store.StateDraft:     {{store.EvDue, store.StateSending}, {store.EvDrafted, store.StateDraft}},
		store.StateUncertain: {{store.EvDue, store.StateSending}, {store.EvUncertain, store.StateUncertain}},
		store.StateFinished:  {{store.EvDue, store.StateSending}, {store.EvSent, store.StateFinished}},
		store.StateAnswered:  {{store.EvAnswer, store.StateAnswered}},
		store.StateBounced:   {{store.EvBounce, store.StateBounced}},
		store.StateStopped:   {{store.EvStop, store.StateStopped}},
		store.StateFailed:    {{store.EvDue, store.StateSending}, {store.EvPermFail, store.StateFailed}},
	}
	steps, ok := path[s]
	if !ok {
		h.t.Fatalf("no path to %s", s)
	}
	for _, p := range steps {
		f = h.mustMove(f.ID, p.ev, p.to)
	}
	if f.State != s {
		h.t.Fatalf("reached %s, want %s", f.State, s)
	}
	return f
}

func lastLedger(t *testing.T, db *storetest.DB, id uint64, step int) *store.LedgerEntry {
	t.Helper()
	l, err := db.Ledger(id)
	if err != nil {
		t.Fatal(err)
	}
	var last *store.LedgerEntry
	for i := range l {
		if l[i].Step == step {
			last = &l[i]
		}
	}
	return last
}

// snapshot is everything a transition could change, for "nothing written".
func snapshot(t *testing.T, db interface {
	Backup(io.Writer) (int64, error)
}) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := db.Backup(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestTransitionLegal walks every legal (from, event, to) of the table.
func TestTransitionLegal(t *testing.T) {
	h := newH(t)
	n := 0
	for _, from := range allStates[1:] {
		for _, ev := range allEvents() {
			for _, to := range allStates {
				if !store.CanTransition(from, ev, to) {
					continue
				}
				n++
				t.Run(fmt.Sprintf("%s-%s-%s", from, ev, to), func(t *testing.T) {
					h.t = t
					f0 := h.reach(from)
					before := lastLedger(t, h.db, f0.ID, f0.Step)
					f, err := h.move(f0.ID, ev, to)
					if err != nil {
						t.Fatalf("legal transition refused: %v", err)
					}
					if f.State != to {
						t.Errorf("state %s, want %s", f.State, to)
					}
					last := f.History[len(f.History)-1]
					if last.Event != ev || last.From != from || last.To != to || last.Step != f0.Step || last.Reason != "test "+ev.String() || !last.At.Equal(h.clk.Now()) {
						t.Errorf("history entry %+v", last)
					}
					if len(f.History) != len(f0.History)+1 {
						t.Errorf("history grew from %d to %d", len(f0.History), len(f.History))
					}
					got, err := h.db.Get(f.ID)
					if err != nil || got.State != to {
						t.Fatalf("stored: %v %v", got, err)
					}
					checkLedgerAfter(t, h.db, f0, f, ev, before)
					inFlight := to == store.StateSending || to == store.StateDraft || to == store.StateUncertain
					if inFlight != (f.SendID != "") {
						t.Errorf("%s with send id %q", to, f.SendID)
					}
				})
			}
		}
	}
	if n < 40 {
		t.Fatalf("only %d legal transitions in the table", n)
	}
}

func checkLedgerAfter(t *testing.T, db *storetest.DB, f0, f *store.FollowUp, ev store.Event, before *store.LedgerEntry) {
	t.Helper()
	want := map[store.Event]store.LedgerState{
		store.EvDue: store.LedgerIntent, store.EvSent: store.LedgerSent, store.EvDraftSent: store.LedgerSent,
		store.EvResolve: store.LedgerSent, store.EvPermFail: store.LedgerFailed, store.EvUncertain: store.LedgerUncertain,
		store.EvRetry: store.LedgerRolledBack, store.EvDraftGone: store.LedgerRolledBack, store.EvDrafted: store.LedgerDrafted,
		store.EvTempFail: store.LedgerIntent, store.EvApprove: store.LedgerRolledBack,
	}
	got := lastLedger(t, db, f0.ID, f0.Step)
	ws, ok := want[ev]
	if ev == store.EvPermFail && f0.State == store.StateWaiting {
		ok = false // nothing was in flight
	}
	if !ok {
		if !equalJSON(before, got) {
			t.Errorf("%s changed the ledger: %+v -> %+v", ev, before, got)
		}
		return
	}
	if got == nil {
		t.Fatalf("%s: no ledger entry for step %d", ev, f0.Step)
	}
	if got.State != ws {
		t.Errorf("%s: ledger %s, want %s", ev, got.State, ws)
	}
	if ev == store.EvDue {
		if got.MessageID != f.SendID || got.MessageID == "" || !got.Intent.Equal(f.History[len(f.History)-1].At) {
			t.Errorf("intent %+v for send id %q", got, f.SendID)
		}
		return
	}
	if got.MessageID != f0.SendID {
		t.Errorf("%s: ledger message id %q, follow-up had %q", ev, got.MessageID, f0.SendID)
	}
	if ws == store.LedgerSent {
		if !slices.Contains(f.Sent, f0.SendID) {
			t.Errorf("%s: Sent %q lacks %q", ev, f.Sent, f0.SendID)
		}
		th, err := db.ByThread([]string{"unrelated@x", f0.SendID})
		if err != nil || len(th) != 1 || th[0].ID != f.ID {
			t.Errorf("ByThread(own reminder id) = %v, %v", th, err)
		}
		if bm, err := db.ByMessageID(f0.SendID); err != nil || bm.ID != f.ID {
			t.Errorf("ByMessageID(own reminder id) = %v, %v", bm, err)
		}
	}
}

func equalJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// TestTransitionIllegal tries every move outside the table from every
// reachable state: each must be a *TransitionError and write nothing.
func TestTransitionIllegal(t *testing.T) {
	h := newH(t)
	for _, from := range allStates[1:] {
		f := h.reach(from)
		snap := snapshot(t, h.db)
		tried := 0
		for _, ev := range allEvents() {
			for _, to := range allStates {
				if store.CanTransition(from, ev, to) {
					continue
				}
				tried++
				_, err := h.move(f.ID, ev, to)
				var te *store.TransitionError
				if !errors.As(err, &te) {
					t.Errorf("%s -%s-> %s: err %v, want *TransitionError", from, ev, to, err)
					continue
				}
				if te.ID != f.ID || te.From != from || te.Event != ev || te.To != to {
					t.Errorf("TransitionError %+v", te)
				}
				for _, s := range []string{from.String(), ev.String(), to.String(), fmt.Sprint(f.ID)} {
					if !bytes.Contains([]byte(te.Error()), []byte(s)) {
						t.Errorf("%q does not name %q", te.Error(), s)
					}
				}
			}
		}
		if !bytes.Equal(snap, snapshot(t, h.db)) {
			t.Errorf("illegal transitions from %s wrote to the database", from)
		}
		if tried < 150 {
			t.Errorf("only %d illegal moves tried from %s", tried, from)
		}
	}
}

func TestTransitionNoChangeAndMutateError(t *testing.T) {
	h := newH(t)
	f := h.reach(store.StateSending)
	snap := snapshot(t, h.db)
	boom := errors.New("boom")
	for _, tc := range []struct {
		name    string
		mutate  func(*store.FollowUp) error
		wantErr error
	}{
		{"no change", func(f *store.FollowUp) error {
			f.State = store.StateFinished
			f.Outcome = "x"
			return store.ErrNoChange
		}, store.ErrNoChange},
		{"mutate error", func(f *store.FollowUp) error { f.State = store.StateWaiting; return boom }, boom},
		{"wrapped no change", func(f *store.FollowUp) error { return fmt.Errorf("already done: %w", store.ErrNoChange) }, store.ErrNoChange},
		{"identity changed", func(f *store.FollowUp) error { f.MessageID = "other@x"; f.State = store.StateSending; return nil }, nil},
		{"waiting without due", func(f *store.FollowUp) error {
			f.State = store.StateWaiting
			f.Due = time.Time{}
			return nil
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := store.EvSent
			if tc.name == "identity changed" {
				ev = store.EvTempFail
			}
			got, err := h.db.Transition(f.ID, ev, h.clk.Now(), "x", tc.mutate)
			if err == nil {
				t.Fatal("no error")
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			if errors.Is(err, store.ErrNoChange) {
				if got == nil || got.State != store.StateSending || got.Outcome != "" {
					t.Errorf("ErrNoChange returned %+v, want the stored follow-up", got)
				}
			} else if got != nil {
				t.Errorf("returned %+v with error", got)
			}
			if !bytes.Equal(snap, snapshot(t, h.db)) {
				t.Error("database changed")
			}
		})
	}
	if _, err := h.db.Transition(999, store.EvStop, t0, "x", nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("missing follow-up: %v", err)
	}
}

func TestTrackIdempotent(t *testing.T) {
	h := newH(t)
	in := newFollowUp("offer-a@seller.example", t0.Add(72*time.Hour))
	f1, created, err := h.db.Track(in, t0, "first")
	if err != nil || !created || f1.ID == 0 {
		t.Fatalf("first: %+v %v %v", f1, created, err)
	}
	if in.ID != 0 || len(in.History) != 0 {
		t.Error("Track modified its argument")
	}
	snap := snapshot(t, h.db)
	again := newFollowUp("offer-a@seller.example", t0.Add(99*time.Hour))
	again.Rule = "other"
	f2, created, err := h.db.Track(again, t0.Add(time.Hour), "second")
	if err != nil || created || f2.ID != f1.ID || f2.Rule != "offers" || len(f2.History) != 1 || !f2.Due.Equal(f1.Due) {
		t.Fatalf("second: %+v %v %v", f2, created, err)
	}
	if !bytes.Equal(snap, snapshot(t, h.db)) {
		t.Error("second Track wrote")
	}
	h.db.Reopen()
	f3, created, err := h.db.Track(in, t0, "after restart")
	if err != nil || created || f3.ID != f1.ID {
		t.Fatalf("after reopen: %+v %v %v", f3, created, err)
	}
	if e := f1.History[0]; e.Event != store.EvTrack || e.From != store.StateNone || e.To != store.StateWaiting || e.Step != 1 || e.Reason != "first" {
		t.Errorf("history %+v", e)
	}
	f4, _, err := h.db.Track(newFollowUp("offer-b@seller.example", t0.Add(time.Hour)), t0, "")
	if err != nil || f4.ID != f1.ID+1 {
		t.Errorf("next id %v, %v", f4, err)
	}
}

func TestTrackRefuses(t *testing.T) {
	h := newH(t)
	w := h.track()
	// A send id without OwnPrefix (some other generator): only the thread
	// index knows it is ours.
	sending, err := h.db.Transition(w.ID, store.EvDue, t0, "due", func(f *store.FollowUp) error {
		f.State, f.SendID = store.StateSending, "reminder-1@seller.example"
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	own := message.NewOwnMessageID("seller.example", 7, 1)
	custom := newFollowUp("x@y", t0)
	custom.State = store.StateSending
	for _, tc := range []struct {
		name string
		f    *store.FollowUp
		want error
	}{
		{"own prefix", newFollowUp(own, t0), store.ErrOwnMessage},
		{"a reminder's id", newFollowUp(sending.SendID, t0), store.ErrOwnMessage},
		{"no due", newFollowUp("nodue@x", time.Time{}), nil},
		{"no message id", newFollowUp("", t0), nil},
		{"not waiting", custom, nil},
		{"nil", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			snap := snapshot(t, h.db)
			_, created, err := h.db.Track(tc.f, t0, "x")
			if err == nil || created {
				t.Fatalf("accepted: %v %v", created, err)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("err %v, want %v", err, tc.want)
			}
			if !bytes.Equal(snap, snapshot(t, h.db)) {
				t.Error("refused Track wrote")
			}
		})
	}
}

// TestStepSubmittedOnce is DESIGN invariant 1 at the store.
func TestStepSubmittedOnce(t *testing.T) {
	h := newH(t)
	f := h.reach(store.StateSending)
	step1 := f.SendID
	f = h.mustMove(f.ID, store.EvSent, store.StateWaiting) // waiting(2)
	if f.Step != 2 || f.SendID != "" {
		t.Fatalf("after sent: step %d send id %q", f.Step, f.SendID)
	}
	snap := snapshot(t, h.db)
	// A buggy caller re-submitting step 1.
	_, err := h.db.Transition(f.ID, store.EvDue, h.clk.Now(), "again", func(f *store.FollowUp) error {
		f.State, f.Step, f.SendID = store.StateSending, 1, message.NewOwnMessageID("seller.example", f.ID, 1)
		return nil
	})
	if !errors.Is(err, store.ErrStepSubmitted) {
		t.Fatalf("re-due of a sent step: %v", err)
	}
	// Reusing the sent Message-ID for step 2.
	_, err = h.db.Transition(f.ID, store.EvDue, h.clk.Now(), "reuse", func(f *store.FollowUp) error {
		f.State, f.SendID = store.StateSending, step1
		return nil
	})
	if err == nil {
		t.Fatal("reused send id accepted")
	}
	// Without a send id.
	_, err = h.db.Transition(f.ID, store.EvDue, h.clk.Now(), "noid", func(f *store.FollowUp) error {
		f.State = store.StateSending
		return nil
	})
	if err == nil {
		t.Fatal("due without send id accepted")
	}
	if !bytes.Equal(snap, snapshot(t, h.db)) {
		t.Error("refused due wrote")
	}

	// Rolled back (proven unsent) may be submitted again, as a new attempt.
	f = h.mustMove(f.ID, store.EvDue, store.StateSending)
	first := f.SendID
	f = h.mustMove(f.ID, store.EvRetry, store.StateWaiting)
	if f.Step != 2 {
		t.Fatalf("retry moved step to %d", f.Step)
	}
	f = h.mustMove(f.ID, store.EvDue, store.StateSending)
	if f.SendID == first {
		t.Fatal("same send id twice")
	}
	l, _ := h.db.Ledger(f.ID)
	var states []string
	for _, e := range l {
		states = append(states, fmt.Sprintf("%d:%s", e.Step, e.State))
	}
	if want := []string{"1:sent", "2:rolled-back", "2:intent"}; !slices.Equal(states, want) {
		t.Errorf("ledger %v, want %v", states, want)
	}
	// The rolled-back id still threads (a late answer to it is found).
	if got, err := h.db.ByMessageID(first); err != nil || got.ID != f.ID {
		t.Errorf("rolled-back id lookup: %v %v", got, err)
	}
	// Uncertain: neither due again nor tracked.
	f = h.mustMove(f.ID, store.EvUncertain, store.StateUncertain)
	if _, err := h.move(f.ID, store.EvDue, store.StateSending); err == nil {
		t.Error("due from uncertain accepted")
	}
}

func TestPendingDueOrderAndReopen(t *testing.T) {
	h := newH(t)
	dues := []time.Duration{50, 10, 30, 10, 70, 20, 60, 40}
	var ids []uint64
	for i, d := range dues {
		f, _, err := h.db.Track(newFollowUp(fmt.Sprintf("m%d@x", i), t0.Add(d*time.Hour)), t0, "")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, f.ID)
	}
	h.mustMove(ids[2], store.EvAnswer, store.StateAnswered) // 30h gone
	h.mustMove(ids[4], store.EvDue, store.StateSending)     // 70h gone
	h.mustMove(ids[6], store.EvAway, store.StateHeld)       // 60h -> held until +7d
	h.mustMove(ids[0], store.EvSnooze, store.StateWaiting)  // 50h -> now+48h
	type item struct {
		id  uint64
		due time.Time
	}
	collect := func() []item {
		var out []item
		if err := h.db.PendingDue(func(id uint64, due time.Time) bool {
			out = append(out, item{id, due})
			return true
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	got := collect()
	if len(got) != 6 {
		t.Fatalf("pending %v, want 6", got)
	}
	for i := 1; i < len(got); i++ {
		a, b := got[i-1], got[i]
		if b.due.Before(a.due) || (b.due.Equal(a.due) && b.id < a.id) {
			t.Errorf("out of order: %v then %v", a, b)
		}
	}
	for _, it := range got {
		f, err := h.db.Get(it.id)
		if err != nil || !f.State.Pending() || !f.Due.Equal(it.due) {
			t.Errorf("due index %v vs stored %+v (%v)", it, f, err)
		}
	}
	if got[0].id != ids[1] || got[1].id != ids[3] || got[2].id != ids[5] {
		t.Errorf("first three %v", got[:3])
	}
	n := 0
	_ = h.db.PendingDue(func(uint64, time.Time) bool { n++; return n < 2 })
	if n != 2 {
		t.Errorf("stop after false: called %d times", n)
	}

	// DESIGN invariant 5: same due set after a restart, and every record.
	counts, _ := h.db.Counts()
	all, _ := h.db.List(store.Filter{})
	h.db.Reopen()
	if after := collect(); !slices.EqualFunc(got, after, func(a, b item) bool { return a.id == b.id && a.due.Equal(b.due) }) {
		t.Errorf("due set changed across reopen:\n%v\n%v", got, after)
	}
	counts2, _ := h.db.Counts()
	all2, _ := h.db.List(store.Filter{})
	if !equalJSON(counts, counts2) || !equalJSON(all, all2) {
		t.Error("follow-ups changed across reopen")
	}
	if counts[store.StateWaiting] != 5 || counts[store.StateHeld] != 1 || counts[store.StateAnswered] != 1 || counts[store.StateSending] != 1 {
		t.Errorf("counts %v", counts)
	}
	sending, _ := h.db.InState(store.StateSending)
	if len(sending) != 1 || sending[0].ID != ids[4] {
		t.Errorf("InState(sending) %v", sending)
	}
	if l, _ := h.db.Ledger(ids[4]); len(l) != 1 || l[0].State != store.LedgerIntent {
		t.Errorf("ledger after reopen %+v", l)
	}
}

func TestLookups(t *testing.T) {
	h := newH(t)
	a := h.track()
	b := h.track()
	other := newFollowUp("z@x", t0.Add(time.Hour))
	other.Account, other.Rule = "home", "invoices"
	other.To = []message.Address{{Addr: "someone@else.example"}}
	other.Cc = nil
	c, _, err := h.db.Track(other, t0, "")
	if err != nil {
		t.Fatal(err)
	}
	ids := func(fs []*store.FollowUp, err error) []uint64 {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		var out []uint64
		for _, f := range fs {
			out = append(out, f.ID)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		got  []uint64
		want []uint64
	}{
		{"recipient mixed case", ids(h.db.ByRecipient("CLIENT@buyer.example")), []uint64{a.ID, b.ID}},
		{"recipient cc", ids(h.db.ByRecipient("boss@buyer.example")), []uint64{a.ID, b.ID}},
		{"recipient prefix is not a match", ids(h.db.ByRecipient("client@buyer.exampl")), nil},
		{"domain", ids(h.db.ByRecipientDomain("Buyer.Example")), []uint64{a.ID, b.ID}},
		{"domain with @", ids(h.db.ByRecipientDomain("@else.example")), []uint64{c.ID}},
		{"thread dedup", ids(h.db.ByThread([]string{b.MessageID, "nope", a.MessageID, b.MessageID})), []uint64{a.ID, b.ID}},
		{"list account", ids(h.db.List(store.Filter{Account: "home"})), []uint64{c.ID}},
		{"list rule+state", ids(h.db.List(store.Filter{Rule: "offers", State: store.StateWaiting})), []uint64{a.ID, b.ID}},
		{"list state none match", ids(h.db.List(store.Filter{State: store.StateHeld})), nil},
	} {
		if !slices.Equal(tc.got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	if f, err := h.db.ByMessageID(a.MessageID); err != nil || f.ID != a.ID {
		t.Errorf("ByMessageID: %v %v", f, err)
	}
	if _, err := h.db.ByMessageID("nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ByMessageID(nope): %v", err)
	}
	if _, err := h.db.Get(12345); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get(12345): %v", err)
	}
	// Recipient index follows a change of To.
	h.clk.Advance(time.Hour)
	if _, err := h.db.Transition(a.ID, store.EvSnooze, h.clk.Now(), "fix address", func(f *store.FollowUp) error {
		f.To = []message.Address{{Addr: "new@other.example"}}
		f.Cc = nil
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got := ids(h.db.ByRecipient("client@buyer.example")); !slices.Equal(got, []uint64{b.ID}) {
		t.Errorf("after To change: %v", got)
	}
	if got := ids(h.db.ByRecipientDomain("other.example")); !slices.Equal(got, []uint64{a.ID}) {
		t.Errorf("new domain: %v", got)
	}
}

func TestAwayAndMeta(t *testing.T) {
	h := newH(t)
	if _, ok, err := h.db.AwayUntil("x@y"); ok || err != nil {
		t.Fatalf("unknown: %v %v", ok, err)
	}
	steps := []struct {
		until time.Time
		want  time.Time
	}{
		{t0.Add(48 * time.Hour), t0.Add(48 * time.Hour)},
		{t0.Add(24 * time.Hour), t0.Add(48 * time.Hour)}, // earlier: kept the later
		{t0.Add(96 * time.Hour), t0.Add(96 * time.Hour)},
	}
	for i, s := range steps {
		if err := h.db.SetAway("Client@Buyer.Example", s.until, "ooo"); err != nil {
			t.Fatal(err)
		}
		got, ok, err := h.db.AwayUntil("client@buyer.example")
		if err != nil || !ok || !got.Equal(s.want) {
			t.Errorf("step %d: %v %v %v, want %v", i, got, ok, err, s.want)
		}
	}
	if _, err := h.db.Meta("indexed/work"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("missing meta: %v", err)
	}
	if err := h.db.PutMeta("indexed/work", []byte("2026-03-02")); err != nil {
		t.Fatal(err)
	}
	h.db.Reopen()
	if v, err := h.db.Meta("indexed/work"); err != nil || string(v) != "2026-03-02" {
		t.Errorf("meta after reopen: %q %v", v, err)
	}
	if got, ok, _ := h.db.AwayUntil("client@buyer.example"); !ok || !got.Equal(t0.Add(96*time.Hour)) {
		t.Errorf("away after reopen: %v", got)
	}
}
