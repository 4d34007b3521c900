package daemon_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"followupd/daemon"
	"followupd/message"
	"followupd/store"
)

// appendAt puts raw into user's mailbox with the given INTERNALDATE.
func (w *world) appendAt(user, mailbox string, raw []byte, at time.Time, flags ...string) {
	w.t.Helper()
	if _, err := w.imap.AppendAt(user, mailbox, raw, at, flags...); err != nil {
		w.t.Fatal(err)
	}
}

// A first start against a mailbox with months of history stores every
// message but judges only what can concern a follow-up: an answer to an
// offer older than lookback is stored without a verdict, while recent
// answers, and an answer whose Date is wrong but whose INTERNALDATE is
// recent, still count.
func TestFirstStartStoresHistoryWithoutJudgingIt(t *testing.T) {
	t.Run("short", func(t *testing.T) { firstStartWithHistory(t, 0) })
	// Over a thousand messages in each folder: the watcher fetches light
	// (only what tells history apart), then in full what is not history.
	t.Run("long", func(t *testing.T) { firstStartWithHistory(t, 1100) })
}

func firstStartWithHistory(t *testing.T, fillers int) {
	start := monday(t)
	w := newWorld(t, start, seller, client)
	day := 24 * time.Hour

	old := start.Add(-90 * day)
	for i := range fillers {
		at := old.Add(-time.Duration(i) * time.Hour)
		w.appendAt(seller, "Sent", rawMessage(fmt.Sprintf("filler-%d@seller.test", i), "", seller, client, "Offer for old pumps", "Offer attached.", at, ""), at, `\Seen`)
		w.appendAt(seller, "INBOX", rawMessage(fmt.Sprintf("filler-reply-%d@client.test", i), fmt.Sprintf("filler-%d@seller.test", i), client, seller, "Re: Offer", "Thanks.", at, ""), at)
	}
	w.appendAt(seller, "Sent", rawMessage("old-offer@seller.test", "", seller, client, "Offer for old pumps", "Offer attached.", old, ""), old, `\Seen`)
	w.appendAt(seller, "INBOX", rawMessage("old-reply@client.test", "old-offer@seller.test", client, seller, "Re: Offer for old pumps", "Thanks, no.", old.Add(day), ""), old.Add(day))

	recent := start.Add(-1 * day)
	w.appendAt(seller, "Sent", rawMessage("new-offer@seller.test", "", seller, client, "Offer for new pumps", "Offer attached.", recent, ""), recent, `\Seen`)
	w.appendAt(seller, "INBOX", rawMessage("new-reply@client.test", "new-offer@seller.test", client, seller, "Re: Offer for new pumps", "We accept.", start.Add(-2*time.Hour), ""), start.Add(-2*time.Hour))

	// The client's clock is two months behind: Date says history, the
	// server's INTERNALDATE says it arrived an hour ago.
	w.appendAt(seller, "Sent", rawMessage("skew-offer@seller.test", "", seller, "boris@client.test", "Offer for valves", "Offer attached.", recent, ""), recent, `\Seen`)
	w.appendAt(seller, "INBOX", rawMessage("skew-reply@client.test", "skew-offer@seller.test", "boris@client.test", seller, "Re: Offer for valves", "Yes.", start.Add(-60*day), ""), start.Add(-time.Hour))

	w.appendAt(seller, "Sent", rawMessage("clock-offer@seller.test", "", seller, "vera@client.test", "Offer for hoses", "Offer attached.", recent, ""), recent, `\Seen`)

	cfg := w.config("", seller)
	d, stop := w.run(cfg)
	w.expect("answered", "new-offer@seller.test")
	w.expect("answered", "skew-offer@seller.test")
	// Both dates two months old (the client's clock, copied into
	// INTERNALDATE by an APPEND-based delivery), but it cites a tracked
	// offer: never history.
	w.appendAt(seller, "INBOX", rawMessage("clock-reply@client.test", "clock-offer@seller.test", "vera@client.test", seller, "Re: Offer for hoses", "Agreed.", start.Add(-60*day), ""), start.Add(-60*day))
	w.expect("answered", "clock-offer@seller.test")
	db := d.Store()
	if _, err := db.ByMessageID("old-offer@seller.test"); err == nil {
		t.Error("an offer older than lookback was tracked")
	}
	for _, id := range []string{"old-offer@seller.test", "old-reply@client.test", "new-reply@client.test", "skew-reply@client.test"} {
		if _, err := db.Message(id); err != nil {
			t.Errorf("message %s not stored: %v", id, err)
		}
	}
	// History is stored unparsed (shallow) and read back whole.
	if m, err := db.Message("old-reply@client.test"); err != nil || len(m.From) != 1 || m.From[0].Addr != client ||
		m.Subject != "Re: Offer for old pumps" || len(m.InReplyTo) != 1 || m.Mailbox != "INBOX" || m.UID == 0 {
		t.Errorf("stored history read back as %+v, %v", m, err)
	}
	if fillers > 0 { // fetched light: the fields that tell history apart, and who wrote what
		if m, err := db.Message("filler-reply-1@client.test"); err != nil || m.ContentType != "" || m.Subject != "Re: Offer" || len(m.From) != 1 {
			t.Errorf("history fetched light read back as %+v, %v", m, err)
		}
	}
	if ins, err := db.IncomingByThread([]string{"old-offer@seller.test"}); err != nil || len(ins) != 0 {
		t.Errorf("history was judged: verdicts %+v, %v", ins, err)
	}
	if ins, err := db.IncomingByThread([]string{"new-offer@seller.test"}); err != nil || len(ins) != 1 {
		t.Errorf("recent answer's verdict: %+v, %v", ins, err)
	}
	// The store is whole (checked once nothing writes: bbolt's page check
	// reads the live freelist).
	stop()
	ro, err := store.Open(filepath.Join(cfg.StateDir, daemon.DBFile), store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if err := ro.Check(); err != nil {
		t.Error(err)
	}
}

// The horizon follows the oldest follow-up the store ever held: a folder
// synced from scratch (new UIDVALIDITY, a new mailbox) under a store whose
// follow-up was sent 40 days ago still sees that follow-up's 35-day-old
// answer, though it is far older than lookback.
func TestHistoryHorizonFollowsOldestFollowUp(t *testing.T) {
	start := monday(t)
	w := newWorld(t, start, seller, client)
	day := 24 * time.Hour
	cfg := w.config("", seller)
	trackLongOffer(t, cfg.StateDir, cfg.Accounts[0].Name, start)
	answered := start.Add(-35 * day)
	w.appendAt(seller, "INBOX", rawMessage("late-answer@client.test", "long-offer@seller.test", client, seller, "Re: Offer for a long project", "Agreed.", answered, ""), answered)

	d, _ := w.run(cfg)
	w.expect("answered", "long-offer@seller.test")
	f, err := d.Store().ByMessageID("long-offer@seller.test")
	if err != nil || f.State != store.StateAnswered {
		t.Fatalf("follow-up %+v, %v; want answered", f, err)
	}
}

// An auto-reply citing a tracked follow-up, with both dates older than
// the horizon (a client clock far behind, copied into INTERNALDATE), is
// judged on its whole header, also where the first sync fetches history
// light (a long backlog): its Auto-Submitted makes it no answer, and the
// follow-up waits on.
func TestOldAutoReplyCitingFollowUpIsJudgedWhole(t *testing.T) {
	for _, fillers := range []int{0, 1100} {
		t.Run(fmt.Sprintf("fillers=%d", fillers), func(t *testing.T) {
			start := monday(t)
			w := newWorld(t, start, seller, client)
			day := 24 * time.Hour
			cfg := w.config("", seller)
			trackLongOffer(t, cfg.StateDir, cfg.Accounts[0].Name, start)
			old := start.Add(-90 * day)
			for i := range fillers {
				at := old.Add(-time.Duration(i) * time.Hour)
				w.appendAt(seller, "INBOX", rawMessage(fmt.Sprintf("filler-%d@client.test", i), "", client, seller, "Hello", "Hi.", at, ""), at)
			}
			at := start.Add(-60 * day)
			w.appendAt(seller, "INBOX", rawMessage("away@client.test", "long-offer@seller.test", client, seller, "Re: Offer for a long project", "I am on leave.", at, "Auto-Submitted: auto-replied\r\n"), at)

			d, _ := w.run(cfg)
			w.expect("autoreply", "long-offer@seller.test")
			f, err := d.Store().ByMessageID("long-offer@seller.test")
			if err != nil || f.State == store.StateAnswered {
				t.Fatalf("follow-up %+v, %v; an auto-reply counted as the answer", f, err)
			}
		})
	}
}

// trackLongOffer stores, before the daemon first starts, a follow-up of
// account sent 40 days before start, far older than lookback.
func trackLongOffer(t *testing.T, stateDir, account string, start time.Time) {
	t.Helper()
	day := 24 * time.Hour
	sent := start.Add(-40 * day)
	db, err := store.Open(filepath.Join(stateDir, daemon.DBFile), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, created, err := db.Track(&store.FollowUp{
		Account: account, MessageID: "long-offer@seller.test", Rule: "offer", Kind: "offer",
		Subject: "Offer for a long project", From: message.Address{Addr: seller},
		To:    []message.Address{{Addr: client}},
		State: store.StateWaiting, Step: 2, SentAt: sent, LastSent: start.Add(-3 * day), Due: start.Add(2 * day),
	}, sent, "test")
	if err != nil || !created {
		t.Fatalf("track: %v %v", created, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}
