package interop_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"followupd/imapwatch"
	"followupd/internal/mailtest"
	"followupd/store"
)

// ledgerStates lists a follow-up's ledger entries as "step:state".
func ledgerStates(t *testing.T, db *store.DB, id uint64) []string {
	t.Helper()
	les, err := db.Ledger(id)
	if err != nil {
		t.Fatalf("ledger of %d: %v", id, err)
	}
	var out []string
	for _, le := range les {
		out = append(out, fmt.Sprintf("%d:%s", le.Step, le.State))
	}
	return out
}

// Scenario 6: Postfix stopped, then answering 4xx: the step is retried with
// backoff and delivered once it accepts. Postfix answering 5xx for a
// recipient: the follow-up fails with the server's text and is never
// retried.
func TestScenario6TemporaryAndPermanentSMTPFailures(t *testing.T) {
	begin := time.Now()
	w := newWorld(t, mailtest.Options{Users: users(pw, ivan, anna, boris)})
	d, _ := w.run(w.config("", offerRules, w.plain(ivan)))
	start := w.clk.Now()
	const idA, idB = "s6-offer-a@seller.test", "s6-offer-b@seller.test"
	w.offer(ivan, anna, idA, "Offer A", start)
	w.offer(ivan, boris, idB, "Offer B", start)
	w.expect("tracked", idA)
	w.expect("tracked", idB)
	due := start.AddDate(0, 0, 3)

	// Attempt 1: the submission server is down.
	w.s.StopPostfix(t)
	w.advanceTo(due.Add(10 * time.Second)) // max_per_hour 3600: B goes a second after A
	r1 := w.expect("retry", idA)
	w.expectPumping("retry", idB, due.Add(30*time.Second))
	t.Logf("scenario 6: postfix down: %s", r1.Text)
	w.s.StartPostfix(t)

	// Attempt 2 (RetryBase = 1m later): 451 for anna, 550 for boris.
	w.s.SetPolicy(anna, "451 4.7.1 greylisted, try later")
	w.s.SetPolicy(boris, "550 5.1.1 <boris@buyer.test>: mailbox unavailable")
	w.advanceTo(due.Add(time.Minute + 30*time.Second))
	r2 := w.expect("retry", idA)
	if !strings.Contains(r2.Text, "451") {
		t.Errorf("retry after 4xx says %q, want the server's 451", r2.Text)
	}
	// B's pacing slot is a second after A's: let the clock creep.
	fail := w.expectPumping("failed", idB, due.Add(2*time.Minute+30*time.Second))
	if !strings.Contains(fail.Text, "550") || !strings.Contains(fail.Text, "mailbox unavailable") {
		t.Errorf("failure says %q, want the server's 550 text", fail.Text)
	}
	fB := w.followUp(d, idB)
	if fB.State != store.StateFailed || !strings.Contains(fB.Outcome, "550") || !strings.Contains(fB.Outcome, "mailbox unavailable") {
		t.Errorf("B: state %s outcome %q, want failed with the server's text", fB.State, fB.Outcome)
	}

	// Attempt 3 (2m after attempt 2): accepted.
	w.s.SetPolicy(anna, "")
	retryAt := w.followUp(d, idA).Due
	if wait := retryAt.Sub(r2.At); wait != 2*time.Minute {
		t.Errorf("second retry %v after the failure, want 2m (backoff doubles from RetryBase 1m)", wait)
	}
	w.advanceTo(retryAt.Add(-time.Second))
	w.quiet("sent", 200*time.Millisecond)
	w.advanceTo(retryAt.Add(10 * time.Second))
	w.expect("sent", idA)

	// Much later: step 2 of A goes; B is never tried again.
	w.advanceTo(start.AddDate(0, 0, 14))
	w.expect("sent", idA)
	w.quiet("retry", 300*time.Millisecond)
	w.exactly(anna, "INBOX", 3, 2)
	w.exactly(boris, "INBOX", 1, 0)

	fA := w.followUp(d, idA)
	if got, want := strings.Join(ledgerStates(t, d.Store(), fA.ID), " "), "1:rolled-back 1:rolled-back 1:sent 2:sent"; got != want {
		t.Errorf("A's ledger %q, want %q", got, want)
	}
	if fA.State != store.StateFinished {
		t.Errorf("A: state %s, want finished", fA.State)
	}
	if got, want := strings.Join(ledgerStates(t, d.Store(), fB.ID), " "), "1:rolled-back 1:failed"; got != want {
		t.Errorf("B's ledger %q, want %q", got, want)
	}
	took(t, 6, "postfix down/4xx -> retried and sent; 5xx -> failed, not retried", begin)
}

// Scenario 7: the Sent folder is deleted and recreated (a new UIDVALIDITY),
// while the daemon runs and between runs, with its old messages restored:
// nothing already tracked is tracked twice, nothing is re-sent, and a new
// offer in the new folder is tracked.
func TestScenario7SentRecreated(t *testing.T) {
	begin := time.Now()
	w := newWorld(t, mailtest.Options{Users: users(pw, ivan, anna, boris)})
	cfg := w.config("", offerRules, w.plain(ivan))
	d, stop := w.run(cfg)
	start := w.clk.Now()
	const idA = "s7-offer-a@seller.test"
	rawA := w.offer(ivan, anna, idA, "Offer A", start)
	w.expect("tracked", idA)
	w.advanceTo(start.AddDate(0, 0, 3))
	w.expect("sent", idA)
	inbox := w.exactly(anna, "INBOX", 2, 1)
	reminderA := own(inbox)[0].MessageID
	w.exactly(ivan, "Sent", 2, 1)
	fA := w.followUp(d, idA)
	oldValidity := w.syncValidity(d, "Sent")

	// While running: delete Sent, create it again, restore its messages
	// (the offer and the reminder's copy) and send a new offer.
	rawReminder := w.rawOf(ivan, "Sent", reminderA)
	if err := w.s.DeleteMailbox(ivan, "Sent"); err != nil {
		t.Fatal(err)
	}
	if err := w.s.CreateMailbox(ivan, "Sent"); err != nil {
		t.Fatal(err)
	}
	for _, raw := range [][]byte{rawA, rawReminder} {
		if err := w.s.Append(ivan, "Sent", raw, `\Seen`); err != nil {
			t.Fatal(err)
		}
	}
	const idB = "s7-offer-b@seller.test"
	w.offer(ivan, boris, idB, "Offer B", w.clk.Now())
	// Dovecot tells a session idling in a deleted (and recreated) folder
	// nothing (it logs "indexid changed"): the watcher finds out when it
	// re-issues IDLE, every imapwatch.DefaultIdleRestart.
	limit := w.clk.Now().Add(time.Hour)
	w.advanceTo(w.clk.Now().Add(imapwatch.DefaultIdleRestart + time.Minute))
	w.expectPumping("tracked", idB, limit)
	w.quiet("tracked", 300*time.Millisecond)
	if v := w.syncValidity(d, "Sent"); v == oldValidity {
		t.Errorf("Sent's UIDVALIDITY in the store is still %d after the folder was recreated", v)
	}
	w.checkUnchanged(d, fA, 2)
	stop()

	// Between runs: the same again, plus one more new offer.
	if err := w.s.DeleteMailbox(ivan, "Sent"); err != nil {
		t.Fatal(err)
	}
	if err := w.s.CreateMailbox(ivan, "Sent"); err != nil {
		t.Fatal(err)
	}
	for _, raw := range [][]byte{rawA, rawReminder} {
		if err := w.s.Append(ivan, "Sent", raw, `\Seen`); err != nil {
			t.Fatal(err)
		}
	}
	const idC = "s7-offer-c@seller.test"
	w.offer(ivan, boris, idC, "Offer C", w.clk.Now())
	d, _ = w.run(w.config("", offerRules, w.plain(ivan)))
	w.expect("tracked", idC)
	w.quiet("tracked", 300*time.Millisecond)
	w.checkUnchanged(d, fA, 3)
	// A's step 2 comes at its own time, once.
	w.advanceTo(fA.Due)
	w.expect("sent", idA)
	w.exactly(anna, "INBOX", 3, 2)
	took(t, 7, "Sent deleted+recreated (running and stopped) -> no double tracking, no resend", begin)
}

// syncValidity is the UIDVALIDITY the store remembers for ivan's mailbox.
func (w *world) syncValidity(d interface{ Store() *store.DB }, mailbox string) uint32 {
	w.t.Helper()
	st, err := d.Store().SyncState("ivan", mailbox)
	if err != nil {
		w.t.Fatal(err)
	}
	return st.UIDValidity
}

// rawOf returns the message with Message-ID msgid from user's mailbox.
func (w *world) rawOf(user, mailbox, msgid string) []byte {
	w.t.Helper()
	raws, err := w.s.WaitDelivered(w.t.Context(), user, mailbox, 0)
	if err != nil {
		w.t.Fatal(err)
	}
	for _, raw := range raws {
		if strings.Contains(string(raw), "<"+msgid+">") {
			return raw
		}
	}
	w.t.Fatalf("%s not in %s of %s", msgid, mailbox, user)
	return nil
}

// checkUnchanged asserts that the store holds n follow-ups and that before
// (step 1 sent, step 2 waiting) is as it was, with one reminder delivered.
func (w *world) checkUnchanged(d interface{ Store() *store.DB }, before *store.FollowUp, n int) {
	w.t.Helper()
	fs, err := d.Store().List(store.Filter{})
	if err != nil {
		w.t.Fatal(err)
	}
	if len(fs) != n {
		var ids []string
		for _, f := range fs {
			ids = append(ids, f.MessageID)
		}
		w.t.Fatalf("%d follow-ups %v, want %d", len(fs), ids, n)
	}
	now, err := d.Store().ByMessageID(before.MessageID)
	if err != nil {
		w.t.Fatal(err)
	}
	if now.ID != before.ID || now.State != before.State || now.Step != before.Step || !now.Due.Equal(before.Due) || len(now.Sent) != len(before.Sent) {
		w.t.Fatalf("follow-up %d changed: %s step %d due %v sent %v; was %s step %d due %v sent %v",
			now.ID, now.State, now.Step, now.Due, now.Sent, before.State, before.Step, before.Due, before.Sent)
	}
	w.quiet("sent", 200*time.Millisecond)
	w.exactly(anna, "INBOX", 2, 1)
}

// Scenario 8: two accounts on the same server, one rule each, side by
// side: each tracks with its own rule, an answer to one cancels only its
// own follow-up, a reminder goes from and through its own account only.
func TestScenario8TwoAccountsNoCrosstalk(t *testing.T) {
	begin := time.Now()
	w := newWorld(t, mailtest.Options{Users: users(pw, ivan, maria, anna, boris)})
	rules := `
[[rule]]
name = "ivan_offers"
kind = "offer"
match.subject = ['(?i)offer']
match.header = { "From" = '(?i)ivan@seller\.test' }
  [[rule.step]]
  after = "3 business days"
  template = "first"

[[rule]]
name = "maria_invoices"
kind = "invoice"
match.subject = ['(?i)invoice (?P<number>\d+)']
match.header = { "From" = '(?i)maria@seller\.test' }
  [[rule.step]]
  after = "2 business days"
  template = "invoice"

[template.first]
body = "Did you look at {{.Subject}}?"
[template.invoice]
body = "Invoice {{.Vars.number}} is still open."
`
	d, _ := w.run(w.config("", rules, w.plain(ivan), w.plain(maria)))
	start := w.clk.Now()
	const idI, idM = "s8-offer@seller.test", "s8-invoice@seller.test"
	w.offer(ivan, anna, idI, "Offer 8", start)
	w.offer(maria, boris, idM, "Invoice 8123", start)
	for _, c := range []struct{ id, account, rule string }{{idI, "ivan", "ivan_offers"}, {idM, "maria", "maria_invoices"}} {
		ev := w.expect("tracked", c.id)
		f := w.followUp(d, c.id)
		if ev.Account != c.account || f.Account != c.account || f.Rule != c.rule {
			t.Errorf("%s tracked by account %s (event %s) rule %s, want %s / %s", c.id, f.Account, ev.Account, f.Rule, c.account, c.rule)
		}
	}
	// An offer of Maria's matching Ivan's rule only is not tracked.
	w.offer(maria, boris, "s8-maria-offer@seller.test", "Offer from Maria", start)
	w.quiet("tracked", 500*time.Millisecond)

	// Boris answers Maria's invoice: only Maria's follow-up ends.
	w.clk.Set(start.Add(time.Hour))
	w.reply(boris, maria, "s8-reply@buyer.test", idM, "Re: Invoice 8123", w.clk.Now())
	ev := w.expect("answered", idM)
	if ev.Account != "maria" {
		t.Errorf("answer recorded for account %s, want maria", ev.Account)
	}
	w.advanceTo(start.AddDate(0, 0, 3))
	sent := w.expect("sent", idI)
	if sent.Account != "ivan" {
		t.Errorf("reminder sent by account %s, want ivan", sent.Account)
	}
	w.advanceTo(start.AddDate(0, 0, 7))
	w.quiet("sent", 300*time.Millisecond)

	r := own(w.exactly(anna, "INBOX", 2, 1))[0]
	if len(r.From) != 1 || r.From[0].Addr != ivan {
		t.Errorf("reminder to anna from %v, want %s", r.From, ivan)
	}
	w.exactly(boris, "INBOX", 2, 0)
	w.exactly(ivan, "Sent", 2, 1) // the offer and Ivan's reminder
	w.exactly(maria, "Sent", 2, 0)
	w.exactly(ivan, "INBOX", 0, 0)
	w.exactly(maria, "INBOX", 1, 0)
	if f := w.followUp(d, idI); f.State != store.StateFinished {
		t.Errorf("Ivan's offer: state %s, want finished", f.State)
	}
	if f := w.followUp(d, idM); f.State != store.StateAnswered {
		t.Errorf("Maria's invoice: state %s, want answered", f.State)
	}
	if fs, _ := d.Store().List(store.Filter{}); len(fs) != 2 {
		t.Errorf("%d follow-ups, want 2", len(fs))
	}
	took(t, 8, "two accounts, one rule each, no crosstalk", begin)
}
