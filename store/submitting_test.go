package store_test

import (
	"testing"

	"followupd/store"
)

func TestMarkSubmitting(t *testing.T) {
	h := newH(t)
	f := h.reach(store.StateSending)
	if err := h.db.MarkSubmitting(f.ID, f.Step, "followupd.999.1.x@other", h.clk.Now()); err == nil {
		t.Fatal("marking with a foreign send id succeeded")
	}
	if err := h.db.MarkSubmitting(f.ID, f.Step, f.SendID, h.clk.Now()); err != nil {
		t.Fatal(err)
	}
	le, err := h.db.LastLedger(f.ID, f.Step)
	if err != nil || le == nil || le.State != store.LedgerSubmitting {
		t.Fatalf("ledger after mark: %+v, %v", le, err)
	}
	// Marking twice is refused: the mark is written once per attempt.
	if err := h.db.MarkSubmitting(f.ID, f.Step, f.SendID, h.clk.Now()); err == nil {
		t.Fatal("second mark succeeded")
	}
	// A submitting step may still be proven sent, or become uncertain.
	f2 := h.mustMove(f.ID, store.EvSent, store.StateWaiting)
	if le, _ := h.db.LastLedger(f.ID, f2.Step-1); le == nil || le.State != store.LedgerSent {
		t.Fatalf("ledger after sent: %+v", le)
	}

	g := h.reach(store.StateSending)
	if err := h.db.MarkSubmitting(g.ID, g.Step, g.SendID, h.clk.Now()); err != nil {
		t.Fatal(err)
	}
	h.mustMove(g.ID, store.EvUncertain, store.StateUncertain)

	// Not in sending: refused.
	w := h.reach(store.StateWaiting)
	if err := h.db.MarkSubmitting(w.ID, w.Step, "followupd.1.1.a@b", h.clk.Now()); err == nil {
		t.Fatal("marking a waiting follow-up succeeded")
	}
}
