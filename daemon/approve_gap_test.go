package daemon_test

import (
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"followupd/config"
	"followupd/control"
	"followupd/daemon"
	"followupd/store"
)

// drafted is an approval-mode world whose offer's step 1 waits in Drafts.
type drafted struct {
	w     *world
	d     *daemon.Daemon
	stop  func()
	sock  string
	id    uint64      // the follow-up
	draft mailboxCopy // the draft in the sender's Drafts
}

const draftedOffer = "offer-race@seller.test"

func newDrafted(t *testing.T) *drafted {
	t.Helper()
	t.Setenv("RUNTIME_DIRECTORY", "") // the control socket goes to state_dir
	start := monday(t)
	w := newWorld(t, start, seller, client)
	w.withProxy()
	cfg := w.config("", seller)
	cfg.Accounts[0].Mode = config.ModeApprove
	d, stop := w.run(cfg)
	w.sendOffer(seller, client, draftedOffer, "Offer for the race", start)
	id := w.expect("tracked", draftedOffer).FollowUp
	w.advanceTo(start.Add(3*24*time.Hour + time.Minute))
	w.expect("drafted", draftedOffer)
	drafts := w.mailbox(seller, "Drafts")
	if len(drafts) != 1 {
		t.Fatalf("%d drafts, want 1", len(drafts))
	}
	f := stateOf(t, d.Store(), draftedOffer)
	if f.State != store.StateDraft || drafts[0].rec.MessageID != f.SendID {
		t.Fatalf("follow-up %s send id %q, draft %q", f.State, f.SendID, drafts[0].rec.MessageID)
	}
	return &drafted{w: w, d: d, stop: stop, sock: filepath.Join(w.dir, "control.sock"), id: id, draft: drafts[0]}
}

func (x *drafted) approve(t *testing.T) (stdout, stderr string, code int) {
	t.Helper()
	return ctl(t, x.sock, "approve", strconv.FormatUint(x.id, 10))
}

// The sender sent the draft from the mail client; its copy is in Sent but
// the watcher has not processed it yet (its connections are held). approve
// must not send the step a second time: it finds the copy in Sent and
// records the sender's send.
func TestApproveDraftAlreadySentBySender(t *testing.T) {
	x := newDrafted(t)
	w := x.w
	if n := w.proxy.Freeze(); n == 0 {
		t.Fatal("no watcher connection to hold")
	}
	if err := w.imap.Append(seller, "Sent", x.draft.raw, `\Seen`); err != nil {
		t.Fatal(err)
	}
	w.deleteFrom(seller, "Drafts", x.draft.rec.MessageID)

	_, errOut, code := x.approve(t)
	if code != control.ExitFailed || !strings.Contains(errOut, "already sent this draft") {
		t.Errorf("approve: exit %d %q, want refused: already sent by the sender", code, errOut)
	}
	f := stateOf(t, x.d.Store(), draftedOffer)
	if f.State != store.StateWaiting || f.Step != 2 || !slices.Contains(f.Sent, x.draft.rec.MessageID) || f.Approved != 0 {
		t.Errorf("after approve: %s step %d sent %v approved %d, want waiting step 2 with the draft counted as sent", f.State, f.Step, f.Sent, f.Approved)
	}
	if last := f.History[len(f.History)-1]; last.Event != store.EvDraftSent || last.Step != 1 {
		t.Errorf("last history %+v, want draft-sent of step 1", last)
	}
	w.proxy.Unfreeze()
	// The watcher now sees the copy: it changes nothing more.
	w.advanceTo(w.clk.Now().Add(10 * time.Minute))
	w.quiet("approved", 300*time.Millisecond)
	if n := len(w.remindersTo(client)); n != 0 {
		t.Fatalf("followupd sent %d reminders for a draft the sender sent", n)
	}
	if g := stateOf(t, x.d.Store(), draftedOffer); g.Step != 2 || g.State != store.StateWaiting || len(g.History) != len(f.History) {
		t.Errorf("after the watcher: %s step %d, %d history entries (was %d)", g.State, g.Step, len(g.History), len(f.History))
	}
}

// The sender deleted the draft: approve sends nothing and says why; the
// follow-up stays drafted for the draft check to settle.
func TestApproveDraftDeleted(t *testing.T) {
	x := newDrafted(t)
	w := x.w
	w.deleteFrom(seller, "Drafts", x.draft.rec.MessageID)
	_, errOut, code := x.approve(t)
	if code != control.ExitFailed || !strings.Contains(errOut, "draft gone") || !strings.Contains(errOut, "nothing was sent") {
		t.Errorf("approve: exit %d %q, want refused: draft gone, nothing sent", code, errOut)
	}
	if f := stateOf(t, x.d.Store(), draftedOffer); f.State != store.StateDraft || f.Approved != 0 {
		t.Errorf("after approve: %s approved %d, want still draft", f.State, f.Approved)
	}
	w.advanceTo(w.clk.Now().Add(10 * time.Minute))
	w.quiet("sent", 300*time.Millisecond)
	if n := len(w.remindersTo(client)); n != 0 {
		t.Fatalf("followupd sent %d reminders for a deleted draft", n)
	}
}

// The plain case: the draft is removed and followupd sends the step once.
func TestApproveSendsOnce(t *testing.T) {
	x := newDrafted(t)
	w := x.w
	out, errOut, code := x.approve(t)
	if code != 0 || !strings.Contains(out, "approved") || errOut != "" {
		t.Fatalf("approve: exit %d %s%s", code, out, errOut)
	}
	if n := w.mailboxSize(seller, "Drafts"); n != 0 {
		t.Errorf("Drafts holds %d messages after approve, want 0", n)
	}
	w.advanceTo(w.clk.Now().Add(10 * time.Minute))
	w.expect("sent", draftedOffer)
	rs := w.remindersTo(client)
	if len(rs) != 1 || rs[0].MessageID == x.draft.rec.MessageID {
		t.Fatalf("%d reminders after approval, want 1 under a fresh Message-ID", len(rs))
	}
	f := stateOf(t, x.d.Store(), draftedOffer)
	if f.State != store.StateWaiting || f.Step != 2 || f.Approved != 1 || len(f.Sent) != 1 {
		t.Errorf("after the send: %s step %d approved %d sent %v", f.State, f.Step, f.Approved, f.Sent)
	}
	// A second approve finds nothing to approve and sends nothing.
	if _, errOut, code := x.approve(t); code != control.ExitFailed || !strings.Contains(errOut, "only a drafted step") {
		t.Errorf("second approve: exit %d %q", code, errOut)
	}
	w.advanceTo(w.clk.Now().Add(time.Hour))
	if n := len(w.remindersTo(client)); n != 1 {
		t.Fatalf("%d reminders in all, want 1", n)
	}
}
