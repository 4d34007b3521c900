package daemon_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"followupd/daemon"
	"followupd/message"
	"followupd/store"
)

// crashAt leaves the store as a daemon killed during step 1 of a tracked
// offer would: intent written, optionally the submitting mark, optionally
// the reminder's own copy already in Sent.
func crashAt(t *testing.T, w *world, submitting, copyInSent bool) (offerID, sendID string) {
	t.Helper()
	start := w.clk.Now()
	offerID = "crash-offer@seller.test"
	w.sendOffer(seller, client, offerID, "Offer before the crash", start.Add(-4*24*time.Hour))
	db, err := store.Open(filepath.Join(w.dir, daemon.DBFile), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sent := start.Add(-4 * 24 * time.Hour)
	f, _, err := db.Track(&store.FollowUp{
		Account: seller, MessageID: offerID, Rule: "offer", Kind: "offer", Subject: "Offer before the crash",
		From: message.Address{Addr: seller}, To: []message.Address{{Addr: client}},
		SentAt: sent, LastSent: sent, State: store.StateWaiting, Step: 1, Due: start.Add(-time.Hour),
	}, start, "test")
	if err != nil {
		t.Fatal(err)
	}
	sendID = message.NewOwnMessageID("seller.test", f.ID, 1)
	if _, err := db.Transition(f.ID, store.EvDue, start, "test intent", func(f *store.FollowUp) error {
		f.State, f.SendID = store.StateSending, sendID
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if submitting {
		if err := db.MarkSubmitting(f.ID, 1, sendID, start); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if copyInSent {
		raw := rawMessage(sendID, offerID, seller, client, "Re: Offer before the crash", "reminder", start, "X-Followupd: id=1; step=1\r\n")
		if err := w.imap.Append(seller, "Sent", raw, `\Seen`); err != nil {
			t.Fatal(err)
		}
	}
	return offerID, sendID
}

func TestRecoverIntentWithoutSubmissionIsResent(t *testing.T) {
	w := newWorld(t, monday(t), seller, client)
	cfg := w.config("", seller)
	offer, _ := crashAt(t, w, false, false)
	d, _ := w.run(cfg)
	w.expect("sent", offer)
	if n := len(w.remindersTo(client)); n != 1 {
		t.Fatalf("%d reminders, want exactly 1", n)
	}
	f, _ := d.Store().ByMessageID(offer)
	if f.State != store.StateWaiting || f.Step != 2 {
		t.Errorf("after recovery: %s step %d, want waiting step 2", f.State, f.Step)
	}
}

func TestRecoverSubmittingProvenBySentCopy(t *testing.T) {
	w := newWorld(t, monday(t), seller, client)
	cfg := w.config("", seller)
	offer, _ := crashAt(t, w, true, true)
	d, _ := w.run(cfg)
	w.quiet("uncertain", 300*time.Millisecond)
	f, _ := d.Store().ByMessageID(offer)
	if f.State != store.StateWaiting || f.Step != 2 {
		t.Fatalf("after recovery: %s step %d, want waiting step 2 (proven sent)", f.State, f.Step)
	}
	if n := len(w.remindersTo(client)); n != 0 {
		t.Fatalf("%d reminders resent, want 0", n)
	}
}

func TestRecoverSubmittingUnprovenIsUncertain(t *testing.T) {
	w := newWorld(t, monday(t), seller, client)
	cfg := w.config("", seller)
	offer, _ := crashAt(t, w, true, false)
	d, _ := w.run(cfg)
	w.expect("uncertain", offer)
	w.advanceTo(w.clk.Now().Add(10 * 24 * time.Hour))
	w.quiet("sent", 300*time.Millisecond)
	if n := len(w.remindersTo(client)); n != 0 {
		t.Fatalf("%d reminders sent for an uncertain step, want 0", n)
	}
	f, _ := d.Store().ByMessageID(offer)
	if f.State != store.StateUncertain {
		t.Fatalf("state %s, want uncertain", f.State)
	}
}

// The server takes the whole message but the connection dies before its
// reply: the step must not be retried blindly.
func TestMaybeSentIsNotRetried(t *testing.T) {
	start := monday(t)
	w := newWorld(t, start, seller, client)
	d, _ := w.run(w.config("", seller))
	w.sendOffer(seller, client, "offer-ms@seller.test", "Offer maybe sent", start)
	w.expect("tracked", "offer-ms@seller.test")
	release := w.smtp.Hold()
	defer release()
	go func() {
		// Once the message is held (written, no reply), drop the server's side.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := w.smtp.WaitHeld(ctx); err == nil {
			w.smtp.Close()
		}
	}()
	w.advanceTo(start.Add(3 * 24 * time.Hour))
	w.expect("uncertain", "offer-ms@seller.test")
	f, _ := d.Store().ByMessageID("offer-ms@seller.test")
	if f.State != store.StateUncertain {
		t.Fatalf("state %s, want uncertain", f.State)
	}
}
