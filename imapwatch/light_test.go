package imapwatch

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"followupd/message"
)

// withAttachment is rawMsg as a multipart message with a PDF attached.
func withAttachment(n int, subject string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "Message-ID: <m%d@example.com>\r\n", n)
	fmt.Fprintf(&b, "From: Sales <%s>\r\nTo: client@customer.example\r\nSubject: %s\r\n", testUser, subject)
	b.WriteString("Date: Mon, 04 May 2026 10:00:00 +0300\r\nX-Mailer: Test 1.0\r\nMIME-Version: 1.0\r\n")
	b.WriteString("Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n")
	b.WriteString("--b1\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n")
	b.WriteString("--b1\r\nContent-Type: application/pdf; name=\"offer.pdf\"\r\nContent-Disposition: attachment; filename=\"offer.pdf\"\r\n\r\nJVBERi0=\r\n--b1--\r\n")
	return []byte(b.String())
}

// A long backlog is fetched light: what Shallow takes for history arrives
// shallow, with only historyFields and no attachment list; everything else
// (Shallow says no, or no Message-ID) arrives exactly as a full fetch gives
// it, whatever the mix of a batch.
func TestLightFetchOfLongBacklog(t *testing.T) {
	srv, acct := setup(t)
	const n, batch = 1400, 100
	// Message k is history unless k%7 == 0; UIDs 1000-1199 are all not
	// history (the fetch turns full, then light again); every 50th has an
	// attachment; every 97th has no Message-ID.
	wanted := func(k int) bool { return k%7 == 0 || (k >= 1000 && k < 1200) }
	// Which batches (of UIDs 1-100, 101-200, ...) go light: the first, and
	// each after one at least half history.
	lightBatch := []bool{true}
	for c := 0; c < n/batch; c++ {
		h := 0
		for k := c*batch + 1; k <= (c+1)*batch; k++ {
			if !wanted(k) && k%97 != 0 {
				h++
			}
		}
		lightBatch = append(lightBatch, 2*h >= batch)
	}
	if !lightBatch[10] || lightBatch[11] || lightBatch[12] || lightBatch[13] != true {
		t.Fatalf("the mailbox does not exercise a fall back and a return: %v", lightBatch)
	}
	for k := 1; k <= n; k++ {
		raw := rawMsg(k, fmt.Sprintf("Offer %d", k), "X-Mailer: Test 1.0")
		if k%50 == 0 {
			raw = withAttachment(k, fmt.Sprintf("Offer %d", k))
		}
		if k%97 == 0 {
			raw = []byte(strings.Replace(string(raw), fmt.Sprintf("Message-ID: <m%d@example.com>\r\n", k), "", 1))
		}
		if err := srv.Append(testUser, "INBOX", raw); err != nil {
			t.Fatal(err)
		}
	}
	history := func(r *message.Record) bool {
		var k int
		if _, err := fmt.Sscanf(r.MessageID, "m%d@example.com", &k); err != nil {
			t.Errorf("Shallow asked about %q", r.MessageID)
			return false
		}
		return !wanted(k)
	}
	light := func(recs []*message.Record) ([]bool, error) {
		keep := make([]bool, len(recs))
		for i, r := range recs {
			keep[i] = history(r)
		}
		return keep, nil
	}
	sync := func(shallow func(*message.Record) bool, light func([]*message.Record) ([]bool, error)) []*message.Record {
		sink := newSink()
		w := New(acct, testPass, sink, Options{Logger: testLogger(t), BatchSize: batch, Shallow: shallow, Light: light})
		stop := run(t, w)
		waitFor(t, 10*time.Second, "first sync", func() bool { return len(sink.uids("INBOX")) == n })
		stop()
		return sink.records("INBOX")
	}
	full := sync(nil, nil)
	// A Light that fails: every batch is fetched in full.
	for _, r := range sync(history, func([]*message.Record) ([]bool, error) { return nil, errors.New("store down") }) {
		if r.Partial || strings.Contains(string(r.Raw), "X-Mailer") != r.IsShallow() {
			t.Fatalf("uid %d fetched light though Light failed", r.UID)
		}
	}
	// A Light that keeps nothing (known mail: a UIDVALIDITY change), with
	// Shallow taking it all for history: after the first batch no batch is
	// fetched light again, so none is fetched twice.
	lightBatches := 0
	for _, r := range sync(func(*message.Record) bool { return true }, func(recs []*message.Record) ([]bool, error) {
		if len(recs) > 0 && !strings.Contains(string(recs[0].Raw), "X-Mailer") {
			lightBatches++
		}
		return make([]bool, len(recs)), nil
	}) {
		if r.Partial {
			t.Fatalf("uid %d kept light though Light kept nothing", r.UID)
		}
	}
	if lightBatches != 1 {
		t.Errorf("%d batches fetched light with Light keeping nothing, want 1", lightBatches)
	}
	got := sync(history, light)
	if len(got) != n || len(full) != n {
		t.Fatalf("got %d light and %d full records, want %d", len(got), len(full), n)
	}
	for i, r := range got {
		f := full[i]
		k := i + 1
		if r.UID != uint32(k) || f.UID != uint32(k) {
			t.Fatalf("record %d has uid %d (full %d)", i, r.UID, f.UID)
		}
		if r.MessageID != f.MessageID || r.SyntheticID != f.SyntheticID {
			t.Errorf("uid %d: id %q (synthetic %v), full fetch says %q (%v)", k, r.MessageID, r.SyntheticID, f.MessageID, f.SyntheticID)
		}
		if k%97 == 0 || wanted(k) {
			if r.IsShallow() || r.Headers["X-Mailer"] != "Test 1.0" || len(r.Attachments) != len(f.Attachments) {
				t.Errorf("uid %d is not history but came shallow=%v, X-Mailer %q, attachments %v", k, r.IsShallow(), r.Headers["X-Mailer"], r.Attachments)
			}
			continue
		}
		if !r.IsShallow() {
			t.Errorf("history uid %d came parsed", k)
			continue
		}
		if light := lightBatch[(k-1)/batch]; light != !strings.Contains(string(r.Raw), "X-Mailer") || light != r.Partial ||
			light && len(r.Attachments) != 0 || !light && len(r.Attachments) != len(f.Attachments) {
			t.Errorf("history uid %d (light fetch %v): partial %v, attachments %v, header %q", k, light, r.Partial, r.Attachments, r.Raw)
		}
		if err := r.Deepen(); err != nil || r.Subject != f.Subject || len(r.From) != 1 || r.From[0] != f.From[0] || !r.Date.Equal(f.Date) {
			t.Errorf("history uid %d deepened to %+v (%v), full fetch %+v", k, r, err, f)
		}
	}
}
