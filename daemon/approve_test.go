package daemon_test

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"followupd/config"
	"followupd/message"
	"followupd/store"
)

// mailboxCopy is one message in a test mailbox.
type mailboxCopy struct {
	uid   uint32
	flags []string
	raw   []byte
	rec   *message.Record
}

// mailbox returns every message of user's mailbox, read over IMAP.
func (w *world) mailbox(user, mailbox string) []mailboxCopy {
	w.t.Helper()
	c, err := w.imap.Dial(user)
	if err != nil {
		w.t.Fatal(err)
	}
	defer c.Close()
	sel, err := c.Select(mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		w.t.Fatalf("select %s: %v", mailbox, err)
	}
	if sel.NumMessages == 0 {
		return nil
	}
	all := imap.SeqSet{}
	all.AddRange(1, 0)
	bs := &imap.FetchItemBodySection{Peek: true}
	res, err := c.Fetch(all, &imap.FetchOptions{UID: true, Flags: true, BodySection: []*imap.FetchItemBodySection{bs}}).Collect()
	if err != nil {
		w.t.Fatalf("fetch %s: %v", mailbox, err)
	}
	var out []mailboxCopy
	for _, m := range res {
		raw := m.FindBodySection(bs)
		rec, err := message.ParseHeader(raw)
		if err != nil {
			w.t.Fatalf("parsing %s message: %v", mailbox, err)
		}
		mc := mailboxCopy{uid: uint32(m.UID), raw: raw, rec: rec}
		for _, f := range m.Flags {
			mc.flags = append(mc.flags, string(f))
		}
		out = append(out, mc)
	}
	return out
}

// deleteFrom expunges the message with Message-ID msgid from user's mailbox,
// as a person deleting a draft does.
func (w *world) deleteFrom(user, mailbox, msgid string) {
	w.t.Helper()
	var uid uint32
	for _, m := range w.mailbox(user, mailbox) {
		if m.rec.MessageID == msgid {
			uid = m.uid
		}
	}
	if uid == 0 {
		w.t.Fatalf("%s has no %s in %s", user, msgid, mailbox)
	}
	c, err := w.imap.Dial(user)
	if err != nil {
		w.t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Select(mailbox, nil).Wait(); err != nil {
		w.t.Fatal(err)
	}
	if err := c.Store(imap.UIDSetNum(imap.UID(uid)), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		w.t.Fatal(err)
	}
	if err := c.Expunge().Close(); err != nil {
		w.t.Fatal(err)
	}
}

// creep moves the clock to t in steps of step, giving the daemon's
// goroutines time to act at each (a check that plans a re-check relative
// to the time it ran needs the clock to pass that point).
func (w *world) creep(t time.Time, step time.Duration) {
	for w.clk.Now().Before(t) {
		w.advanceTo(minTime(w.clk.Now().Add(step), t))
		time.Sleep(10 * time.Millisecond)
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func (w *world) smtpTo(addr string) []mailboxCopy {
	var out []mailboxCopy
	for _, m := range w.smtp.Messages() {
		if slices.ContainsFunc(m.To, func(r string) bool { return strings.EqualFold(r, addr) }) {
			rec, err := message.Parse(bytes.NewReader(m.Data), 0)
			if err != nil {
				w.t.Fatal(err)
			}
			out = append(out, mailboxCopy{raw: m.Data, rec: rec})
		}
	}
	return out
}

func stateOf(t *testing.T, db *store.DB, msgid string) *store.FollowUp {
	t.Helper()
	f, err := db.ByMessageID(msgid)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// Approval mode end to end: the due reminders become threaded drafts, the
// sender gets one notice for the batch; a draft the sender sends counts as
// the step, a draft the sender deletes skips it; the daemon itself sends
// no reminder.
func TestApprovalMode(t *testing.T) {
	start := monday(t)
	w := newWorld(t, start, seller, client)
	cfg := w.config("", seller)
	cfg.Accounts[0].Mode = config.ModeApprove
	d, _ := w.run(cfg)
	db := d.Store()

	w.sendOffer(seller, client, "offer-a1@seller.test", "Коммерческое предложение №1", start.Add(-time.Minute))
	w.sendOffer(seller, client, "offer-a2@seller.test", "Offer 2 for valves", start)
	w.expect("tracked", "offer-a1@seller.test")
	w.expect("tracked", "offer-a2@seller.test")

	// Thursday 10:01: both steps are due and become drafts.
	w.advanceTo(start.Add(3*24*time.Hour + time.Minute))
	w.expect("drafted", "offer-a1@seller.test")
	// Paced (max_per_hour 3600: a second apart, from whenever the first
	// went): the clock must pass the second's slot.
	w.advanceTo(w.clk.Now().Add(5 * time.Second))
	w.expect("drafted", "offer-a2@seller.test")
	drafts := w.mailbox(seller, "Drafts")
	if len(drafts) != 2 {
		t.Fatalf("%d drafts in Drafts, want 2", len(drafts))
	}
	byOffer := map[string]mailboxCopy{}
	for _, m := range drafts {
		r := m.rec
		if len(r.InReplyTo) != 1 {
			t.Fatalf("draft In-Reply-To %q", r.InReplyTo)
		}
		byOffer[r.InReplyTo[0]] = m
		if len(r.References) == 0 || r.References[len(r.References)-1] != r.InReplyTo[0] {
			t.Errorf("draft References %q do not end with In-Reply-To %q", r.References, r.InReplyTo)
		}
		if !r.IsOwn() || !strings.HasPrefix(r.MessageID, message.OwnPrefix) {
			t.Errorf("draft %s not recognisable as our own", r.MessageID)
		}
		if _, ok := r.Headers[message.OwnHeader]; !ok {
			t.Errorf("draft lacks %s: %v", message.OwnHeader, r.Headers)
		}
		if !slices.Contains(m.flags, `\Draft`) {
			t.Errorf("draft flags %v, want \\Draft", m.flags)
		}
		if len(r.From) != 1 || r.From[0].Addr != seller || len(r.To) != 1 || r.To[0].Addr != client {
			t.Errorf("draft from %v to %v", r.From, r.To)
		}
	}
	a1, a2 := byOffer["offer-a1@seller.test"], byOffer["offer-a2@seller.test"]
	if a1.rec == nil || a2.rec == nil {
		t.Fatalf("drafts answer %v", byOffer)
	}
	if a1.rec.Subject != "Re: Коммерческое предложение №1" {
		t.Errorf("draft subject %q", a1.rec.Subject)
	}
	for _, id := range []string{"offer-a1@seller.test", "offer-a2@seller.test"} {
		if f := stateOf(t, db, id); f.State != store.StateDraft || f.Step != 1 {
			t.Errorf("%s: %s step %d, want draft step 1", id, f.State, f.Step)
		}
	}

	// One notice for the batch, a couple of minutes later.
	w.advanceTo(w.clk.Now().Add(3 * time.Minute))
	w.expect("notice", "")
	notices := w.smtpTo(seller)
	if len(notices) != 1 || notices[0].rec.Subject != "2 reminders are waiting in Drafts" {
		t.Fatalf("notices to the sender: %d %v", len(notices), notices)
	}
	if !notices[0].rec.IsOwn() || !strings.Contains(notices[0].rec.Body, "Offer 2 for valves") {
		t.Errorf("notice: own %v, text %q", notices[0].rec.IsOwn(), notices[0].rec.Body)
	}
	if n := len(w.smtpTo(client)); n != 0 {
		t.Fatalf("the daemon sent %d reminders itself in approval mode", n)
	}

	// The sender sends draft 1 (it lands in Sent with the same bytes) and
	// deletes draft 2.
	if err := w.imap.Append(seller, "Sent", a1.raw, `\Seen`); err != nil {
		t.Fatal(err)
	}
	w.deleteFrom(seller, "Drafts", a1.rec.MessageID)
	ev := w.expect("sent", "offer-a1@seller.test")
	if ev.Step != 1 {
		t.Errorf("sent event for step %d", ev.Step)
	}
	f1 := stateOf(t, db, "offer-a1@seller.test")
	if f1.State != store.StateWaiting || f1.Step != 2 || !slices.Contains(f1.Sent, a1.rec.MessageID) {
		t.Errorf("sent draft: %s step %d sent %v, want waiting step 2 with the draft counted", f1.State, f1.Step, f1.Sent)
	}
	w.deleteFrom(seller, "Drafts", a2.rec.MessageID)
	// Missed on the next hourly check, confirmed ten minutes later.
	w.creep(w.clk.Now().Add(3*time.Hour), 5*time.Minute)
	ev = w.expect("skipped", "offer-a2@seller.test")
	f2 := stateOf(t, db, "offer-a2@seller.test")
	if f2.State != store.StateWaiting || f2.Step != 2 || len(f2.Sent) != 0 {
		t.Errorf("deleted draft: %s step %d sent %v, want waiting step 2, nothing sent", f2.State, f2.Step, f2.Sent)
	}
	if last := f2.History[len(f2.History)-1]; last.Event != store.EvDraftGone || last.Step != 1 {
		t.Errorf("last history %+v, want draft-gone of step 1", last)
	}
	led, err := db.Ledger(f2.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(led) != 1 || led[0].State != store.LedgerRolledBack {
		t.Errorf("ledger of the deleted draft: %+v, want one rolled-back entry", led)
	}
	// A draft still in Drafts is left alone by the checks.
	w.quiet("skipped", 200*time.Millisecond)
	if n := len(w.smtpTo(client)); n != 0 {
		t.Fatalf("the daemon sent %d reminders itself in approval mode", n)
	}
}

// A second batch within the hour waits for the pacing: at most one notice
// per hour per account.
func TestApprovalNoticePaced(t *testing.T) {
	start := monday(t)
	w := newWorld(t, start, seller, client)
	cfg := w.config("", seller)
	cfg.Accounts[0].Mode = config.ModeApprove
	w.run(cfg)
	w.sendOffer(seller, client, "offer-p1@seller.test", "Offer P1", start.Add(-20*time.Minute))
	w.sendOffer(seller, client, "offer-p2@seller.test", "Offer P2", start)
	w.expect("tracked", "offer-p1@seller.test")
	w.expect("tracked", "offer-p2@seller.test")
	w.advanceTo(start.Add(3*24*time.Hour - 19*time.Minute))
	w.expect("drafted", "offer-p1@seller.test")
	w.advanceTo(w.clk.Now().Add(3 * time.Minute))
	w.expect("notice", "")
	// P2 falls due 20 minutes later: its notice waits for the hour.
	w.advanceTo(start.Add(3*24*time.Hour + time.Minute))
	w.expect("drafted", "offer-p2@seller.test")
	w.advanceTo(start.Add(3*24*time.Hour + 30*time.Minute))
	w.quiet("notice", 200*time.Millisecond)
	if n := len(w.smtpTo(seller)); n != 1 {
		t.Fatalf("%d notices within the hour, want 1", n)
	}
	w.advanceTo(start.Add(3*24*time.Hour + 50*time.Minute))
	w.expect("notice", "")
	ns := w.smtpTo(seller)
	if len(ns) != 2 || ns[1].rec.Subject != "2 reminders are waiting in Drafts" {
		t.Fatalf("second notice: %d %v", len(ns), ns)
	}
}

// dry-run records what it would send and sends nothing: no SMTP, no
// APPEND to Sent or Drafts.
func TestDryRunSendsNothing(t *testing.T) {
	start := monday(t)
	w := newWorld(t, start, seller, client)
	cfg := w.config("", seller)
	cfg.Accounts[0].Mode = config.ModeDryRun
	d, _ := w.run(cfg)
	w.sendOffer(seller, client, "offer-d1@seller.test", "Offer D1", start)
	w.expect("tracked", "offer-d1@seller.test")
	w.advanceTo(start.Add(3 * 24 * time.Hour))
	w.expect("sent", "offer-d1@seller.test")
	w.advanceTo(time.Date(2026, 11, 30, 10, 0, 0, 0, start.Location()))
	w.expect("sent", "offer-d1@seller.test")
	w.quiet("drafted", 200*time.Millisecond)
	if msgs := w.smtp.Messages(); len(msgs) != 0 {
		t.Fatalf("dry-run submitted %d messages", len(msgs))
	}
	if n := len(w.mailbox(seller, "Drafts")); n != 0 {
		t.Errorf("dry-run put %d messages in Drafts", n)
	}
	if n := len(w.mailbox(seller, "Sent")); n != 1 {
		t.Errorf("Sent holds %d messages, want only the offer", n)
	}
	if n := len(w.mailbox(client, "INBOX")); n != 1 {
		t.Errorf("client INBOX holds %d messages, want only the offer", n)
	}
	f := stateOf(t, d.Store(), "offer-d1@seller.test")
	if f.State != store.StateFinished {
		t.Errorf("state %s, want finished (every step recorded)", f.State)
	}
	n := 0
	for _, h := range f.History {
		if h.Event == store.EvSent {
			n++
			if !strings.HasPrefix(h.Reason, "dry-run") {
				t.Errorf("sent entry %q does not say dry-run", h.Reason)
			}
		}
	}
	if n != 2 {
		t.Errorf("%d recorded steps, want 2", n)
	}
}
