package imapwatch

import (
	"slices"
	"strings"
	"testing"
	"time"

	"followupd/clock"
	"followupd/message"
)

func TestInitialSyncBatchesInUIDOrder(t *testing.T) {
	srv, acct := setup(t, "Sent Items")
	appendN(t, srv, "Sent Items", 1, 25)
	appendN(t, srv, "INBOX", 100, 102)
	sink := newSink()
	w := New(acct, testPass, sink, Options{Logger: testLogger(t), BatchSize: 10})
	run(t, w)
	waitReady(t, w)

	if got, want := sink.uids("Sent Items"), seq(1, 25); !slices.Equal(got, want) {
		t.Errorf("Sent uids = %v, want %v", got, want)
	}
	if got, want := sink.batchSizes("Sent Items"), []int{10, 10, 5}; !slices.Equal(got, want) {
		t.Errorf("Sent batch sizes = %v, want %v", got, want)
	}
	if got, want := sink.uids("INBOX"), seq(1, 3); !slices.Equal(got, want) {
		t.Errorf("INBOX uids = %v, want %v", got, want)
	}
	st := sink.state("Sent Items")
	if st.LastUID != 25 || st.UIDValidity == 0 {
		t.Errorf("Sent state = %+v, want LastUID 25 and a UIDVALIDITY", st)
	}
	recs := sink.records("Sent Items")
	r := recs[4]
	if r.Account != testUser || r.Mailbox != "Sent Items" || r.Role != message.RoleSent ||
		r.UIDValidity != st.UIDValidity || r.UID != 5 || r.MessageID != "m5@example.com" ||
		r.Subject != "Offer 5" || r.Internal.IsZero() || r.Date.IsZero() {
		t.Errorf("record 5 = %+v", r)
	}
	if in := sink.records("INBOX"); len(in) > 0 && in[0].Role != message.RoleInbox {
		t.Errorf("INBOX record role = %v", in[0].Role)
	}
	if len(sink.flagEvents()) != 0 {
		t.Errorf("first sync reported flags: %+v", sink.flagEvents())
	}
	for _, fs := range w.Status() {
		if !fs.Connected || fs.LastSync.IsZero() {
			t.Errorf("status %+v: want connected and synced", fs)
		}
	}
}

func TestRestartResumesFromLastUID(t *testing.T) {
	srv, acct := setup(t, "Sent")
	appendN(t, srv, "Sent", 1, 5)
	sink := newSink()
	stop := run(t, New(acct, testPass, sink, Options{Logger: testLogger(t)}))
	waitFor(t, 5*time.Second, "first sync", func() bool { return len(sink.uids("Sent")) == 5 })
	stop()

	// Restart with the same state: nothing is fetched again.
	sink.reset()
	w := New(acct, testPass, sink, Options{Logger: testLogger(t)})
	stop = run(t, w)
	waitReady(t, w)
	if got := sink.uids("Sent"); len(got) != 0 {
		t.Errorf("after restart Sent delivered %v again, want nothing", got)
	}
	if got := sink.uids("INBOX"); len(got) != 0 {
		t.Errorf("after restart INBOX delivered %v, want nothing", got)
	}
	stop()

	// Mail that arrived while down is delivered, and only that.
	appendN(t, srv, "Sent", 6, 7)
	w = New(acct, testPass, sink, Options{Logger: testLogger(t)})
	run(t, w)
	waitReady(t, w)
	if got, want := sink.uids("Sent"), seq(6, 7); !slices.Equal(got, want) {
		t.Errorf("after downtime Sent uids = %v, want %v", got, want)
	}
	if st := sink.state("Sent"); st.LastUID != 7 {
		t.Errorf("state = %+v, want LastUID 7", st)
	}
}

func TestIdlePushWithinOneSecond(t *testing.T) {
	srv, acct := setup(t, "Sent")
	sink := newSink()
	w := New(acct, testPass, sink, Options{Logger: testLogger(t)})
	run(t, w)
	waitReady(t, w)

	start := time.Now()
	appendN(t, srv, "INBOX", 1, 1)
	waitFor(t, time.Second, "pushed INBOX message", func() bool { return len(sink.uids("INBOX")) == 1 })
	t.Logf("INBOX message delivered after %v", time.Since(start))
	appendN(t, srv, "Sent", 2, 3)
	waitFor(t, time.Second, "pushed Sent messages", func() bool { return len(sink.uids("Sent")) == 2 })
	if got, want := sink.uids("Sent"), seq(1, 2); !slices.Equal(got, want) {
		t.Errorf("Sent uids = %v, want %v", got, want)
	}
}

func TestUIDValidityChangeRefetchesAll(t *testing.T) {
	srv, acct := setup(t, "Sent")
	appendN(t, srv, "Sent", 1, 3)
	sink := newSink()
	stop := run(t, New(acct, testPass, sink, Options{Logger: testLogger(t)}))
	waitFor(t, 5*time.Second, "first sync", func() bool { return len(sink.uids("Sent")) == 3 })
	stop()
	old := sink.state("Sent")

	if err := srv.DeleteMailbox(testUser, "Sent"); err != nil {
		t.Fatal(err)
	}
	if err := srv.CreateMailbox(testUser, "Sent"); err != nil {
		t.Fatal(err)
	}
	appendN(t, srv, "Sent", 1, 2) // the same messages, new UIDs
	sink.reset()
	w := New(acct, testPass, sink, Options{Logger: testLogger(t)})
	run(t, w)
	waitReady(t, w)

	st := sink.state("Sent")
	if st.UIDValidity == old.UIDValidity {
		t.Fatalf("UIDVALIDITY did not change (%d); test is broken", st.UIDValidity)
	}
	if got, want := sink.uids("Sent"), seq(1, 2); !slices.Equal(got, want) {
		t.Errorf("after UIDVALIDITY change Sent uids = %v, want %v", got, want)
	}
	if st.LastUID != 2 {
		t.Errorf("state = %+v, want LastUID 2", st)
	}
	for _, r := range sink.records("Sent") {
		if r.UIDValidity != st.UIDValidity {
			t.Errorf("record uid %d has uidvalidity %d, want %d", r.UID, r.UIDValidity, st.UIDValidity)
		}
	}
}

func TestReconnectAfterDropDeliversMissedMail(t *testing.T) {
	srv, acct := setup(t, "Sent")
	sink := newSink()
	fake := clock.NewFake(time.Date(2026, 5, 4, 9, 0, 0, 0, time.UTC))
	w := New(acct, testPass, sink, Options{Logger: testLogger(t), Clock: fake, MinBackoff: time.Second, MaxBackoff: 8 * time.Second})
	run(t, w)
	waitReady(t, w)

	srv.SetRefuse(true)
	if n := srv.DropConnections(); n < 2 {
		t.Fatalf("dropped %d connections, want 2 (INBOX, Sent)", n)
	}
	appendN(t, srv, "INBOX", 1, 2)
	appendN(t, srv, "Sent", 3, 3)
	// While the server refuses, attempts fail and back off.
	waitFor(t, 5*time.Second, "reconnect attempts", func() bool {
		fake.Advance(8 * time.Second)
		for _, fs := range w.Status() {
			if fs.Reconnects < 3 {
				return false
			}
		}
		return true
	})
	if len(sink.uids("INBOX")) != 0 {
		t.Fatal("delivered while the server was down")
	}
	srv.SetRefuse(false)
	waitFor(t, 5*time.Second, "messages after reconnect", func() bool {
		fake.Advance(8 * time.Second)
		return len(sink.uids("INBOX")) == 2 && len(sink.uids("Sent")) == 1
	})
	if got, want := sink.uids("INBOX"), seq(1, 2); !slices.Equal(got, want) {
		t.Errorf("INBOX uids = %v, want %v", got, want)
	}
	for _, fs := range w.Status() {
		if fs.Reconnects < 3 || fs.LastError == "" {
			t.Errorf("status %+v: want reconnects counted and the last error", fs)
		}
	}
	// And IDLE works again on the new connection.
	appendN(t, srv, "INBOX", 3, 3)
	waitFor(t, 2*time.Second, "push after reconnect", func() bool { return len(sink.uids("INBOX")) == 3 })
}

func TestSinkErrorRedeliversBatch(t *testing.T) {
	srv, acct := setup(t, "Sent")
	appendN(t, srv, "Sent", 1, 4)
	sink := newSink()
	sink.failMessages = 1 // the first batch (Sent or INBOX, whichever comes first) fails
	acct.Folders.Inbox = "INBOX"
	fake := clock.NewFake(time.Date(2026, 5, 4, 9, 0, 0, 0, time.UTC))
	w := New(acct, testPass, sink, Options{Logger: testLogger(t), Clock: fake, BatchSize: 3})
	run(t, w)
	waitFor(t, 5*time.Second, "redelivery", func() bool {
		fake.Advance(time.Second)
		return len(sink.uids("Sent")) == 4
	})
	waitReady(t, w)
	if got, want := sink.uids("Sent"), seq(1, 4); !slices.Equal(got, want) {
		t.Errorf("Sent uids = %v, want %v (refused batch redelivered, nothing skipped)", got, want)
	}
	if st := sink.state("Sent"); st.LastUID != 4 {
		t.Errorf("state = %+v, want LastUID 4", st)
	}
	sink.mu.Lock()
	calls := sink.calls
	sink.mu.Unlock()
	if calls != 3 { // refused [1 2 3], then [1 2 3], [4]
		t.Errorf("HandleMessages calls = %d, want 3", calls)
	}
}

func TestFlagsOnSentReachHandleFlags(t *testing.T) {
	srv, acct := setup(t, "Sent")
	appendN(t, srv, "Sent", 1, 3)
	sink := newSink()
	w := New(acct, testPass, sink, Options{Logger: testLogger(t)})
	stop := run(t, w)
	waitReady(t, w)

	if err := srv.Store(testUser, "Sent", 2, `\Flagged`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "flag event", func() bool { return len(sink.flagEvents()) > 0 })
	ev := sink.flagEvents()[0]
	st := sink.state("Sent")
	if ev.mailbox != "Sent" || ev.role != message.RoleSent || ev.uid != 2 || ev.uidvalidity != st.UIDValidity || !slices.Contains(ev.flags, `\Flagged`) {
		t.Errorf("flag event = %+v", ev)
	}
	// Flags on INBOX are not reported.
	appendN(t, srv, "INBOX", 1, 1)
	waitFor(t, 2*time.Second, "inbox message", func() bool { return len(sink.uids("INBOX")) == 1 })
	if err := srv.Store(testUser, "INBOX", 1, `\Flagged`); err != nil {
		t.Fatal(err)
	}
	stop()
	for _, ev := range sink.flagEvents() {
		if ev.mailbox == "INBOX" {
			t.Errorf("INBOX flag reported: %+v", ev)
		}
	}

	// A flag set while the watcher is down is found at the next connect.
	if err := srv.Store(testUser, "Sent", 3, "$FollowupStop"); err != nil {
		t.Fatal(err)
	}
	sink.reset()
	w = New(acct, testPass, sink, Options{Logger: testLogger(t)})
	run(t, w)
	waitReady(t, w)
	found := false
	for _, ev := range sink.flagEvents() {
		// imapmemserver lower-cases keywords; flags are case-insensitive.
		if ev.uid == 3 && slices.ContainsFunc(ev.flags, func(f string) bool { return strings.EqualFold(f, "$FollowupStop") }) {
			found = true
		}
	}
	if !found {
		t.Errorf("flag set while down not reported; events %+v", sink.flagEvents())
	}
	for _, ev := range sink.flagEvents() {
		if ev.uid == 1 {
			t.Errorf("uid 1 has no flags but was reported at reconnect: %+v", ev)
		}
	}
}

func TestPollingWithoutIdle(t *testing.T) {
	srv, acct := setup(t, "Sent")
	sink := newSink()
	fake := clock.NewFake(time.Date(2026, 5, 4, 9, 0, 0, 0, time.UTC))
	w := New(acct, testPass, sink, Options{Logger: testLogger(t), Clock: fake})
	w.noIdle = true
	run(t, w)
	waitReady(t, w)
	appendN(t, srv, "Sent", 1, 1)
	waitFor(t, 2*time.Second, "two poll timers", func() bool { return fake.Pending() == 2 })
	time.Sleep(50 * time.Millisecond) // give a wrong implementation the chance to deliver early
	if len(sink.uids("Sent")) != 0 {
		t.Fatal("delivered before the poll interval passed: not polling")
	}
	fake.Advance(PollInterval)
	waitFor(t, 2*time.Second, "polled message", func() bool { return len(sink.uids("Sent")) == 1 })
}

func TestNeedBodyParsesWholeMessage(t *testing.T) {
	srv, acct := setup(t, "Sent")
	if err := srv.Append(testUser, "Sent", rawMsg(1, "with body")); err != nil {
		t.Fatal(err)
	}
	if err := srv.Append(testUser, "Sent", rawMsg(2, "headers only")); err != nil {
		t.Fatal(err)
	}
	sink := newSink()
	w := New(acct, testPass, sink, Options{Logger: testLogger(t), NeedBody: func(r *message.Record) bool {
		return strings.Contains(r.Subject, "body")
	}})
	run(t, w)
	waitReady(t, w)
	recs := sink.records("Sent")
	if len(recs) != 2 {
		t.Fatalf("got %d records", len(recs))
	}
	if !recs[0].HasBody || !strings.Contains(recs[0].Body, "Body of message 1") {
		t.Errorf("record 1 body = %q (HasBody %v), want the text", recs[0].Body, recs[0].HasBody)
	}
	if recs[0].UID != 1 || recs[0].Mailbox != "Sent" || recs[0].MessageID != "m1@example.com" || recs[0].Internal.IsZero() {
		t.Errorf("record 1 lost its location: %+v", recs[0])
	}
	if recs[1].HasBody {
		t.Errorf("record 2 has a body but NeedBody said no")
	}
}

func TestStopFolderWatchedAndMissingFolderDoesNotBlockReady(t *testing.T) {
	srv, acct := setup(t, "Sent", "Followup/Stop")
	acct.Folders.Stop = "Followup/Stop"
	appendN(t, srv, "Followup/Stop", 1, 1)
	sink := newSink()
	w := New(acct, testPass, sink, Options{Logger: testLogger(t)})
	run(t, w)
	waitReady(t, w)
	recs := sink.records("Followup/Stop")
	if len(recs) != 1 || recs[0].Role != message.RoleStop {
		t.Fatalf("Stop folder records = %+v", recs)
	}

	acct2 := srv.Account(testUser)
	acct2.Folders.Stop = "Nope"
	w2 := New(acct2, testPass, newSink(), Options{Logger: testLogger(t)})
	run(t, w2)
	waitReady(t, w2)
	waitFor(t, 2*time.Second, "error in status", func() bool {
		for _, fs := range w2.Status() {
			if fs.Role == message.RoleStop && strings.Contains(fs.LastError, "does not exist") {
				return true
			}
		}
		return false
	})
}

func TestBackoff(t *testing.T) {
	w := New(nil, "", nil, Options{MinBackoff: time.Second, MaxBackoff: time.Minute})
	for attempt, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 4: 8 * time.Second, 7: time.Minute, 30: time.Minute} {
		for range 50 {
			got := w.backoff(attempt)
			if got < want/2 || got > want {
				t.Fatalf("backoff(%d) = %v, want in [%v, %v]", attempt, got, want/2, want)
			}
		}
	}
}
