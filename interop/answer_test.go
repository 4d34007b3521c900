package interop_test

import (
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"followupd/internal/mailtest"
	"followupd/store"
)

// Scenario 1: an offer submitted through Postfix and saved to Sent is
// tracked; unanswered, its reminder reaches the client's INBOX at the due
// time, threaded, from the sales address.
func TestScenario1ReminderArrivesThreaded(t *testing.T) {
	begin := time.Now()
	w := newWorld(t, mailtest.Options{Users: users(pw, ivan, anna)})
	d, _ := w.run(w.config("", offerRules, w.plain(ivan)))
	start := w.clk.Now()
	const id = "s1-offer@seller.test"
	const subject = "Коммерческое предложение №7"
	w.offer(ivan, anna, id, subject, start)
	w.expect("tracked", id)

	// Three business days after Monday 10:00 is Thursday 10:00.
	due := start.AddDate(0, 0, 3)
	if f := w.followUp(d, id); !f.Due.Equal(due) || f.State != store.StateWaiting {
		t.Fatalf("follow-up %s due %v, want waiting due %v", f.State, f.Due, due)
	}
	w.advanceTo(due.Add(-time.Minute))
	w.quiet("sent", 300*time.Millisecond)
	w.exactly(anna, "INBOX", 1, 0) // the offer, no reminder yet

	w.advanceTo(due)
	ev := w.expect("sent", id)
	if ev.At.Before(due) || ev.At.After(due.Add(time.Minute)) {
		t.Errorf("step 1 sent at %v, want at its due time %v", ev.At, due)
	}
	inbox := w.exactly(anna, "INBOX", 2, 1)
	r := own(inbox)[0]
	if got := strings.Join(r.InReplyTo, " "); got != id {
		t.Errorf("In-Reply-To = %q, want %q", got, id)
	}
	if len(r.References) == 0 || r.References[len(r.References)-1] != id {
		t.Errorf("References = %q, want to end with %q", r.References, id)
	}
	if r.Subject != "Re: "+subject {
		t.Errorf("Subject = %q, want %q", r.Subject, "Re: "+subject)
	}
	if len(r.From) != 1 || r.From[0].Addr != ivan {
		t.Errorf("From = %v, want %s", r.From, ivan)
	}
	if len(r.To) != 1 || r.To[0].Addr != anna {
		t.Errorf("To = %v, want %s", r.To, anna)
	}
	// The copy in Sent (APPEND) carries the same Message-ID, and is
	// neither tracked nor taken for an answer.
	sent := w.exactly(ivan, "Sent", 2, 1)
	if own(sent)[0].MessageID != r.MessageID {
		t.Errorf("copy in Sent is %s, delivered reminder %s", own(sent)[0].MessageID, r.MessageID)
	}
	f := w.followUp(d, id)
	if f.State != store.StateWaiting || f.Step != 2 || !slices.Contains(f.Sent, r.MessageID) {
		t.Errorf("after step 1: state %s step %d sent %v, want waiting step 2 with %s", f.State, f.Step, f.Sent, r.MessageID)
	}
	w.quiet("answered", 300*time.Millisecond)
	if fs, _ := d.Store().List(store.Filter{}); len(fs) != 1 {
		t.Errorf("%d follow-ups, want 1 (was the reminder in Sent tracked?)", len(fs))
	}
	took(t, 1, "offer -> threaded reminder at due time", begin)
}

// Scenario 2: the client answers through Postfix before the due time: the
// follow-up is answered within 1 s of delivery (IDLE, not polling), and no
// reminder ever arrives.
func TestScenario2AnswerWithinOneSecond(t *testing.T) {
	begin := time.Now()
	// Three rounds, so the figure is not one lucky sample; three clients,
	// so one answer cannot count for another offer (any message from a
	// recipient is an answer).
	clients := []string{anna, boris, olga}
	w := newWorld(t, mailtest.Options{Users: users(pw, append([]string{ivan}, clients...)...)})
	d, _ := w.run(w.config("", offerRules, w.plain(ivan)))
	start := w.clk.Now()
	idle := startIdle(t, w.s, ivan, pw)

	ids := []string{"s2-offer-a@seller.test", "s2-offer-b@seller.test", "s2-offer-c@seller.test"}
	for i, id := range ids {
		w.offer(ivan, clients[i], id, "Offer "+id, start)
		w.expect("tracked", id)
	}
	w.advanceTo(start.Add(24 * time.Hour))
	var lat, base []time.Duration
	for i, id := range ids {
		if w.pending("answered", id) {
			t.Fatalf("%s answered before its answer was sent", id)
		}
		w.reply(clients[i], ivan, "s2-reply-"+string(rune('a'+i))+"@client.test", id, "Re: Offer "+id, w.clk.Now())
		accepted := time.Now()
		w.expect("answered", id)
		got := time.Now()
		l := got.Sub(accepted)
		b := time.Duration(-1)
		if at := idle.reached(uint32(i + 1)); !at.IsZero() {
			b = at.Sub(accepted)
		}
		lat, base = append(lat, l), append(base, b)
		t.Logf("scenario 2: answer %d: postfix accepted -> answered %v (bare IDLE client notified after %v, daemon's own share %v)",
			i+1, l.Round(time.Millisecond), b.Round(time.Millisecond), (l - b).Round(time.Millisecond))
	}
	sorted := slices.Clone(lat)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	t.Logf("scenario 2: delivery -> answered latency: median %v, max %v (Dovecot holds IDLE notifications ~500ms)",
		sorted[len(sorted)/2].Round(time.Millisecond), sorted[len(sorted)-1].Round(time.Millisecond))
	for i, l := range lat {
		if l >= time.Second {
			t.Errorf("answer %d took %v from delivery to answered, want < 1s", i+1, l)
		}
	}

	w.advanceTo(start.AddDate(0, 0, 10))
	w.quiet("sent", 500*time.Millisecond)
	for _, c := range clients {
		w.exactly(c, "INBOX", 1, 0)
	}
	for _, id := range ids {
		if f := w.followUp(d, id); f.State != store.StateAnswered {
			t.Errorf("%s: state %s, want answered", id, f.State)
		}
	}
	took(t, 2, "answer before due -> answered, nothing sent", begin)
}

// Scenario 3: the answer arrives while the daemon is stopped; after the
// restart it resyncs, sees it and sends nothing.
func TestScenario3AnswerWhileStopped(t *testing.T) {
	begin := time.Now()
	w := newWorld(t, mailtest.Options{Users: users(pw, ivan, anna)})
	cfg := w.config("", offerRules, w.plain(ivan))
	_, stop := w.run(cfg)
	start := w.clk.Now()
	const id = "s3-offer@seller.test"
	w.offer(ivan, anna, id, "Offer for 40 valves", start)
	w.expect("tracked", id)
	stop()

	w.clk.Set(start.Add(26 * time.Hour))
	w.reply(anna, ivan, "s3-reply@client.test", id, "Re: Offer for 40 valves", w.clk.Now())
	w.exactly(ivan, "INBOX", 1, 0) // delivered while nobody watches

	// The step is due while the daemon is down too: the restart must see
	// the answer before anything is sent.
	w.clk.Set(start.AddDate(0, 0, 3).Add(time.Hour))
	d, _ := w.run(w.config("", offerRules, w.plain(ivan)))
	w.expect("answered", id)
	w.advanceTo(start.AddDate(0, 0, 10))
	w.quiet("sent", 500*time.Millisecond)
	w.exactly(anna, "INBOX", 1, 0)
	if f := w.followUp(d, id); f.State != store.StateAnswered {
		t.Errorf("state %s, want answered", f.State)
	}
	took(t, 3, "answer while stopped -> resync, nothing sent", begin)
}

// Scenario 4: the daemon's IMAP connections are cut (a proxy the test
// controls), and Dovecot itself is restarted, while it watches; it
// reconnects with backoff, and answers delivered during the outages still
// cancel the reminders.
func TestScenario4ReconnectAfterOutage(t *testing.T) {
	begin := time.Now()
	w := newWorld(t, mailtest.Options{Users: users(pw, ivan, anna, boris)})
	p := mailtest.NewProxy(t, w.s.IMAPAddr)
	acct := w.plain(ivan)
	acct.imap.addr = p.Addr()
	d, _ := w.run(w.config("", offerRules, acct))
	start := w.clk.Now()
	limit := start.Add(24 * time.Hour) // pumping the clock never reaches a due time

	// Outage 1: the connections drop and new ones are refused while the
	// answer is delivered.
	const idA = "s4-offer-a@seller.test"
	w.offer(ivan, anna, idA, "Offer A", start)
	w.expect("tracked", idA)
	t1 := time.Now()
	p.Pause(true)
	p.Cut()
	w.clk.Set(start.Add(time.Hour))
	w.reply(anna, ivan, "s4-reply-a@client.test", idA, "Re: Offer A", w.clk.Now())
	w.exactly(ivan, "INBOX", 1, 0)
	// Keep refusing until the INBOX watcher failed five times in a row:
	// the waits between attempts must grow (exponential backoff).
	if !w.waitLogLine(15*time.Second, limit, "reconnecting", "mailbox=INBOX", "attempt=5 ") {
		t.Fatalf("the INBOX watcher did not retry 5 times while the proxy refused connections")
	}
	waits := reconnectWaits(t, w.logs.String(), "INBOX")
	if waits[5] < 2*waits[1] {
		t.Errorf("reconnect waits do not back off: attempt 1 %v, attempt 5 %v", waits[1], waits[5])
	}
	t.Logf("scenario 4: reconnect backoff (ReconnectMin 20ms, ReconnectMax 200ms): %v", waits)
	p.Pause(false)
	w.expectPumping("answered", idA, limit)
	t.Logf("scenario 4: proxy cut -> answer seen after reconnect in %v", time.Since(t1).Round(time.Millisecond))

	// Outage 2: Dovecot restarts; Postfix defers the answer meanwhile and
	// delivers it when flushed.
	const idB = "s4-offer-b@seller.test"
	w.offer(ivan, boris, idB, "Offer B", w.clk.Now())
	w.expect("tracked", idB)
	t2 := time.Now()
	reconnects := strings.Count(w.logs.String(), "reconnecting")
	w.s.StopDovecot(t)
	w.reply(boris, ivan, "s4-reply-b@buyer.test", idB, "Re: Offer B", w.clk.Now())
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) && strings.Count(w.logs.String(), "reconnecting") == reconnects {
		w.pump(limit)
		time.Sleep(20 * time.Millisecond)
	}
	w.s.StartDovecot(t)
	w.s.FlushQueue(t)
	w.expectPumping("answered", idB, limit)
	t.Logf("scenario 4: dovecot restart -> answer seen after reconnect in %v", time.Since(t2).Round(time.Millisecond))
	if n := strings.Count(w.logs.String(), "reconnecting"); n <= reconnects {
		t.Errorf("no reconnect logged across the Dovecot restart")
	}

	w.advanceTo(start.AddDate(0, 0, 10))
	w.quiet("sent", 500*time.Millisecond)
	w.exactly(anna, "INBOX", 1, 0)
	w.exactly(boris, "INBOX", 1, 0)
	for _, id := range []string{idA, idB} {
		if f := w.followUp(d, id); f.State != store.StateAnswered {
			t.Errorf("%s: state %s, want answered", id, f.State)
		}
	}
	took(t, 4, "connections cut + dovecot restart -> reconnect, answers cancel", begin)
}

// reconnectWaits reads the watcher's "reconnecting" log lines for mailbox
// and returns the wait logged for each attempt number (the last of each).
func reconnectWaits(t *testing.T, logs, mailbox string) map[int]time.Duration {
	t.Helper()
	re := regexp.MustCompile(`reconnecting.* mailbox=` + regexp.QuoteMeta(mailbox) + ` .*attempt=(\d+) wait=(\S+)`)
	out := map[int]time.Duration{}
	for _, m := range re.FindAllStringSubmatch(logs, -1) {
		n, _ := strconv.Atoi(m[1])
		d, err := time.ParseDuration(m[2])
		if err != nil {
			t.Fatalf("reconnect wait %q: %v", m[2], err)
		}
		out[n] = d
	}
	return out
}
