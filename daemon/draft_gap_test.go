package daemon_test

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	"followupd/config"
	"followupd/daemon"
	"followupd/message"
	"followupd/store"
)

// Approval mode must leave at most one draft per step: the sender can send
// every copy. These tests lose an APPEND's reply, crash between the APPEND
// and its record, and let an earlier attempt's draft land late.

func approvalConfig(w *world) *config.Config {
	cfg := w.config("", seller)
	cfg.Accounts[0].Mode = config.ModeApprove
	return cfg
}

// onlyDraft asserts that the sender's Drafts holds exactly one message, the
// follow-up's current draft, and that no reminder went out over SMTP.
func onlyDraft(t *testing.T, w *world, db *store.DB, offer string) {
	t.Helper()
	f := stateOf(t, db, offer)
	drafts := w.mailbox(seller, "Drafts")
	var ids []string
	for _, m := range drafts {
		ids = append(ids, m.rec.MessageID)
	}
	if len(drafts) != 1 || f.State != store.StateDraft || ids[0] != f.SendID {
		t.Fatalf("Drafts holds %q; follow-up %s with send id %q; want exactly its one draft", ids, f.State, f.SendID)
	}
	if n := len(w.remindersTo(client)); n != 0 {
		t.Fatalf("%d reminders sent over SMTP in approval mode", n)
	}
}

// loseDraftReply has the proxy lose the reply to the next APPEND (and,
// with refuse, every connection after it), lets the offer sent at start
// fall due, and waits until the reply is lost.
func (w *world) loseDraftReply(start time.Time, refuse bool) {
	w.t.Helper()
	w.proxy.DropAppendReply(1, refuse)
	w.advanceTo(start.Add(3*24*time.Hour + time.Minute))
	select {
	case <-w.proxy.dropped:
	case <-time.After(10 * time.Second):
		w.t.Fatal("no APPEND reply was lost")
	}
}

// The server stores the draft, then the connection breaks before its OK:
// the daemon finds the draft in Drafts and records it, no second APPEND.
func TestDraftAppendReplyLost(t *testing.T) {
	start := monday(t)
	w := newWorld(t, start, seller, client)
	w.withProxy()
	d, _ := w.run(approvalConfig(w))
	offer := "offer-lost@seller.test"
	w.sendOffer(seller, client, offer, "Offer with a lost reply", start)
	w.expect("tracked", offer)
	w.loseDraftReply(start, false)
	// Retries (there should be none) and the hourly draft checks come and go.
	w.creep(w.clk.Now().Add(2*time.Hour), 5*time.Minute)
	w.expect("drafted", offer)
	onlyDraft(t, w, d.Store(), offer)
	w.quiet("retry", 100*time.Millisecond)
	if f := stateOf(t, d.Store(), offer); f.Attempts != 0 {
		t.Errorf("attempts %d, want 0 (nothing was retried)", f.Attempts)
	}
}

// The reply is lost and the server cannot be reached to look for the
// draft: the step stays in sending (neither retried nor recorded) until the
// look-up can be made.
func TestDraftAppendReplyLostServerUnreachable(t *testing.T) {
	start := monday(t)
	w := newWorld(t, start, seller, client)
	w.withProxy()
	d, _ := w.run(approvalConfig(w))
	offer := "offer-unreach@seller.test"
	w.sendOffer(seller, client, offer, "Offer while unreachable", start)
	w.expect("tracked", offer)
	w.loseDraftReply(start, true)
	w.creep(w.clk.Now().Add(10*time.Minute), time.Minute)
	w.quiet("drafted", 100*time.Millisecond)
	w.quiet("retry", 0)
	if f := stateOf(t, d.Store(), offer); f.State != store.StateSending {
		t.Fatalf("while the server is unreachable: %s, want sending", f.State)
	}
	w.proxy.SetRefuse(false)
	w.creep(w.clk.Now().Add(5*time.Minute), time.Minute)
	w.expect("drafted", offer)
	w.creep(w.clk.Now().Add(time.Hour), 5*time.Minute)
	onlyDraft(t, w, d.Store(), offer)
}

// A crash between the APPEND and recording it: the restart finds the draft
// and records it instead of drafting the step again.
func TestRecoverDraftAppendedBeforeCrash(t *testing.T) {
	w := newWorld(t, monday(t), seller, client)
	offer, sendID := crashAt(t, w, false, false)
	draft := rawMessage(sendID, offer, seller, client, "Re: Offer before the crash", "reminder", w.clk.Now(), "X-Followupd: id=1; step=1\r\n")
	if err := w.imap.Append(seller, "Drafts", draft, `\Draft`); err != nil {
		t.Fatal(err)
	}
	d, _ := w.run(approvalConfig(w))
	w.expect("drafted", offer)
	w.creep(w.clk.Now().Add(2*time.Hour), 5*time.Minute)
	onlyDraft(t, w, d.Store(), offer)
	if f := stateOf(t, d.Store(), offer); f.SendID != sendID {
		t.Errorf("send id %q, want the crashed attempt's %q", f.SendID, sendID)
	}
}

// seedEarlierAttempt leaves step 1 of a tracked offer waiting again, due,
// after an attempt whose draft (returned) was given up as not appended.
func seedEarlierAttempt(t *testing.T, w *world, offer string) (earlier []byte) {
	t.Helper()
	start := w.clk.Now()
	sent := start.Add(-4 * 24 * time.Hour)
	w.sendOffer(seller, client, offer, "Offer with a late draft", sent)
	db, err := store.Open(filepath.Join(w.dir, daemon.DBFile), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	f, _, err := db.Track(&store.FollowUp{
		Account: seller, MessageID: offer, Rule: "offer", Kind: "offer", Subject: "Offer with a late draft",
		From: message.Address{Addr: seller}, To: []message.Address{{Addr: client}},
		SentAt: sent, LastSent: sent, State: store.StateWaiting, Step: 1, Due: start.Add(-time.Hour),
	}, sent, "test")
	if err != nil {
		t.Fatal(err)
	}
	sendID := message.NewOwnMessageID("seller.test", f.ID, 1)
	if _, err := db.Transition(f.ID, store.EvDue, start.Add(-time.Hour), "test intent", func(f *store.FollowUp) error {
		f.State, f.SendID = store.StateSending, sendID
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Transition(f.ID, store.EvRetry, start.Add(-time.Hour), "not sent, retrying: appending draft: timeout; not in Drafts nor Sent", func(f *store.FollowUp) error {
		f.State, f.SendID, f.Due, f.Attempts = store.StateWaiting, "", start.Add(-time.Minute), 1
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return rawMessage(sendID, offer, seller, client, "Re: Offer with a late draft", "reminder", start.Add(-time.Hour), "X-Followupd: id=1; step=1\r\n")
}

// An earlier attempt's APPEND was stored after the daemon had looked for it
// in vain: that copy is removed before the step is drafted again.
func TestRedraftRemovesLateEarlierDraft(t *testing.T) {
	w := newWorld(t, monday(t), seller, client)
	offer := "offer-late@seller.test"
	earlier := seedEarlierAttempt(t, w, offer)
	if err := w.imap.Append(seller, "Drafts", earlier, `\Draft`); err != nil {
		t.Fatal(err)
	}
	d, _ := w.run(approvalConfig(w))
	w.expect("drafted", offer)
	onlyDraft(t, w, d.Store(), offer)
}

// ... and when the sender already sent that late copy, the step counts as
// sent: no new draft.
func TestRedraftEarlierDraftSentBySender(t *testing.T) {
	w := newWorld(t, monday(t), seller, client)
	offer := "offer-late-sent@seller.test"
	earlier := seedEarlierAttempt(t, w, offer)
	if err := w.imap.Append(seller, "Sent", earlier, `\Seen`); err != nil {
		t.Fatal(err)
	}
	d, _ := w.run(approvalConfig(w))
	w.expect("sent", offer)
	w.quiet("drafted", 200*time.Millisecond)
	if n := len(w.mailbox(seller, "Drafts")); n != 0 {
		t.Errorf("Drafts holds %d messages, want none", n)
	}
	if n := len(w.remindersTo(client)); n != 0 {
		t.Errorf("%d reminders sent over SMTP in approval mode", n)
	}
	f := stateOf(t, d.Store(), offer)
	if f.State != store.StateWaiting || f.Step != 2 {
		t.Errorf("after the sweep: %s step %d, want waiting step 2", f.State, f.Step)
	}
	// The id the client got is the earlier draft's: answers and bounces
	// citing it must find the follow-up.
	sentAs, err := message.ParseHeader(earlier)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(f.Sent, sentAs.MessageID) {
		t.Errorf("f.Sent = %v, want it to hold the draft the sender sent, %s", f.Sent, sentAs.MessageID)
	}
}
